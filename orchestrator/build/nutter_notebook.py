# Databricks notebook source
"""The notebook a build runs in place of a nutter test notebook: it runs that notebook, reads
nutter's results from its exit value and writes them as JUnit, one test case per nutter case.

nutter ends a test notebook with ``result.exit(dbutils)``: the notebook's exit value is its
results, pickled and base64-encoded, and the notebook itself succeeds whatever its cases did. So
:mod:`orchestrator.build.test_frameworks` deploys this file beside the build's notebooks (as
``_orchestrator/nutter``) and points the task at it, with the test notebook to run. It runs in
the run's own compute, on Databricks as on the local workspace; the CI agent never unpickles
anything.

Why reading the pickle is safe here: it is read with an unpickler that calls nothing but the
builtin exception classes and plain containers (:data:`_BUILTINS`); every other class named in
it (nutter's ``TestResults``/``TestResult``, an exception class of the user's code) becomes an
inert record holding the pickled attributes. Reducers of other callables are refused, so a
pickle cannot run code; nutter need not even be importable here (a notebook-scoped ``%pip``
install of it is not).

The widgets ``orchestrator.notebook`` (the test notebook's path), ``orchestrator.results`` (the
folder for ``nutter.xml``) and ``orchestrator.timeout_seconds`` are the build's; every other
widget is passed on to the test notebook. A failing case fails this task (after the JUnit is
written), so the build fails on it.
"""

import binascii
import builtins
import io
import pickle
from base64 import b64decode
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

NOTEBOOK = "orchestrator.notebook"
RESULTS = "orchestrator.results"
TIMEOUT = "orchestrator.timeout_seconds"
#: what the unpickler may call: the builtin exception classes and plain values, nothing else
_BUILTINS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
) | frozenset({"list", "dict", "set", "frozenset", "tuple", "str", "int", "float", "bool"})


class Record:
    """A pickled object of a class other than a builtin: its attributes, nothing it could run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)

    def __str__(self) -> str:
        name = type(self).__name__
        return f"{name}: {self.args[0]}" if self.args else name


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _BUILTINS:
            return getattr(builtins, name)
        if module == "collections" and name == "OrderedDict":
            return dict
        if module == "copyreg" and name == "_reconstructor":
            return _reconstruct
        return type(name, (Record,), {"__module__": module})


def _reconstruct(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` for a record class only: no other constructor is called."""
    if not (isinstance(cls, type) and issubclass(cls, Record)):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return cls.__new__(cls)


def read_results(exit_value: str) -> list[Any]:
    """nutter's test results from a notebook's exit value (see the module docstring)."""
    data = b64decode(exit_value.encode("utf-8"))
    results = _Unpickler(io.BytesIO(data)).load()
    cases = getattr(results, "results", None)
    if not isinstance(cases, list):
        raise ValueError("the exit value holds no nutter test results")
    return cases


def junit(cases: list[Any], *, suite: str) -> bytes:
    """The cases as a JUnit document: one test case each, a failure for each that failed."""
    root = ElementTree.Element("testsuites")
    failed = [c for c in cases if not getattr(c, "passed", False)]
    total = sum(float(getattr(c, "execution_time", 0) or 0) for c in cases)
    element = ElementTree.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(cases)),
        failures=str(len(failed)),
        errors="0",
        time=f"{total:.3f}",
    )
    for case in cases:
        item = ElementTree.SubElement(
            element,
            "testcase",
            classname=suite,
            name=str(getattr(case, "test_name", "test")),
            time=f"{float(getattr(case, 'execution_time', 0) or 0):.3f}",
        )
        if not getattr(case, "passed", False):
            exception = getattr(case, "exception", None)
            message = str(exception) if exception is not None else "the case failed"
            failure = ElementTree.SubElement(item, "failure", message=message.splitlines()[0])
            failure.text = str(getattr(case, "stack_trace", "") or message)
    return bytes(ElementTree.tostring(root, encoding="utf-8", xml_declaration=True))


def run(dbutils: Any) -> None:
    """Run the test notebook, write its cases as JUnit, fail when one of them failed."""
    widgets = dbutils.widgets.getAll()
    notebook, results = widgets[NOTEBOOK], widgets[RESULTS]
    timeout = int(widgets.get(TIMEOUT) or 0)
    arguments = {k: v for k, v in widgets.items() if not k.startswith("orchestrator.")}
    value = dbutils.notebook.run(notebook, timeout, arguments)
    try:
        cases = read_results(value or "")
    except (ValueError, TypeError, EOFError, pickle.UnpicklingError, binascii.Error) as exc:
        raise ValueError(
            f"{notebook} did not end with nutter's results (result.exit(dbutils)): {exc}"
        ) from None
    name = notebook.rstrip("/").rsplit("/", 1)[-1]
    folder = Path(results)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nutter.xml").write_bytes(junit(cases, suite=name))
    failed = [str(getattr(c, "test_name", "test")) for c in cases if not getattr(c, "passed", 0)]
    print(f"nutter: {len(cases) - len(failed)} of {len(cases)} test cases passed in {notebook}")  # noqa: T201
    if failed:
        raise AssertionError(f"nutter: {len(failed)} of {len(cases)} failed: {', '.join(failed)}")


if "dbutils" in globals():  # run as a notebook, not imported
    run(globals()["dbutils"])
