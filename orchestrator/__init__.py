"""Build orchestrator for the CI of Databricks notebooks.

The package is a CLI first (``orchestrator --help``); the library surface is kept small.
Heavy dependencies (the Databricks SDK, Jupyter, Azure) are imported lazily by the modules
that own them, so importing this package is cheap.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
