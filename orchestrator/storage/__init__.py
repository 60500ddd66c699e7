"""Build storage: where models, test scripts and test data go and JUnit XML comes back.

Dependencies run one way:

* :mod:`~orchestrator.storage.open` picks a storage by URL scheme and imports the two below;
* :mod:`~orchestrator.storage.folder` (a folder) and :mod:`~orchestrator.storage.adls` (ADLS Gen2,
  through :mod:`~orchestrator.storage.blob_client`, the Azure SDK client) implement it;
* :mod:`~orchestrator.storage.base` holds the interface, credentials and tree helpers.

Nothing is imported here, so importing one module of the package never loads the Azure SDK.
"""
