"""What the local workspace keeps: the store (SQLite index and the mirrored workspace tree),
retention, the documented limits checked before anything changes (:mod:`.limits`, raising
:class:`~.api_error.ApiError`) and notebook formats (:mod:`.notebook_format`,
:mod:`.notebook_html`, and Databricks' run export page, :mod:`.notebook_model`)."""
