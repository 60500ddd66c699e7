"""Helpers of tests/test_pipelines.py: a simulation of the CI pipelines in devops/.

* :mod:`~tests.pipelines.expressions`: the expression syntax both CI systems share, and conditions.
* :mod:`~tests.pipelines.simulation`: scenarios, simulated values, and the jobs and steps of a run.
* :mod:`~tests.pipelines.azure_eval`: Azure Pipelines templates, macros, variables, jobs and steps.
* :mod:`~tests.pipelines.github_eval`: GitHub Actions expressions, env, matrices, jobs and steps.
* :mod:`~tests.pipelines.commands`: the pipeline files, and the ``orchestrator`` commands they run.
* :mod:`~tests.pipelines.running`: running those commands in-process, and checking what they did.
"""
