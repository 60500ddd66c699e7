"""Masking: values and the forms they show up in, streams written in pieces, logging (messages,
arguments, tracebacks), and registration with Azure DevOps and GitHub Actions."""

from __future__ import annotations

import io
import logging
import sys
import uuid
from urllib.parse import quote

import pytest

from orchestrator.masking import MASK, Masker, MaskingFilter, MaskingStream, masked_output


def secret(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def test_values_and_their_derived_forms_are_masked_longest_first() -> None:
    m = Masker()
    short, long_ = secret(), secret()
    m.add(short)
    m.add(short + long_)
    m.add("  \n ")  # blank: ignored
    assert m.mask(f"x {short}{long_} y {short}") == f"x {MASK} y {MASK}"
    multi = f"{secret('line1')}\n{secret('line2')}"
    m.add(multi)
    first, second = multi.splitlines()
    assert m.mask(f"got {second} and {first}") == f"got {MASK} and {MASK}"
    tricky = "p@ss w&rd<" + uuid.uuid4().hex
    m.add(tricky)
    assert m.mask(quote(tricky, safe="")) == MASK
    assert m.mask(tricky.replace("&", "&amp;").replace("<", "&lt;")) == MASK
    key = uuid.uuid4().hex + "=="
    m.add(f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={key};EndpointSuffix=x")
    assert m.mask(f"signing with {key}") == f"signing with {MASK}"
    assert m.mask("nothing secret here") == "nothing secret here"


def test_a_stream_masks_a_value_written_in_pieces_and_flushes_the_rest() -> None:
    m = Masker()
    value = secret()
    m.add(value)
    target = io.StringIO()
    stream = MaskingStream(target, m)
    stream.write(value[:5])
    stream.write(value[5:] + " tail")
    assert target.getvalue() == ""  # an unfinished line waits
    stream.write("\n")
    assert target.getvalue() == f"{MASK} tail\n"
    stream.write(f"\r    progress {value}")  # live progress: flushed without a newline
    stream.flush()
    assert target.getvalue().endswith(f"\r    progress {MASK}")
    assert stream.isatty() is False and stream.writable()


def test_masked_output_wraps_stdout_stderr_and_logging(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    m = Masker()
    value = secret()
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("orchestrator.test_masking")
    with masked_output(environ={}, masker=m):
        m.add(value)
        print("stdout", value)
        print("stderr", value, file=sys.stderr)
        log.info("as an argument: %s", value)
        log.warning(f"in the message: {value}")
        try:
            raise RuntimeError(f"failed with {value}")
        except RuntimeError:
            log.exception("with a traceback")
    out, err = capsys.readouterr()
    assert out == f"stdout {MASK}\n" and err == f"stderr {MASK}\n"
    assert value not in caplog.text and caplog.text.count(MASK) >= 3
    formatted = [logging.Formatter().format(r) for r in caplog.records]
    assert all(value not in text for text in formatted)
    assert sys.stdout is not None and not isinstance(sys.stdout, MaskingStream)  # restored


def test_the_filter_masks_records_on_a_handler_of_its_own() -> None:
    m = Masker()
    value = secret()
    m.add(value)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(MaskingFilter(m))
    log = logging.getLogger(f"test.{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(handler)
    try:
        raise ValueError(value)
    except ValueError:
        log.error("boom %s", value, exc_info=True)
    assert value not in buffer.getvalue() and MASK in buffer.getvalue()


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        ({"TF_BUILD": "True"}, "##vso[task.setsecret]{}"),
        ({"GITHUB_ACTIONS": "true"}, "::add-mask::{}"),
        ({}, None),
    ],
    ids=["azure-devops", "github-actions", "no-ci"],
)
def test_values_are_registered_with_the_ci_once_on_the_real_stdout(
    capsys: pytest.CaptureFixture[str], environ: dict[str, str], line: str | None
) -> None:
    m = Masker()
    early, late = secret("early"), secret("late")
    m.add(early)  # resolved before the output was wrapped: announced when it is
    with masked_output(environ=environ, masker=m):
        m.add(late)
        m.add(late)
        print(f"using {late}")
    out = capsys.readouterr().out.splitlines()
    assert f"using {MASK}" in out
    if line is None:
        assert out == [f"using {MASK}"]
    else:
        assert out.count(line.format(early)) == 1 and out.count(line.format(late)) == 1
        assert sum(1 for o in out if early in o or late in o) == 2


def test_github_registration_escapes_percent() -> None:
    m = Masker()
    out = io.StringIO()
    m.announce_to(out, {"GITHUB_ACTIONS": "true"})
    value = "50%off-" + uuid.uuid4().hex
    m.add(value)
    assert f"::add-mask::{value.replace('%', '%25')}\n" in out.getvalue()


def test_values_too_short_to_be_secrets_are_ignored() -> None:
    m = Masker()
    m.add("v")
    m.add("abc")
    assert not m.active
    assert (
        m.mask("##vso[task.complete result=Failed;]abc") == "##vso[task.complete result=Failed;]abc"
    )


def test_each_masked_output_has_its_own_values(capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.masking import masker, register_secret

    value = secret()
    with masked_output(environ={}):
        register_secret(value)
        print(value)
    with masked_output(environ={}):
        assert value not in masker().values
        print(value)
    assert capsys.readouterr().out == f"{MASK}\n{value}\n"


def test_result_xml_is_masked_in_values_never_in_its_structure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import xml.etree.ElementTree as ET

    from orchestrator.build.collect import _mask_xml

    value = "testcase"  # a secret that is also a tag name: the XML must stay XML
    path = tmp_path / "run.xml"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="s">'
        f'<testcase name="t"><failure message="got {value} &amp; more">{value} trace</failure>'
        "</testcase></testsuite></testsuites>"
    )
    with masked_output(environ={}) as m:
        m.add(value)
        _mask_xml(path)
    root = ET.parse(path).getroot()
    failure = root.find("./testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == f"got {MASK} & more" and failure.text == f"{MASK} trace"
