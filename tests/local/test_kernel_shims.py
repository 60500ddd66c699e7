"""The in-kernel Databricks globals (``dbutils.py``/``.R``), tested in real kernels.

One ipykernel and one IRkernel are started per module with the ``ORCH_*`` environment the
executor gives them (cwd = the notebook's folder), the shim is loaded the way the executor
loads it, and each test runs code there and checks outputs, replies and files on disk.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.tools import require, require_r

require(None if importlib.util.find_spec("jupyter_client") else "jupyter_client is missing")
import jupyter_client  # noqa: E402

pytestmark = pytest.mark.slow  # real kernels (tests/tiers.py)

REPO_ROOT = Path(__file__).resolve().parents[2]
R_SHIM = REPO_ROOT / "orchestrator" / "local" / "kernel" / "r" / "dbutils.R"
NOTEBOOK_PATH = "/Users/a@example.com/build/tests/test_x"
PARAMS = {"env": "ci", "choice": "b", "tags": "x,y"}
SECRETS = {"kv": {"db-password": "hunter2-long-value", "token": "tok-123456"}, "empty": {}}


@dataclass
class Result:
    """What one execute request produced."""

    status: str
    stdout: str = ""
    stderr: str = ""
    displays: list[dict[str, Any]] = field(default_factory=list)  # display_data bundles
    results: list[dict[str, Any]] = field(default_factory=list)  # execute_result bundles
    errors: list[dict[str, Any]] = field(default_factory=list)  # iopub error messages
    ename: str | None = None
    evalue: str | None = None

    @property
    def text(self) -> str:
        """The text/plain of the execute_result, if any."""
        return self.results[-1].get("text/plain", "") if self.results else ""


class KernelSession:
    """A kernel started with jupyter_client, executing code and collecting its outputs."""

    def __init__(self, kernel_name: str, cwd: Path, env: dict[str, str]) -> None:
        self.manager = jupyter_client.KernelManager(kernel_name=kernel_name)
        self.manager.start_kernel(cwd=str(cwd), env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=90)

    def run(self, code: str, timeout: float = 60) -> Result:
        result = Result(status="?")

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind == "display_data":
                result.displays.append(content["data"])
            elif kind == "execute_result":
                result.results.append(content["data"])
            elif kind == "error":
                result.errors.append(content)

        reply = self.client.execute_interactive(
            textwrap.dedent(code),
            output_hook=hook,
            timeout=timeout,
            stop_on_error=False,
            allow_stdin=False,
        )
        content = reply["content"]
        result.status = content["status"]
        result.ename = content.get("ename")
        result.evalue = content.get("evalue")
        return result

    def ok(self, code: str, timeout: float = 60) -> Result:
        """Run ``code`` and fail the test with the kernel's error unless it succeeded."""
        result = self.run(code, timeout)
        assert result.status == "ok", f"{result.ename}: {result.evalue}\n{result.stderr}"
        return result

    def value(self, expression: str) -> Any:
        """Evaluate a Python expression in the kernel and return it through JSON."""
        result = self.ok(f"import json as _j; print(_j.dumps({expression}))")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@dataclass(frozen=True)
class Layout:
    """The folders a notebook run gets: workspace, DBFS, control dir, %pip target."""

    root: Path
    workspace: Path
    dbfs: Path
    control: Path
    pip_target: Path

    @property
    def notebook_dir(self) -> Path:
        return self.workspace / NOTEBOOK_PATH.lstrip("/").rsplit("/", 1)[0]

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        python_path = [str(REPO_ROOT)]
        if env.get("PYTHONPATH"):
            python_path.append(env["PYTHONPATH"])
        env.update(
            ORCH_NOTEBOOK_PATH=NOTEBOOK_PATH,
            ORCH_WORKSPACE_ROOT=str(self.workspace),
            ORCH_DBFS_ROOT=str(self.dbfs),
            ORCH_CONTROL_DIR=str(self.control),
            ORCH_PARAMS=json.dumps(PARAMS),
            ORCH_SECRETS=json.dumps(SECRETS),
            ORCH_PYTHON=sys.executable,
            ORCH_PIP_TARGET=str(self.pip_target),
            PYTHONPATH=os.pathsep.join(python_path),
            MPLBACKEND="Agg",
        )
        env.update(extra)
        return env


def make_layout(root: Path) -> Layout:
    layout = Layout(
        root=root,
        workspace=root / "workspace",
        dbfs=root / "dbfs",
        control=root / "control",
        pip_target=root / "site-packages",  # created by install()
    )
    layout.notebook_dir.mkdir(parents=True)
    layout.dbfs.mkdir()
    layout.control.mkdir()
    (layout.notebook_dir / "helper_mod.py").write_text("ANSWER = 42\n")
    return layout


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return make_layout(tmp_path_factory.mktemp("shims"))


@pytest.fixture(scope="module")
def py_kernel(layout: Layout) -> Iterator[KernelSession]:
    session = KernelSession("python3", layout.notebook_dir, layout.env())
    try:
        session.ok(
            "from orchestrator.local.kernel.dbutils import install as __orch_install\n"
            "__orch_install(get_ipython()); del __orch_install"
        )
        yield session
    finally:
        session.shutdown()


