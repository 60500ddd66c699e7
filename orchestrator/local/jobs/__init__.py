"""The local workspace's own jobs engine: run documents built from job settings
(:mod:`.run_documents`), the run life cycle (:mod:`.scheduler`) and notebook task execution
(:mod:`.notebook_tasks`)."""
