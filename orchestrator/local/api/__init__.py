"""The REST APIs of the local workspace: one module per API (``*_api``), and the request,
response and routing types every handler uses (:mod:`.routing`)."""