@pytest.fixture
def py(py_kernel: KernelSession, layout: Layout) -> KernelSession:
    """The module's Python kernel, with no widgets defined and no exit.json left over."""
    py_kernel.ok("dbutils.widgets.removeAll()")
    (layout.control / "exit.json").unlink(missing_ok=True)
    return py_kernel


# --------------------------------------------------------------------------- globals, import


def test_install_defines_the_databricks_globals(py: KernelSession) -> None:
    names = py.value(
        "[n for n in ('dbutils', 'display', 'displayHTML', 'spark', 'sc', 'getArgument') "
        "if n in get_ipython().user_ns]"
    )
    assert names == ["dbutils", "display", "displayHTML", "spark", "sc", "getArgument"]
    # Not listed by %who: they are the notebook's environment, not the user's variables.
    assert "dbutils" not in py.ok("%who").stdout


def test_installing_the_shim_imports_nothing_heavy(layout: Layout, tmp_path: Path) -> None:
    # The shim is installed into every kernel before its first cell: it must not pull in Spark,
    # pandas, pyarrow, grpc or the notebook formats (each costs tenths of a second). A structural
    # check, not a timing: timings belong to bench/, not to a test on a shared machine.
    script = textwrap.dedent(
        """
        import sys, IPython, ipykernel.ipkernel  # what a kernel has loaded already
        import orchestrator.local.runtime
        before = set(sys.modules)
        from orchestrator.local.kernel.dbutils import install
        install(None)
        heavy = ("pyspark", "pysail", "pandas", "pyarrow", "grpc", "nbformat", "nbconvert")
        print(sorted(m for m in set(sys.modules) - before if m.split(".")[0] in heavy))
        """
    )
    output = subprocess.run(
        [sys.executable, "-B", "-c", script],
        env=layout.env(ORCH_PIP_TARGET=str(tmp_path / "pip")),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert output.strip() == "[]"


def test_installing_twice_wraps_the_file_functions_once(py: KernelSession) -> None:
    py.ok(
        "from orchestrator.local.kernel.dbutils import install as __orch_install\n"
        "__orch_install(get_ipython()); del __orch_install"
    )
    assert py.value("type(__import__('os').stat.__wrapped__).__name__") == (
        "builtin_function_or_method"
    )
    # The notebook's open is IPython's own, wrapped once.
    assert py.value("hasattr(open, '__orch_wrapped__')") is True
    assert py.value("hasattr(open.__wrapped__, '__orch_wrapped__')") is False
    real_cwd = "__import__('orchestrator.local.kernel.path_mapping', fromlist=['_'])"
    assert py.value(f"__import__('sys').path.count({real_cwd}.real_getcwd())") == 1


def test_help_lists_the_utilities(py: KernelSession) -> None:
    out = py.ok("dbutils.help(); dbutils.fs.help(); dbutils.widgets.help('get')").stdout
    assert "widgets: text, dropdown" in out
    assert "ls: Lists the contents of a directory" in out
    assert "get: Retrieves the current value of an input widget" in out


def test_the_notebook_folder_and_pip_target_lead_sys_path(
    py: KernelSession, layout: Layout
) -> None:
    head = py.value("__import__('sys').path[:2]")
    assert head == [str(layout.notebook_dir), str(layout.pip_target)]
    assert layout.pip_target.is_dir()
    assert py.value("__import__('helper_mod').ANSWER") == 42


NOTEBOOK_FOLDER = "/Workspace" + NOTEBOOK_PATH.rsplit("/", 1)[0]


def test_the_working_directory_reads_as_a_workspace_path(py: KernelSession) -> None:
    """As on Databricks Runtime 14+: os.getcwd(), %pwd, Path.cwd() and abspath."""
    assert py.value("__import__('os').getcwd()") == NOTEBOOK_FOLDER
    assert py.value("get_ipython().run_line_magic('pwd', '')") == NOTEBOOK_FOLDER
    assert py.value("str(__import__('pathlib').Path.cwd())") == NOTEBOOK_FOLDER
    assert py.value("__import__('os').path.abspath('helper_mod.py')") == (
        f"{NOTEBOOK_FOLDER}/helper_mod.py"
    )
    assert py.value("__import__('os').getcwdb().decode()") == NOTEBOOK_FOLDER
    # What the spelling gives back works with the file APIs, as it does on Databricks.
    assert (
        py.value(
            "open(__import__('os').path.join(__import__('os').getcwd(), 'helper_mod.py')).read()"
        )
        == "ANSWER = 42\n"
    )


def test_a_subprocess_started_in_the_working_directory_runs_in_the_local_folder(
    py: KernelSession, layout: Layout
) -> None:
    """subprocess(cwd=os.getcwd()) works as on Databricks; the child sees the real folder."""
    out = py.value(
        "__import__('subprocess').run(['pwd', '-P'], cwd=__import__('os').getcwd(), "
        "capture_output=True, text=True, check=True).stdout.strip()"
    )
    assert out == str(layout.notebook_dir.resolve())


def test_sh_pwd_shows_the_workspace_path(py: KernelSession, layout: Layout) -> None:
    out = py.ok(
        "from orchestrator.local.kernel.shell_magics import run_shell as __orch_sh\n"
        "__orch_sh('pwd; mkdir -p sub && cd sub && pwd; cd / && pwd; echo \"real=$PWD\"')"
    ).stdout.splitlines()
    assert out == [NOTEBOOK_FOLDER, f"{NOTEBOOK_FOLDER}/sub", "/", "real=/"]
    shutil.rmtree(layout.notebook_dir / "sub")


def test_chdir_follows_the_workspace_spelling_and_leaves_other_folders_alone(
    py: KernelSession, layout: Layout, tmp_path: Path
) -> None:
    (layout.workspace / "Shared" / "pkg_home").mkdir(parents=True)
    try:
        py.ok("__import__('os').chdir('/Workspace/Shared/pkg_home')")
        assert py.value("__import__('os').getcwd()") == "/Workspace/Shared/pkg_home"
        # The process is really there: a file written by a relative path lands in the folder.
        py.ok("open('written.txt', 'w').write('x')")
        assert (layout.workspace / "Shared" / "pkg_home" / "written.txt").is_file()
        assert py.value(
            f"[__import__('os').chdir({str(tmp_path)!r}), __import__('os').getcwd()][1]"
        ) == (str(tmp_path))
    finally:
        py.ok(f"__import__('os').chdir({str(layout.notebook_dir)!r})")
        shutil.rmtree(layout.workspace / "Shared")


def test_a_workspace_path_on_sys_path_imports(py: KernelSession, layout: Layout) -> None:
    """pytest's rootdir, or a notebook's own sys.path.append, spelled /Workspace/...."""
    package = layout.workspace / "Repos" / "team" / "proj" / "mypkg_ws"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from .core import VALUE\n")
    (package / "core.py").write_text("VALUE = 'from the workspace'\n")
    try:
        py.ok("import sys; sys.path.append('/Workspace/Repos/team/proj')")
        assert py.value("__import__('mypkg_ws').VALUE") == "from the workspace"
        assert py.value("__import__('os').path.isfile(__import__('mypkg_ws').__file__)") is True
    finally:
        py.ok("sys.path.remove('/Workspace/Repos/team/proj'); sys.modules.pop('mypkg_ws', None)")
        shutil.rmtree(layout.workspace / "Repos")


def test_restart_python_makes_new_pip_packages_importable(
    py: KernelSession, layout: Layout
) -> None:
    py.ok("import importlib; importlib.import_module('json')")  # warm the finder caches
    (layout.pip_target / "fresh_pkg_for_restart.py").write_text("VALUE = 'new'\n")
    py.ok("dbutils.library.restartPython()")
    assert py.value("__import__('fresh_pkg_for_restart').VALUE") == "new"


# --------------------------------------------------------------------------- widgets


def test_run_parameters_win_over_widget_defaults(py: KernelSession) -> None:
    py.ok('dbutils.widgets.text("env", "dev", "Environment")')
    assert py.value('dbutils.widgets.get("env")') == "ci"


def test_a_widget_without_parameter_returns_its_default(py: KernelSession) -> None:
    py.ok('dbutils.widgets.text("name", "world")')
    assert py.value('dbutils.widgets.get("name")') == "world"


def test_parameters_are_readable_without_a_widget(py: KernelSession) -> None:
    assert py.value('dbutils.widgets.get("choice")') == "b"


def test_an_undefined_widget_raises_input_widget_not_defined(py: KernelSession) -> None:
    result = py.run('dbutils.widgets.get("nope")')
    assert result.status == "error"
    assert result.ename == "InputWidgetNotDefined"
    assert "InputWidgetNotDefined: No input widget named nope is defined" in str(result.evalue)
    # The Databricks idiom for optional widgets keeps working.
    code = """
    try:
        dbutils.widgets.get("nope")
    except Exception as e:
        found = "InputWidgetNotDefined" in str(e)
    """
    py.ok(code)
    assert py.value("found") is True


def test_get_argument_returns_the_default_for_an_undefined_widget(py: KernelSession) -> None:
    assert py.value('getArgument("nope", "fallback")') == "fallback"
    assert py.value('dbutils.widgets.getArgument("nope")') is None
    assert py.value('getArgument("env", "x")') == "ci"


def test_dropdown_default_must_be_one_of_the_choices(py: KernelSession) -> None:
    result = py.run('dbutils.widgets.dropdown("color", "red", ["green", "blue"])')
    assert result.ename == "WidgetError"
    assert "not one of the choices" in str(result.evalue)
    py.ok('dbutils.widgets.dropdown("color", "blue", ["green", "blue"], "Color")')
    assert py.value('dbutils.widgets.get("color")') == "blue"
    # A combobox accepts any default.
    py.ok('dbutils.widgets.combobox("size", "XXL", ["S", "M"])')
    assert py.value('dbutils.widgets.get("size")') == "XXL"


def test_multiselect_returns_the_selection_comma_joined(py: KernelSession) -> None:
    py.ok('dbutils.widgets.multiselect("days", "mon", ["mon", "tue", "wed"])')
    assert py.value('dbutils.widgets.get("days")') == "mon"
    py.ok('dbutils.widgets.multiselect("days2", "mon,wed", ["mon", "tue", "wed"])')
    assert py.value('dbutils.widgets.get("days2")') == "mon,wed"
    py.ok('dbutils.widgets.multiselect("tags", "x", ["x", "y", "z"])')
    assert py.value('dbutils.widgets.get("tags")') == "x,y"  # the run parameter
    assert py.run('dbutils.widgets.multiselect("m", "q", ["x"])').ename == "WidgetError"


def test_get_all_remove_and_remove_all(py: KernelSession) -> None:
    py.ok('dbutils.widgets.text("a", "1"); dbutils.widgets.text("env", "dev")')
    assert py.value("dbutils.widgets.getAll()") == {"a": "1", **PARAMS}
    py.ok('dbutils.widgets.remove("a")')
    assert py.run('dbutils.widgets.get("a")').ename == "InputWidgetNotDefined"
    assert py.run('dbutils.widgets.remove("a")').ename == "InputWidgetNotDefined"
    py.ok('dbutils.widgets.text("b", "2"); dbutils.widgets.removeAll()')
    assert py.value("dbutils.widgets.getAll()") == PARAMS


# --------------------------------------------------------------------------- notebook


def test_exit_writes_exit_json_and_stops_the_cell(py: KernelSession, layout: Layout) -> None:
    result = py.run(
        """
        print("before")
        dbutils.notebook.exit({"rows": 3})
        print("after")
        """
    )
    assert result.ename == "NotebookExit"  # the executor looks at exit.json, not at this
    assert result.stdout == "before\n"
    assert result.errors == []  # no traceback output
    assert json.loads((layout.control / "exit.json").read_text()) == {"value": "{'rows': 3}"}
    assert sorted(p.name for p in layout.control.iterdir()) == ["exit.json"]
    # IPython's exception history holds no traceback for it: none was formatted (pygments on
    # the first exception of a kernel costs 0.1-0.2 s, at every notebook's exit)
    stored = py.value(
        "[e['traceback'] for e in get_ipython().history_manager.exceptions.values()"
        " if e['ename'] == 'NotebookExit']"
    )
    assert stored and all(traceback == [] for traceback in stored)
    assert py.value("1 + 1") == 2  # the kernel carries on


def test_the_context_gives_the_notebook_path(py: KernelSession) -> None:
    chain = "dbutils.notebook.entry_point.getDbutils().notebook().getContext()"
    assert py.value(f"{chain}.notebookPath().get()") == NOTEBOOK_PATH
    assert py.value("dbutils.notebook.getContext().notebookPath().get()") == NOTEBOOK_PATH
    assert py.value(f"{chain}.tags().apply('user')") == "a@example.com"
    context = py.value(f"__import__('json').loads({chain}.toJson())")
    assert context["extraContext"]["notebook_path"] == NOTEBOOK_PATH
    assert py.value("dbutils.notebook.entry_point.getCurrentBindings()") == PARAMS


# --------------------------------------------------------------------------- fs


def test_fs_put_head_and_ls_in_dbfs(py: KernelSession, layout: Layout) -> None:
    result = py.ok('dbutils.fs.put("dbfs:/fs1/a.txt", "héllo", overwrite=True)')
    assert result.stdout == "Wrote 6 bytes.\n"
    assert (layout.dbfs / "fs1" / "a.txt").read_text(encoding="utf-8") == "héllo"
    assert py.value('dbutils.fs.head("/dbfs/fs1/a.txt")') == "héllo"
    assert py.value('dbutils.fs.head("/fs1/a.txt", 1)') == "h"
    py.ok('dbutils.fs.mkdirs("/fs1/sub/deeper")')
    listing = py.value('[tuple(f) for f in dbutils.fs.ls("dbfs:/fs1")]')
    assert [entry[:3] for entry in listing] == [
        ["dbfs:/fs1/a.txt", "a.txt", 6],
        ["dbfs:/fs1/sub/", "sub/", 0],
    ]
    assert all(isinstance(entry[3], int) and entry[3] > 1e12 for entry in listing)
    assert py.value('[f.isDir() for f in dbutils.fs.ls("/fs1")]') == [False, True]
    assert py.value('[f.name for f in dbutils.fs.ls("dbfs:/")]') == ["fs1/"]


def test_fs_put_refuses_to_overwrite_unless_asked(py: KernelSession, layout: Layout) -> None:
    py.ok('dbutils.fs.put("dbfs:/fs2/a.txt", "one")')
    result = py.run('dbutils.fs.put("dbfs:/fs2/a.txt", "two")')
    assert result.ename == "FileExistsError"
    assert "already exists" in str(result.evalue)
    py.ok('dbutils.fs.put("dbfs:/fs2/a.txt", "two", True)')
    assert (layout.dbfs / "fs2" / "a.txt").read_text() == "two"


def test_fs_cp_mv_and_rm(py: KernelSession, layout: Layout) -> None:
    py.ok(
        """
        dbutils.fs.put("dbfs:/fs3/src/one.txt", "1")
        dbutils.fs.put("dbfs:/fs3/src/nested/two.txt", "2")
        assert dbutils.fs.cp("dbfs:/fs3/src/one.txt", "dbfs:/fs3/copy.txt") is True
        """
    )
    assert (layout.dbfs / "fs3" / "copy.txt").read_text() == "1"
    result = py.run('dbutils.fs.cp("dbfs:/fs3/src", "dbfs:/fs3/dst")')
    assert result.ename == "IsADirectoryError"
    assert "recurse=True" in str(result.evalue)
    py.ok('dbutils.fs.cp("dbfs:/fs3/src", "/Workspace/fs3/dst", recurse=True)')
    assert (layout.workspace / "fs3" / "dst" / "nested" / "two.txt").read_text() == "2"
    py.ok('dbutils.fs.mv("/fs3/copy.txt", "/fs3/moved.txt")')
    assert not (layout.dbfs / "fs3" / "copy.txt").exists()
    assert (layout.dbfs / "fs3" / "moved.txt").read_text() == "1"
    py.ok('dbutils.fs.mkdirs("/fs3/into")')
    py.ok('dbutils.fs.cp("/fs3/moved.txt", "/fs3/into")')  # into an existing folder
    assert (layout.dbfs / "fs3" / "into" / "moved.txt").exists()
    assert py.run('dbutils.fs.rm("/fs3/src")').ename == "OSError"  # not empty
    assert py.value('dbutils.fs.rm("/fs3/src", recurse=True)') is True
    assert py.value('dbutils.fs.rm("/fs3/src", True)') is False
    assert not (layout.dbfs / "fs3" / "src").exists()
    assert py.value('dbutils.fs.rm("/fs3/moved.txt")') is True


def test_fs_workspace_and_file_paths(py: KernelSession, layout: Layout, tmp_path: Path) -> None:
    (layout.workspace / "Shared").mkdir(exist_ok=True)
    (layout.workspace / "Shared" / "w.txt").write_text("ws")
    assert py.value('[tuple(f)[:3] for f in dbutils.fs.ls("/Workspace/Shared")]') == [
        ["file:/Workspace/Shared/w.txt", "w.txt", 2]
    ]
    assert py.value('dbutils.fs.head("file:/Workspace/Shared/w.txt")') == "ws"
    (tmp_path / "local.txt").write_text("local")
    assert py.value(f'dbutils.fs.head("file:{tmp_path}/local.txt")') == "local"
    assert py.value(f'[f.path for f in dbutils.fs.ls("file://{tmp_path}")]') == [
        f"file:{tmp_path}/local.txt"
    ]


@pytest.mark.parametrize(
    "path",
    [
        "dbfs:/../outside",
        "/../outside",
        "/dbfs/x/../../outside",
        "/Workspace/../outside",
        "dbfs:/a/../../outside",
    ],
)
def test_fs_refuses_paths_that_leave_their_root(py: KernelSession, path: str) -> None:
    result = py.run(f'dbutils.fs.put("{path}", "x")')
    assert result.ename == "PermissionError"
    assert "escapes" in str(result.evalue)


def test_fs_missing_files_and_foreign_schemes(py: KernelSession) -> None:
    result = py.run('dbutils.fs.ls("dbfs:/does/not/exist")')
    assert result.ename == "FileNotFoundError"
    assert "File dbfs:/does/not/exist does not exist" in str(result.evalue)
    result = py.run('dbutils.fs.ls("abfss://c@acct.dfs.core.windows.net/x")')
    assert result.ename == "DbutilsError"
    assert "not available in the local workspace" in str(result.evalue)


# --------------------------------------------------------------------------- secrets


def test_secrets_get_list_and_scopes(py: KernelSession) -> None:
    assert py.value('dbutils.secrets.get("kv", "db-password") == "hunter2-long-value"') is True
    assert py.value('dbutils.secrets.getBytes("kv", "token") == b"tok-123456"') is True
    assert py.value('[m.key for m in dbutils.secrets.list("kv")]') == ["db-password", "token"]
    assert py.value("[s.name for s in dbutils.secrets.listScopes()]") == ["empty", "kv"]


def test_unknown_secrets_raise_like_databricks(py: KernelSession) -> None:
    result = py.run('dbutils.secrets.get("kv", "missing")')
    assert result.ename == "SecretNotFound"
    assert result.evalue == "Secret does not exist with scope: kv and key: missing"
    result = py.run('dbutils.secrets.get("nope", "k")')
    assert result.evalue == "Secret does not exist with scope: nope and key: k"
    assert py.run('dbutils.secrets.list("nope")').ename == "SecretNotFound"


def test_secret_values_are_redacted_from_output(py: KernelSession) -> None:
    result = py.ok(
        """
        pw = dbutils.secrets.get("kv", "db-password")
        print("password:", pw)
        print(f"dsn=user:{pw}@host")
        import sys; print(pw, file=sys.stderr)
        pw
        """
    )
    assert "hunter2" not in result.stdout + result.stderr + result.text
    assert result.stdout == "password: [REDACTED]\ndsn=user:[REDACTED]@host\n"
    assert result.stderr == "[REDACTED]\n"
    assert result.text == "'[REDACTED]'"
    assert py.value("len(pw)") == len("hunter2-long-value")  # the value itself is intact


# --------------------------------------------------------------------------- display


def test_display_of_a_list_of_dicts_is_an_html_table(py: KernelSession) -> None:
    result = py.ok('display([{"a": 1, "b": "<x>"}, {"a": 2, "c": None}])')
    assert len(result.displays) == 1
    html = result.displays[0]["text/html"]
    assert html.startswith("<table")
    assert "<th>a</th><th>b</th><th>c</th>" in html
    assert "<td>&lt;x&gt;</td>" in html
    assert "<td>null</td>" in html
    assert "text/plain" in result.displays[0]


def test_display_uses_to_html_of_dataframe_like_objects(py: KernelSession) -> None:
    result = py.ok(
        """
        class Frame:
            def to_html(self, max_rows=None):
                return f"<table data-max-rows='{max_rows}'></table>"
            def __repr__(self):
                return "Frame()"
        display(Frame())
        """
    )
    assert result.displays == [
        {"text/html": "<table data-max-rows='10000'></table>", "text/plain": "Frame()"}
    ]


def test_display_of_a_spark_dataframe_shows_databricks_row_limit(py: KernelSession) -> None:
    """Databricks' results tables hold 10,000 rows or 2 MB, whichever is lower."""
    result = py.ok(
        """
        class Row(dict):
            def asDict(self):
                return dict(self)
        class DataFrame:
            columns = ["id", "name"]
            def __init__(self, n=5):
                self.n = n
            def limit(self, n):
                return DataFrame(min(n, self.n))
            def toPandas(self):
                raise ImportError("pandas is not installed")
            def collect(self):
                return [Row(id=i, name=f"n{i}") for i in range(self.n)]
        DataFrame.__module__ = "pyspark.sql.dataframe"
        display(DataFrame(12000))
        """
    )
    html = result.displays[0]["text/html"]
    assert html.count("<tr>") == 1 + 10_000  # header + the first 10,000 rows
    assert "<td>n9999</td>" in html and "<td>n10000</td>" not in html
    assert "Truncated results, showing the first 10,000 rows." in html


def test_display_of_other_objects_uses_their_repr(py: KernelSession) -> None:
    result = py.ok("display(42)")
    assert result.displays == [{"text/plain": "42"}]


def test_display_html_sends_html(py: KernelSession) -> None:
    result = py.ok('displayHTML("<h1>Report</h1>")')
    assert result.displays == [{"text/html": "<h1>Report</h1>"}]


# --------------------------------------------------------------------------- spark


def test_spark_without_pyspark_raises_a_clear_error(py: KernelSession) -> None:
    # a kernel without the spark extra: pyspark and pysail are made unfindable in it (the
    # extra is installed here, as in CI, so its absence is simulated, not skipped)
    py.ok(
        "import sys\n"
        "sys.path[:] = [p for p in sys.path if 'site-packages' not in p]\n"
        "assert __import__('importlib.util').util.find_spec('pyspark') is None"
    )
    result = py.run("spark.range(3)")
    assert result.ename == "SparkNotAvailable"
    assert result.evalue == (
        "spark is not available in the local workspace: pip install 'orchestrator[spark]'"
    )
    assert py.run("sc.parallelize([1])").ename == "SparkNotAvailable"
    # Showing the proxy does not try to start Spark.
    assert "SparkSession" in py.ok("spark").text


# --------------------------------------------------------------------------- file APIs


def test_open_and_os_functions_see_workspace_and_dbfs(py: KernelSession, layout: Layout) -> None:
    py.ok(
        """
        import os
        os.makedirs("/Workspace/osdata/data/sub", exist_ok=True)
        with open("/Workspace/osdata/data/a.csv", "w") as f:
            f.write("x,y\\n1,2\\n")
        os.mkdir("/dbfs/tmp_os")
        with open(b"/dbfs/tmp_os/b.bin", "wb") as f:
            f.write(b"\\x00\\x01")
        """
    )
    assert (layout.workspace / "osdata" / "data" / "a.csv").read_text() == "x,y\n1,2\n"
    assert (layout.dbfs / "tmp_os" / "b.bin").read_bytes() == b"\x00\x01"
    checks = py.value(
        """{
        "exists": os.path.exists("/Workspace/osdata/data/a.csv"),
        "isfile": os.path.isfile("/Workspace/osdata/data/a.csv"),
        "isdir": os.path.isdir("/dbfs/tmp_os"),
        "root": os.path.isdir("/dbfs"),
        "missing": os.path.exists("/dbfs/nope"),
        "not_a_prefix": os.path.exists("/dbfsx"),
        "listdir": sorted(os.listdir("/Workspace/osdata/data")),
        "listdir_bytes": os.listdir(b"/dbfs/tmp_os") == [b"b.bin"],
        "size": os.stat("/Workspace/osdata/data/a.csv").st_size,
        "getsize": os.path.getsize("/dbfs/tmp_os/b.bin"),
        "access": os.access("/dbfs/tmp_os/b.bin", os.R_OK),
        "scandir": sorted(
            (e.name, e.path, e.is_dir()) for e in os.scandir("/Workspace/osdata/data")
        ),
        "walk": [
            (d, sorted(s), sorted(f)) for d, s, f in os.walk("/Workspace/osdata", topdown=False)
        ],
        }"""
    )
    assert checks == {
        "exists": True,
        "isfile": True,
        "isdir": True,
        "root": True,
        "missing": False,
        "not_a_prefix": False,
        "listdir": ["a.csv", "sub"],
        "listdir_bytes": True,
        "size": 8,
        "getsize": 2,
        "access": True,
        "scandir": [
            ["a.csv", "/Workspace/osdata/data/a.csv", False],
            ["sub", "/Workspace/osdata/data/sub", True],
        ],
        "walk": [
            ["/Workspace/osdata/data/sub", [], []],
            ["/Workspace/osdata/data", ["sub"], ["a.csv"]],
            ["/Workspace/osdata", ["data"], []],
        ],
    }
    py.ok(
        """
        os.rename("/dbfs/tmp_os/b.bin", "/dbfs/tmp_os/c.bin")
        os.replace("/dbfs/tmp_os/c.bin", "/Workspace/osdata/c.bin")
        os.remove("/Workspace/osdata/c.bin")
        os.rmdir("/dbfs/tmp_os")
        """
    )
    assert not (layout.dbfs / "tmp_os").exists()
    assert not (layout.workspace / "osdata" / "c.bin").exists()


def test_pathlib_shutil_and_glob_see_workspace_and_dbfs(py: KernelSession, layout: Layout) -> None:
    py.ok(
        """
        import glob, shutil
        from pathlib import Path
        base = Path("/dbfs/pl")
        (base / "in" / "deep").mkdir(parents=True, exist_ok=True)
        (base / "in" / "one.txt").write_text("one")
        (base / "in" / "deep" / "two.txt").write_text("two")
        with (base / "in" / "three.txt").open("w") as f:
            f.write("three")
        (base / "touched").touch()
        shutil.copy(base / "in" / "one.txt", "/Workspace/pl_copy.txt")
        shutil.copy2("/Workspace/pl_copy.txt", "/dbfs/pl/copy2.txt")
        shutil.copytree("/dbfs/pl/in", "/Workspace/pl_tree")
        shutil.move("/dbfs/pl/copy2.txt", "/dbfs/pl/moved.txt")
        """
    )
    assert (layout.workspace / "pl_tree" / "deep" / "two.txt").read_text() == "two"
    assert (layout.workspace / "pl_copy.txt").read_text() == "one"
    assert (layout.dbfs / "pl" / "moved.txt").read_text() == "one"
    checks = py.value(
        """{
        "read": Path("/Workspace/pl_tree/one.txt").read_text(),
        "exists": [Path("/dbfs/pl/touched").exists(), Path("/dbfs/pl/none").exists()],
        "is_dir": Path("/Workspace/pl_tree").is_dir(),
        "iterdir": sorted(str(p) for p in Path("/Workspace/pl_tree").iterdir()),
        "glob": sorted(str(p) for p in Path("/Workspace/pl_tree").glob("**/*.txt")),
        "glob_module": sorted(glob.glob("/dbfs/pl/in/*.txt")),
        "rglob_count": len(list(Path("/dbfs/pl").rglob("*"))),
        "resolve": str(Path("/Workspace/pl_tree/deep/../one.txt").resolve()),
        }"""
    )
    assert checks == {
        "read": "one",
        "exists": [True, False],
        "is_dir": True,
        "iterdir": [
            "/Workspace/pl_tree/deep",
            "/Workspace/pl_tree/one.txt",
            "/Workspace/pl_tree/three.txt",
        ],
        "glob": [
            "/Workspace/pl_tree/deep/two.txt",
            "/Workspace/pl_tree/one.txt",
            "/Workspace/pl_tree/three.txt",
        ],
        "glob_module": ["/dbfs/pl/in/one.txt", "/dbfs/pl/in/three.txt"],
        "rglob_count": 7,
        "resolve": "/Workspace/pl_tree/one.txt",
    }
    py.ok('shutil.rmtree("/Workspace/pl_tree"); Path("/Workspace/pl_copy.txt").unlink()')
    assert not (layout.workspace / "pl_tree").exists()
    assert not (layout.workspace / "pl_copy.txt").exists()


def test_file_apis_refuse_paths_that_leave_the_roots(py: KernelSession) -> None:
    result = py.run('open("/Workspace/../../etc/passwd")')
    assert result.ename == "PermissionError"
    result = py.run('__import__("os").listdir("/dbfs/a/../../..")')
    assert result.ename == "PermissionError"


def test_file_apis_leave_other_paths_alone(py: KernelSession, tmp_path: Path) -> None:
    target = tmp_path / "plain.txt"
    py.ok(f'open("{target}", "w").write("plain")')
    assert target.read_text() == "plain"
    assert py.value(f'__import__("os").listdir("{tmp_path}")') == ["plain.txt"]
    # IPython's own guard against opening the kernel's stdio still applies.
    assert py.run("open(1)").ename == "ValueError"


# --------------------------------------------------------------------------- R


@pytest.fixture(scope="module")
def r_layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    return make_layout(tmp_path_factory.mktemp("shims_r"))


@pytest.fixture(scope="module")
def r_kernel(r_layout: Layout) -> Iterator[KernelSession]:
    require_r()
    try:
        jupyter_client.kernelspec.get_kernel_spec("ir")
    except jupyter_client.kernelspec.NoSuchKernel:
        require("IRkernel's kernel spec is not installed")
    session = KernelSession("ir", r_layout.notebook_dir, r_layout.env())
    try:
        session.ok(f"source({json.dumps(str(R_SHIM))})")
        yield session
    finally:
        session.shutdown()


@pytest.fixture
def r(r_kernel: KernelSession, r_layout: Layout) -> KernelSession:
    r_kernel.ok("dbutils.widgets.removeAll()")
    (r_layout.control / "exit.json").unlink(missing_ok=True)
    return r_kernel


def r_value(session: KernelSession, expression: str) -> Any:
    result = session.ok(f"cat(jsonlite::toJSON({expression}, auto_unbox = TRUE), '\\n')")
    return json.loads(result.stdout.strip())


def test_r_source_leaves_only_the_api_in_the_global_environment(r: KernelSession) -> None:
    names = r_value(r, "ls(globalenv())")
    assert "dbutils.widgets.get" in names
    assert "displayHTML" in names
    assert all(n.startswith("dbutils.") or n in ("display", "displayHTML") for n in names)


def test_r_widgets_parameters_defaults_and_errors(r: KernelSession) -> None:
    r.ok('dbutils.widgets.text("env", "dev"); dbutils.widgets.text("name", "world", "Name")')
    assert r_value(r, 'dbutils.widgets.get("env")') == "ci"
    assert r_value(r, 'dbutils.widgets.get("name")') == "world"
    assert r_value(r, 'dbutils.widgets.get("choice")') == "b"
    result = r.run('dbutils.widgets.get("nope")')
    assert result.status == "error"
    assert "InputWidgetNotDefined: No input widget named nope is defined" in str(result.evalue)
    assert r_value(r, 'dbutils.widgets.getArgument("nope", "fallback")') == "fallback"
    result = r.run('dbutils.widgets.dropdown("color", "red", c("green", "blue"))')
    assert "not one of the choices" in str(result.evalue)
    r.ok('dbutils.widgets.dropdown("color", "blue", c("green", "blue"))')
    assert r_value(r, "dbutils.widgets.getAll()") == {
        "color": "blue",
        "env": "ci",
        "name": "world",
        **PARAMS,
    }
    r.ok("dbutils.widgets.removeAll()")
    assert r_value(r, "dbutils.widgets.getAll()") == PARAMS


def test_r_exit_writes_exit_json_and_stops(r: KernelSession, r_layout: Layout) -> None:
    # IRkernel goes on with the rest of a line after an error, never with the next line.
    result = r.run('cat("before\\n")\ndbutils.notebook.exit("done: 42")\ncat("after\\n")')
    assert result.status == "error"
    assert "Notebook exited: done: 42" in str(result.evalue)
    assert result.stdout == "before\n"
    assert json.loads((r_layout.control / "exit.json").read_text()) == {"value": "done: 42"}
    assert sorted(p.name for p in r_layout.control.iterdir()) == ["exit.json"]
    caught = r_value(
        r, "tryCatch(dbutils.notebook.exit(1), notebook_exit = function(e) class(e)[1])"
    )
    assert caught == "notebook_exit"


def test_r_secrets(r: KernelSession) -> None:
    assert r_value(r, 'dbutils.secrets.get("kv", "token")') == "tok-123456"
    assert r_value(r, 'dbutils.secrets.get(scope = "kv", key = "db-password")') == (
        "hunter2-long-value"
    )
    result = r.run('dbutils.secrets.get("kv", "missing")')
    assert "Secret does not exist with scope: kv and key: missing" in str(result.evalue)
    assert r_value(r, 'sapply(dbutils.secrets.list("kv"), function(m) m$key)') == [
        "db-password",
        "token",
    ]


def test_r_display_and_display_html(r: KernelSession) -> None:
    result = r.ok('displayHTML("<b>bold</b>")')
    assert [d["text/html"] for d in result.displays] == ["<b>bold</b>"]
    result = r.ok('display(data.frame(id = 1:3, name = c("a", "<b>", "c")))')
    assert len(result.displays) == 1
    html = result.displays[0]["text/html"]
    assert "<table" in html
    assert "&lt;b&gt;" in html


def test_r_fs_over_dbfs_and_workspace(r: KernelSession, r_layout: Layout) -> None:
    result = r.ok('dbutils.fs.put("dbfs:/r/a.txt", "hello", overwrite = TRUE)')
    assert "Wrote 5 bytes." in result.stdout
    assert (r_layout.dbfs / "r" / "a.txt").read_text() == "hello"
    assert r_value(r, 'dbutils.fs.head("/dbfs/r/a.txt")') == "hello"
    assert r_value(r, 'as.list(dbutils.fs.ls("/r")$path)') == ["dbfs:/r/a.txt"]
    r.ok('dbutils.fs.cp("dbfs:/r", "/Workspace/r_copy", recurse = TRUE)')
    assert (r_layout.workspace / "r_copy" / "a.txt").read_text() == "hello"
    assert r_value(r, 'dbutils.fs.rm("/Workspace/r_copy", recurse = TRUE)') is True
    result = r.run('dbutils.fs.put("dbfs:/../x", "no")')
    assert "escapes" in str(result.evalue)


# --------------------------------------------------------------------------- helpers' own test


def test_harness_reports_iopub_errors(py: KernelSession) -> None:
    result = py.run("1/0")
    assert result.ename == "ZeroDivisionError"
    assert result.errors and result.errors[0]["ename"] == "ZeroDivisionError"
