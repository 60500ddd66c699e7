"""The link a ``dbutils.notebook.run`` child leaves in its caller's output, as on Databricks.

On Databricks the calling cell shows ``Notebook job #<run id>``, a link to the child's own
run page, and nothing of the child's cells: they live in the child's run (its export, its
page). :func:`child_run_link` is that link's HTML and :data:`CHILD_RUN_LINK` reads it back,
which the local Jobs UI does to show a child's notebook under its link. :func:`output_text`
is the text of an nbformat output as the Jobs UI shows it. Standard library only: this runs
inside user kernels.
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["CHILD_RUN_LINK", "MAX_TEXT", "child_run_link", "output_text", "show_child_run_link"]

MAX_TEXT = 200_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: the whole of a child run's link, as :func:`child_run_link` writes it
CHILD_RUN_LINK = re.compile(r'<a href="(?P<url>[^"<>]*)">Notebook job #(?P<run_id>\d+)</a>')


def output_text(value: Any) -> str:
    """An output's text (a string or nbformat's list of lines), without ANSI codes, at most
    :data:`MAX_TEXT` characters (the Jobs UI shows outputs with it)."""
    text = "".join(value) if isinstance(value, list) else str(value or "")
    text = _ANSI.sub("", text)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT] + "\n*** output truncated ***"
    return text


def child_run_link(run_id: int, run_page_url: str) -> str:
    """``<a href="{run_page_url}">Notebook job #{run_id}</a>``."""
    return f'<a href="{html.escape(run_page_url)}">Notebook job #{int(run_id)}</a>'


def show_child_run_link(run_id: int, run_page_url: str) -> None:
    """Display the child run's link as an HTML output of the current cell."""
    try:
        from IPython.display import display
    except ImportError:  # not in a kernel
        return
    display({"text/html": child_run_link(run_id, run_page_url)}, raw=True)  # type: ignore[no-untyped-call]
