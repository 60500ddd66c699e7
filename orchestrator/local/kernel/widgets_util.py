"""``dbutils.widgets`` of the in-kernel shim: input widgets and the run's parameters.

This module owns :class:`WidgetsUtil`. Widget definitions live in the kernel process; run
parameters (``ORCH_PARAMS``) win over widget defaults and are readable without a widget
definition. ``getArgument`` in the notebook namespace is :meth:`WidgetsUtil.getArgument`.

It runs inside user kernels: standard library only, nothing heavy at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .common import (
    InputWidgetNotDefined,
    WidgetError,
    _print_help,
)

__all__ = ["WidgetsUtil"]


class _Widget(NamedTuple):
    kind: str
    default: str
    choices: tuple[str, ...]
    label: str | None


class WidgetsUtil:
    """``dbutils.widgets``: input widgets, whose values in a job run come from its parameters.

    A run parameter wins over a widget's default, and is readable with ``get`` even when no
    widget of that name is defined. Defining a widget again replaces its definition.
    """

    def __init__(self, params: Mapping[str, str]) -> None:
        self._params = dict(params)
        self._widgets: dict[str, _Widget] = {}

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:
        """Creates a text input widget with a given name and default value."""
        self._define(name, "text", defaultValue, (), label)

    def dropdown(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a dropdown input widget; the default value must be one of the choices."""
        options = self._choices(name, choices)
        if str(defaultValue) not in options:
            raise WidgetError(
                f"Default value {defaultValue!r} of dropdown widget {name!r} is not one of "
                f"the choices {list(options)!r}"
            )
        self._define(name, "dropdown", defaultValue, options, label)

    def combobox(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a combobox input widget: the choices are suggestions, any value is valid."""
        self._define(name, "combobox", defaultValue, self._choices(name, choices), label)

    def multiselect(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        """Creates a multiselect input widget; ``get`` returns the selection comma-joined."""
        options = self._choices(name, choices)
        default = str(defaultValue)
        if default not in options and not all(part in options for part in default.split(",")):
            raise WidgetError(
                f"Default value {defaultValue!r} of multiselect widget {name!r} is not among "
                f"the choices {list(options)!r}"
            )
        self._define(name, "multiselect", default, options, label)

    def get(self, name: str) -> str:
        """Retrieves the current value of an input widget (the run parameter if passed)."""
        name = str(name)
        if name in self._params:
            return self._params[name]
        widget = self._widgets.get(name)
        if widget is None:
            raise InputWidgetNotDefined(name)
        return widget.default

    def getArgument(self, name: str, default: str | None = None) -> str | None:
        """Deprecated alias of ``get`` that returns ``default`` for an undefined widget."""
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return default

    def getAll(self) -> dict[str, str]:
        """Retrieves the values of all widgets and run parameters, as a dict."""
        values = {name: widget.default for name, widget in self._widgets.items()}
        values.update(self._params)
        return values

    def remove(self, name: str) -> None:
        """Removes an input widget from the notebook."""
        if self._widgets.pop(str(name), None) is None:
            raise InputWidgetNotDefined(str(name))

    def removeAll(self) -> None:
        """Removes all widgets in the notebook."""
        self._widgets.clear()

    def help(self, method: str | None = None) -> None:
        """Prints the widgets utility's methods."""
        _print_help(self, "dbutils.widgets", method)

    def _define(
        self, name: str, kind: str, default: Any, choices: tuple[str, ...], label: str | None
    ) -> None:
        if not isinstance(name, str) or not name:
            raise WidgetError("A widget name must be a non-empty string")
        self._widgets[name] = _Widget(kind, str(default), choices, label)

    @staticmethod
    def _choices(name: str, choices: Any) -> tuple[str, ...]:
        if isinstance(choices, str) or not hasattr(choices, "__iter__"):
            raise WidgetError(f"The choices of widget {name!r} must be a list of strings")
        options = tuple(str(choice) for choice in choices)
        if not options:
            raise WidgetError(f"Widget {name!r} needs at least one choice")
        return options

    def __repr__(self) -> str:
        return "<dbutils.widgets (local)>"
