"""The local Jobs UI: read-only HTML pages shaped like Databricks' Jobs UI.

:mod:`.pages` routes the URLs; the other modules render them:
:mod:`.shell` (page shell, stylesheet, security headers, formatting), :mod:`.summary` (what a
page shows of a run: build parameters, state, durations, test counts), :mod:`.jobs_view` (index,
jobs list, a job's runs), :mod:`.run_view` (a run and its timeline), :mod:`.notebook_view` (an
executed notebook with its child notebooks) and :mod:`.test_counts` (counts a build reports).
"""
