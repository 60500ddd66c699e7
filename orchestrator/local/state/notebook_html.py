"""An executed notebook as a standalone HTML page: nbconvert's ``HTMLExporter`` (its ``lab``
template), whose last pass is made without CSS selectors.

``HTMLExporter.from_notebook_node`` ends by parsing the page with BeautifulSoup and selecting,
with soupsieve, the images without ``alt`` text (given one) and the cells' input and output areas
(made focusable with ``tabindex``). soupsieve compiles its regular expressions on its first use:
0.35 CPU-s in every process that exports, a third of the exporter's warm-up, which every build
on the embedded workspace paid. :class:`LeanHTMLExporter` makes the same edits with bs4's
``find_all``, which needs none of them; the page is nbconvert's, byte for byte (a test compares
the two on a notebook with every kind of output).

This module imports nbconvert (and bs4, which nbconvert requires and its exporter uses):
:mod:`orchestrator.local.state.notebook_format` imports it on the first export; the ``local`` extra
installs nbconvert.
"""

from __future__ import annotations

from typing import Any

from bs4 import BeautifulSoup
from nbconvert.exporters.html import HTMLExporter
from nbconvert.exporters.templateexporter import TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

__all__ = ["LeanHTMLExporter"]

#: what HTMLExporter gives an image that has no ``alt`` text
MISSING_ALT = "No description has been provided for this image"
#: the cell areas under a ``.jp-Notebook`` that HTMLExporter makes focusable
_FOCUSABLE = ("jp-Cell-inputWrapper", "jp-OutputArea-output")


class LeanHTMLExporter(HTMLExporter):
    """``HTMLExporter`` with its final pass over the page done by ``find_all``."""

    def from_notebook_node(  # type: ignore[override]  # as HTMLExporter's own (str, not a node)
        self, nb: Any, resources: dict[str, Any] | None = None, **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        # as HTMLExporter.from_notebook_node, up to its BeautifulSoup pass
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        highlight_code = self.filters.get(
            "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)
        )
        resources = self._init_resources(resources)
        filter_data_type = WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources
        )
        self.register_filter("highlight_code", highlight_code)
        self.register_filter("filter_data_type", filter_data_type)
        html, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        soup = BeautifulSoup(html, features="html.parser")
        missing_alt = 0
        for image in soup.find_all("img"):
            if "alt" not in image.attrs:
                image.attrs["alt"] = MISSING_ALT
                missing_alt += 1
        if missing_alt:
            self.log.warning("Alternative text is missing on %s image(s).", missing_alt)
        for area in _FOCUSABLE:  # as HTMLExporter's selectors, one after the other
            for notebook in soup.find_all(class_="jp-Notebook"):
                for element in notebook.find_all("div", class_=area):
                    element.attrs["tabindex"] = "0"
        return str(soup), resources
