"""No POSIX-only call outside a guarded branch: the package, the scripts and the notebooks run on Windows too.

Issue 28: the course runs on Linux, macOS and Windows, and on Colab where only the installed package
exists. This test reads every ``.py`` file of ``workflow_utils/`` and ``scripts/`` and every code cell of
``notebooks/*.ipynb`` and ``notebooks/solutions/*.ipynb`` with ``ast`` (a notebook's ``%magic`` and
``!shell`` lines are read as ``pass``), and fails naming ``file:line`` (``file:cell N, line M`` in a
notebook) for each of these:

- importing a module that Windows lacks (``POSIX_MODULES``: ``fcntl``, ``resource``, ``pwd``, ``grp``,
  ``termios``, ``tty``, ``pty``, ...);
- a name of ``os`` or ``signal`` that Windows lacks (``POSIX_NAMES``: ``os.fork``, ``os.setsid``,
  ``os.killpg``, ``os.getuid``, ``os.uname``, ``os.wait``, ``os.sysconf``, ``os.statvfs``, ...,
  ``signal.alarm``, ``signal.setitimer``, ``signal.SIGKILL``, ``SIGHUP``, ``SIGUSR1``, ``SIGALRM``, ...),
  read as an attribute, imported with ``from os import fork``, or read with ``getattr(signal, "SIGKILL")``
  without a default; ``getattr(signal, "SIGKILL", signal.SIGTERM)`` is the portable spelling;
- multiprocessing's ``fork`` or ``forkserver`` start method named as a string: ``get_context("fork")``,
  ``set_start_method("fork")`` (first argument or ``method=``), or a ``start_method="fork"`` keyword
  (``torch.multiprocessing.start_processes``); ``"spawn"`` runs everywhere;
- a hard-coded ``/tmp`` or ``.venv/bin`` in a string (``tempfile`` and ``sys.executable`` find them on
  every system), or the path built in pieces: a string ending in ``.venv`` just before one starting with
  ``bin``, as neighbouring arguments of one call (``os.path.join(root, ".venv", "bin")``,
  ``Path(".venv", "bin")``) or neighbouring operands of ``/`` (``ROOT / ".venv" / "bin"``,
  ``Path(".venv") / "bin"``); docstrings and comments may mention them.

Names are resolved through the imports of the file (of the whole notebook, for a notebook), so
``import signal as s; s.SIGKILL`` counts as ``signal.SIGKILL`` and ``import os as o; o.fork()`` as
``os.fork``; ``from os import fork`` and ``from signal import SIGKILL`` are reported at the import.

The rule for exceptions is deliberately simple. A finding is allowed when it lies

1. in the branch of an ``if`` or a conditional expression that only POSIX takes, which the test must say
   in one of these ways (any other test, such as ``if IS_POSIX:`` or ``if fast:``, guards nothing):

   a. it compares ``sys.platform``, ``os.name`` or ``platform.system()`` (``.lower()`` allowed) with a
      string or a tuple of strings (``==``, ``!=``, ``in``, ``not in``), or calls ``.startswith(...)`` on
      one of them. A string starting with ``win`` or equal to ``nt`` names Windows, any other a POSIX
      system. The ``if`` branch is guarded when the test holds only on POSIX (``== "linux"``,
      ``!= "win32"``, ``os.name == "posix"``); the ``else`` branch when it holds on Windows
      (``sys.platform == "win32"``, ``os.name == "nt"``, ``.startswith("win")``, ``!= "posix"``). That
      branch is guarded for every kind of finding;
   b. it is ``hasattr(M, "...")`` or ``getattr(M, "...", ...)``, alone or ``is not None``: the ``if``
      branch is guarded for the names of that same module ``M`` only (``if hasattr(os, "fork"):
      os.fork()``), not for other modules, imports or strings (``if getattr(cfg, "fast", False):
      os.fork()`` is reported);
   c. ``not`` swaps the two branches; with ``and`` the ``if`` branch is guarded by what any operand
      guards there, and the ``else`` branch only by what every operand guards there; ``or`` the other way
      round.

   The test itself lies outside its guard: ``if hasattr(os, "fork") and os.fork() == 0:`` is reported; or
2. in the body (not the handlers, ``else`` or ``finally``) of a ``try`` one of whose ``except`` clauses
   catches ``ImportError``, ``ModuleNotFoundError`` or ``AttributeError`` (``try: import resource`` /
   ``except ImportError:``); or
3. on a line, the first line of the finding, that says why, with a comment ``# posix-only: <reason>``.

``ALLOWED`` below is empty: it is where a finding that must stay for a while would be listed, keyed by the
file and the finding's text, with its reason; a listed finding that is gone fails the test, so the list
never grows stale. Nothing is listed now.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

POSIX_MODULES = {"fcntl", "resource", "pwd", "grp", "termios", "tty", "pty", "crypt", "posix", "syslog"}
POSIX_NAMES = {
    "os": {
        "fork", "forkpty", "openpty", "register_at_fork", "setsid", "getsid", "setpgid", "getpgid",
        "setpgrp", "getpgrp", "killpg", "getuid", "geteuid", "getgid", "getegid", "setuid", "seteuid",
        "setgid", "setegid", "getgroups", "setgroups", "uname", "getloadavg", "nice", "sched_getaffinity",
        "sync", "wait", "wait3", "wait4", "waitid", "WNOHANG", "sysconf", "pathconf", "fpathconf", "statvfs",
        "fstatvfs", "chown", "lchown", "fchown", "mkfifo", "mknod", "ttyname", "ctermid",
    },
    "signal": {
        "alarm", "setitimer", "getitimer", "pause", "siginterrupt", "pthread_kill", "pthread_sigmask",
        "sigwait", "sigpending", "ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF",
        "SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGQUIT", "SIGCHLD", "SIGPIPE", "SIGSTOP",
        "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGWINCH", "SIGVTALRM", "SIGPROF",
    },
}  # fmt: skip
FORK_METHODS = {"fork", "forkserver"}
START_METHOD_CALLS = {"get_context", "set_start_method"}
PLATFORM_VALUES = {"sys.platform", "os.name"}
GUARD_ERRORS = {"ImportError", "ModuleNotFoundError", "AttributeError"}
POSIX_ONLY_COMMENT = re.compile(r"#\s*posix-only:\s*\S")
TMP = re.compile(r"(?<![\w.~-])/tmp(?![\w.~-])")

# What a branch is guarded for: module names (a hasattr/getattr guard), or EVERYTHING (a platform or try guard).
EVERYTHING = frozenset({"*"})
NOTHING: frozenset[str] = frozenset()

# Findings allowed to stay for now, each with its reason: (path, what the finding says) -> reason. Empty.
ALLOWED: dict[tuple[str, str], str] = {}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings (of the module, a class or a function)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def imported_names(tree: ast.AST) -> dict[str, str]:
    """What each name bound by an import stands for: ``{"s": "signal", "fork": "os.fork", "os": "os"}``."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                names[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name != "*":
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    """``node``'s dotted name with the imports resolved (``o.fork`` -> ``os.fork``), or None."""
    if isinstance(node, ast.Name):
        return names.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names)
        return f"{base}.{node.attr}" if base else None
    return None


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _posix_name(module: str | None, name: str) -> bool:
    return name in POSIX_NAMES.get(module or "", ())


def _name_finding(dotted: str) -> str:
    module, name = dotted.rsplit(".", 1)
    if module == "signal" and name.startswith("SIG"):
        return f'{dotted} (not on Windows; getattr(signal, "{name}", signal.SIGTERM) is portable)'
    return f"{dotted} (not on Windows)"


def _path_edge(node: ast.AST, last: bool) -> str | None:
    """The string at the end (``last``) or the start of a path piece: ``".venv"``, or ``Path(".venv")``'s."""
    if isinstance(node, ast.Call) and node.args and not node.keywords:
        node = node.args[-1 if last else 0]
    return _string(node)


def _venv_then_bin(left: ast.AST, right: ast.AST) -> str | None:
    """The finding when ``left`` ends in ``.venv`` and ``right`` starts with ``bin``, or None."""
    end, start = _path_edge(left, last=True), _path_edge(right, last=False)
    if end is None or start is None:
        return None
    if end.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] == ".venv" and start.split("/")[0] == "bin":
        return f"{end!r} then {start!r}: a hard-coded .venv/bin (Windows has .venv\\Scripts; use sys.executable)"
    return None


def _finding(node: ast.AST, names: dict[str, str], docstrings: set[int]) -> tuple[str | None, str] | None:
    """``(module, what)`` that is POSIX-only about ``node`` itself, or None; ``module`` is the module whose
    name it uses (what a ``hasattr`` guard must name), None for an import of a module or a string."""
    if isinstance(node, ast.Import):
        hit = sorted({alias.name.split(".")[0] for alias in node.names} & POSIX_MODULES)
        return (None, f"import {hit[0]} (a module Windows lacks)") if hit else None
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        module = node.module.split(".")[0]
        if module in POSIX_MODULES:
            return None, f"from {module} import ... (a module Windows lacks)"
        hit = sorted(alias.name for alias in node.names if _posix_name(node.module, alias.name))
        return (node.module, f"from {node.module} import {hit[0]} (not on Windows)") if hit else None
    if isinstance(node, ast.Attribute):
        dotted = _dotted(node, names)
        module = dotted.rsplit(".", 1)[0] if dotted else None
        return (module, _name_finding(dotted)) if dotted and _posix_name(module, node.attr) else None
    if isinstance(node, ast.Call):
        function = _dotted(node.func, names) or (node.func.attr if isinstance(node.func, ast.Attribute) else "")
        if function == "getattr" and len(node.args) == 2 and not node.keywords:  # no default
            module, name = _dotted(node.args[0], names), _string(node.args[1])
            if name is not None and _posix_name(module, name):
                return module, f'getattr({module}, "{name}") without a default: {_name_finding(f"{module}.{name}")}'
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        if function.rsplit(".", 1)[-1] in START_METHOD_CALLS:
            method = _string(node.args[0] if node.args else keywords.get("method"))
            if method in FORK_METHODS:
                module = function.rsplit(".", 1)[0] if "." in function else None
                return module, f'{function}("{method}") (Windows has only "spawn")'
        if _string(keywords.get("start_method")) in FORK_METHODS:
            method = _string(keywords["start_method"])
            return None, f'start_method="{method}" in {function or "a call"}() (Windows has only "spawn")'
        for left, right in zip(node.args, node.args[1:]):
            if what := _venv_then_bin(left, right):
                return None, what
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # ROOT / ".venv" / "bin": the last two
        left = node.left.right if isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Div) else node.left
        if what := _venv_then_bin(left, node.right):
            return None, what
    text = _string(node)
    if text is not None and id(node) not in docstrings:
        if TMP.search(text):
            return None, f"{text!r}: a hard-coded /tmp (use tempfile)"
        if ".venv/bin" in text:
            return None, f"{text!r}: a hard-coded .venv/bin (Windows has .venv\\Scripts; use sys.executable)"
    return None


def _is_platform(node: ast.AST, names: dict[str, str]) -> bool:
    """Whether ``node`` reads ``sys.platform``, ``os.name`` or ``platform.system()`` (``.lower()`` allowed)."""
    if isinstance(node, ast.Call) and not node.args and isinstance(node.func, ast.Attribute):
        if node.func.attr in ("lower", "casefold"):
            return _is_platform(node.func.value, names)
        return _dotted(node.func, names) == "platform.system"
    return _dotted(node, names) in PLATFORM_VALUES


def _platform_branches(strings: ast.AST, holds: bool) -> tuple[frozenset[str], frozenset[str]]:
    """The branches a platform test guards, given what it compares with and whether it holds on a match."""
    items = strings.elts if isinstance(strings, (ast.Tuple, ast.List, ast.Set)) else [strings]
    values = [_string(item) for item in items]
    if not values or None in values:
        return NOTHING, NOTHING
    windows = {value.lower().startswith("win") or value.lower() == "nt" for value in values}
    if len(windows) != 1:  # Windows and POSIX names mixed
        return NOTHING, NOTHING
    posix_when_it_holds = holds != windows.pop()
    return (EVERYTHING, NOTHING) if posix_when_it_holds else (NOTHING, EVERYTHING)


def _union(covers: list[frozenset[str]]) -> frozenset[str]:
    return frozenset().union(*covers)


def _intersection(covers: list[frozenset[str]]) -> frozenset[str]:
    result = EVERYTHING
    for cover in covers:
        result = cover if result == EVERYTHING else result if cover == EVERYTHING else result & cover
    return result


def branches(test: ast.AST, names: dict[str, str]) -> tuple[frozenset[str], frozenset[str]]:
    """What the ``if`` branch and the ``else`` branch of a test are guarded for (rule 1 of the docstring)."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        body, orelse = branches(test.operand, names)
        return orelse, body
    if isinstance(test, ast.BoolOp):
        parts = [branches(value, names) for value in test.values]
        bodies, orelses = [body for body, _ in parts], [orelse for _, orelse in parts]
        if isinstance(test.op, ast.And):
            return _union(bodies), _intersection(orelses)
        return _intersection(bodies), _union(orelses)
    if isinstance(test, ast.Call) and _dotted(test.func, names) in ("hasattr", "getattr") and test.args:
        module = _dotted(test.args[0], names)
        return (frozenset({module}) if module else NOTHING), NOTHING
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute) and test.func.attr == "startswith":
        if _is_platform(test.func.value, names) and len(test.args) == 1:
            return _platform_branches(test.args[0], holds=True)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, (ast.Is, ast.IsNot)) and isinstance(right, ast.Constant) and right.value is None:
            body, orelse = branches(left, names)
            return (body, orelse) if isinstance(op, ast.IsNot) else (orelse, body)
        if isinstance(op, (ast.Eq, ast.NotEq)) and _is_platform(right, names):
            left, right = right, left
        if isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) and _is_platform(left, names):
            return _platform_branches(right, holds=isinstance(op, (ast.Eq, ast.In)))
    return NOTHING, NOTHING


def _guards_its_body(node: ast.AST) -> bool:
    """Whether ``node`` is a ``try`` whose handlers catch ImportError, ModuleNotFoundError or AttributeError."""
    if not isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
        return False
    caught = set()
    for handler in node.handlers:
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        caught |= {t.id for t in types if isinstance(t, ast.Name)}
    return bool(caught & GUARD_ERRORS)


def scan_source(source: str, names: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """``(line, what)`` for each POSIX-only use in Python ``source`` that no guard or comment allows.

    ``names``: what imported names stand for (``imported_names``); by default those of ``source`` itself.
    """
    tree = ast.parse(source)
    names = imported_names(tree) if names is None else names
    lines = source.splitlines()
    docstrings = _docstrings(tree)
    found = []

    def visit(node: ast.AST, guarded: frozenset[str]) -> None:
        finding = None if guarded == EVERYTHING else _finding(node, names, docstrings)
        if finding is not None and finding[0] not in guarded:
            line = lines[node.lineno - 1] if node.lineno <= len(lines) else ""
            if not POSIX_ONLY_COMMENT.search(line):
                found.append((node.lineno, finding[1]))
        if isinstance(node, (ast.If, ast.IfExp)):
            body, orelse = branches(node.test, names)
            visit(node.test, guarded)  # the test lies outside its guard
            for child in node.body if isinstance(node.body, list) else [node.body]:
                visit(child, _union([guarded, body]))
            for child in node.orelse if isinstance(node.orelse, list) else [node.orelse]:
                visit(child, _union([guarded, orelse]))
            return
        if _guards_its_body(node):  # only the try body is guarded, not its handlers, else or finally
            for child in node.body:
                visit(child, EVERYTHING)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, NOTHING)
    return sorted(found)


MAGIC = re.compile(r"^(\s*)[%!]")


def notebook_cells(path: Path) -> Iterator[tuple[int, str]]:
    """``(cell number, Python source)`` for each code cell, IPython's %magic and !shell lines read as pass."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells, start=1):
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            yield number, "\n".join(MAGIC.sub(r"\1pass  # ", line) for line in source.splitlines())


def scan_notebook(path: Path) -> list[tuple[str, str]]:
    """``("cell N, line M", what)`` for each finding of a notebook; an import in one cell counts in all."""
    cells = list(notebook_cells(path))
    names = {}
    for _, source in cells:
        names.update(imported_names(ast.parse(source)))
    return [(f"cell {cell}, line {line}", what) for cell, source in cells for line, what in scan_source(source, names)]


def scan_file(path: Path) -> list[tuple[str, str]]:
    """``(where, what)`` for each finding of a ``.py`` file (``"12"``) or a notebook (``"cell 3, line 2"``)."""
    if path.suffix == ".ipynb":
        return scan_notebook(path)
    return [(str(line), what) for line, what in scan_source(path.read_text(encoding="utf-8"))]


def python_files() -> list[Path]:
    return sorted([*(ROOT / "workflow_utils").rglob("*.py"), *(ROOT / "scripts").glob("*.py")])


def notebooks() -> list[Path]:
    return sorted([*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "notebooks" / "solutions").glob("*.ipynb")])


def findings() -> list[str]:
    """Every POSIX-only use outside a guard, as 'file:line: what', less the ``ALLOWED`` ones."""
    report = []
    for path in [*python_files(), *notebooks()]:
        name = path.relative_to(ROOT).as_posix()
        report += [f"{name}:{where}: {what}" for where, what in scan_file(path) if (name, what) not in ALLOWED]
    return report


def test_the_scanner_reads_the_package_the_scripts_and_every_notebook():
    names = {path.relative_to(ROOT).as_posix() for path in python_files()}
    assert {"workflow_utils/train_digits.py", "workflow_utils/distributed.py", "scripts/check_python.py"} <= names
    assert len(notebooks()) >= 18 and ROOT / "notebooks" / "08_scaling_up.ipynb" in notebooks()


def test_no_posix_only_call_outside_a_guarded_branch():
    found = findings()
    assert found == [], (
        "POSIX-only code that Windows cannot run; guard it (if sys.platform != 'win32':), use the portable "
        "spelling, or mark the line '# posix-only: <reason>':\n" + "\n".join(found)
    )


def test_every_allowed_finding_is_still_there():
    """An allowance whose finding is gone is removed, so the list never grows stale."""
    for (name, what), reason in ALLOWED.items():
        assert reason, f"{name}: give the reason it is allowed"
        assert what in [w for _, w in scan_file(ROOT / name)], f"{name} no longer has {what!r}: remove it from ALLOWED"


# --- the scanner itself: what it reports, and what it lets through --------------------------------------


@pytest.mark.parametrize(
    ("snippet", "what"),
    [
        ("import fcntl\n", "import fcntl (a module Windows lacks)"),
        ("import os, resource\n", "import resource (a module Windows lacks)"),
        ("from pwd import getpwuid\n", "from pwd import ... (a module Windows lacks)"),
        ("import termios as t\n", "import termios (a module Windows lacks)"),
        ("import os\nos.setsid()\n", "os.setsid (not on Windows)"),
        ("import os\npid = os.fork()\n", "os.fork (not on Windows)"),
        ("import os\nos.killpg(1, 9)\n", "os.killpg (not on Windows)"),
        ("import os\nuser = os.getuid()\n", "os.getuid (not on Windows)"),
        ("import os\nprint(os.uname().sysname)\n", "os.uname (not on Windows)"),
        ("import os\npid, status = os.wait()\n", "os.wait (not on Windows)"),
        ("import os\ncores = os.sysconf('SC_NPROCESSORS_ONLN')\n", "os.sysconf (not on Windows)"),
        ("import os\nfree = os.statvfs('.').f_bavail\n", "os.statvfs (not on Windows)"),
        ("from os import fork\n", "from os import fork (not on Windows)"),
        ("from os import path, setsid as detach\n", "from os import setsid (not on Windows)"),
        ("import os, signal\nos.kill(1, signal.SIGKILL)\n", "signal.SIGKILL (not on Windows; "),
        ("import signal\nsignal.signal(signal.SIGALRM, print)\n", "signal.SIGALRM (not on Windows; "),
        ("import signal\nx = [signal.SIGHUP, signal.SIGUSR1]\n", "signal.SIGHUP (not on Windows; "),
        ("import signal\nsignal.alarm(5)\n", "signal.alarm (not on Windows)"),
        ("import signal\nsignal.setitimer(signal.ITIMER_REAL, 1.0)\n", "signal.ITIMER_REAL (not on Windows)"),
        ("from signal import SIGKILL\n", "from signal import SIGKILL (not on Windows)"),
        # import aliases are resolved
        ("import signal as s\nos.kill(1, s.SIGKILL)\n", "signal.SIGKILL (not on Windows; "),
        ("import os as o\npid = o.fork()\n", "os.fork (not on Windows)"),
        ("from signal import SIGKILL as KILL\nos.kill(1, KILL)\n", "from signal import SIGKILL (not on Windows)"),
        # getattr without a default fails where the name is missing
        ("import signal\nsig = getattr(signal, 'SIGKILL')\n", 'getattr(signal, "SIGKILL") without a default: '),
        ("import os as o\nfork = getattr(o, 'fork')\n", 'getattr(os, "fork") without a default: os.fork'),
        # multiprocessing's fork start method
        ("import multiprocessing as mp\nctx = mp.get_context('fork')\n", 'multiprocessing.get_context("fork")'),
        ("import multiprocessing\nmultiprocessing.set_start_method('fork', force=True)\n", "multiprocessing.set_"),
        ("from multiprocessing import get_context\nget_context(method='forkserver')\n", "multiprocessing.get_"),
        ("import torch.multiprocessing as tmp\ntmp.set_start_method('fork')\n", "torch.multiprocessing.set_start_"),
        ("import torch.multiprocessing as tmp\ntmp.start_processes(f, start_method='fork')\n", 'start_method="fork"'),
        # hard-coded paths
        ("out = '/tmp/run'\n", "'/tmp/run': a hard-coded /tmp"),
        ("from pathlib import Path\nPath('/tmp')\n", "'/tmp': a hard-coded /tmp"),
        ("cmd = 'cd /tmp && ls'\n", "'cd /tmp && ls': a hard-coded /tmp"),
        ("out = f'/tmp/{name}.log'\n", "'/tmp/': a hard-coded /tmp"),
        ("cmd = ['.venv/bin/python', '-m', 'pytest']\n", "'.venv/bin/python': a hard-coded .venv/bin"),
        ("import os\npython = os.path.join(root, '.venv', 'bin', 'python')\n", "'.venv' then 'bin': a hard-coded"),
        ("from pathlib import Path\npython = Path('.venv', 'bin/python')\n", "'.venv' then 'bin/python': a hard"),
        ("from pathlib import Path\npython = Path('.venv') / 'bin' / 'python'\n", "'.venv' then 'bin': a hard"),
        ("python = ROOT / '.venv' / 'bin' / 'python'\n", "'.venv' then 'bin': a hard-coded .venv/bin"),
        ("python = ROOT / 'build/.venv' / 'bin'\n", "'build/.venv' then 'bin': a hard-coded .venv/bin"),
    ],
)
def test_the_scanner_reports_each_kind_of_posix_only_call(snippet, what):
    found = scan_source(snippet)
    assert len(found) >= 1 and found[0][1].startswith(what), found


@pytest.mark.parametrize(("module", "name"), sorted((m, n) for m, names in POSIX_NAMES.items() for n in names))
def test_every_posix_only_name_is_reported_however_it_is_reached(module, name):
    assert [w for _, w in scan_source(f"import {module}\n{module}.{name}\n")] == [_name_finding(f"{module}.{name}")]
    assert [w for _, w in scan_source(f"import {module} as m\nm.{name}\n")] == [_name_finding(f"{module}.{name}")]
    assert scan_source(f"from {module} import {name}\n") == [(1, f"from {module} import {name} (not on Windows)")]
    assert len(scan_source(f"import {module}\ngetattr({module}, '{name}')\n")) == 1
    assert scan_source(f"import {module}\ngetattr({module}, '{name}', None)\n") == []


@pytest.mark.parametrize("module", sorted(POSIX_MODULES))
def test_every_posix_only_module_is_reported(module):
    assert scan_source(f"import {module}\n") == [(1, f"import {module} (a module Windows lacks)")]
    assert scan_source(f"import {module} as m\n") == [(1, f"import {module} (a module Windows lacks)")]
    assert scan_source(f"from {module} import x\n") == [(1, f"from {module} import ... (a module Windows lacks)")]


def test_the_scanner_names_the_line():
    assert scan_source("import os\n\n\ndef f():\n    return os.getuid()\n") == [(5, "os.getuid (not on Windows)")]


def test_a_from_import_is_reported_once_at_the_import_not_at_each_use():
    assert scan_source("from os import fork\n\npid = fork()\nfork()\n") == [(1, "from os import fork (not on Windows)")]


@pytest.mark.parametrize(
    "snippet",
    [
        "import sys\nif sys.platform != 'win32':\n    import fcntl\n",
        "import sys\nif sys.platform == 'win32':\n    import msvcrt\nelse:\n    import fcntl\n",
        "import sys\nif sys.platform == 'win32':\n    pass\nelif fast:\n    os.fork()\n",  # elif lies in the else
        "import sys\nif sys.platform in ('linux', 'darwin'):\n    pid = os.fork()\n",
        "import sys\nif sys.platform not in ('win32',):\n    os.setsid()\n",
        "import sys\nif sys.platform.startswith('linux'):\n    cores = os.sched_getaffinity(0)\n",
        "import sys\nif not sys.platform.startswith('win'):\n    os.setsid()\n",
        "import sys\nif sys.platform.startswith('win'):\n    pass\nelse:\n    os.setsid()\n",
        "import sys\nif 'win32' != sys.platform:\n    os.setsid()\n",
        "import sys as system\nif system.platform != 'win32':\n    os.setsid()\n",
        "import sys\nif sys.platform != 'win32' and torch.cuda.is_available():\n    os.fork()\n",
        "import sys\nif sys.platform == 'win32' or not fast:\n    pass\nelse:\n    os.fork()\n",
        "import os\nif os.name == 'posix':\n    os.setsid()\n",
        "import os\nif os.name == 'nt':\n    pass\nelse:\n    os.setsid()\n",
        "import os\nif os.name != 'posix':\n    pass\nelse:\n    os.setsid()\n",
        "import platform\nif platform.system() != 'Windows':\n    os.setsid()\n",
        "import platform\nif platform.system().lower() == 'windows':\n    pass\nelse:\n    os.setsid()\n",
        "import platform\nif platform.system() in ('Linux', 'Darwin'):\n    os.setsid()\n",
        "import os\nif hasattr(os, 'fork'):\n    pid = os.fork()\n",
        "import os as o\nif hasattr(o, 'fork'):\n    pid = o.fork()\n",
        "import os\nif getattr(os, 'fork', None) is not None:\n    pid = os.fork()\n",
        "import os\nif not hasattr(os, 'setsid'):\n    raise SystemExit('no setsid')\nelse:\n    os.setsid()\n",
        "import os, signal\nsig = signal.SIGKILL if hasattr(signal, 'SIGKILL') else signal.SIGTERM\n",
        "import os, signal\nos.kill(1, getattr(signal, 'SIGKILL', signal.SIGTERM))\n",
        "import signal as s\nos.kill(1, getattr(s, 'SIGKILL', s.SIGTERM))\n",
        "import signal\nsig = getattr(signal, name)\n",  # a name the scanner cannot read
        "try:\n    import resource\nexcept ImportError:\n    resource = None\n",
        "try:\n    from os import fork\nexcept ImportError:\n    fork = None\n",
        "import signal\ntry:\n    KILL = signal.SIGKILL\nexcept AttributeError:\n    KILL = signal.SIGTERM\n",
        "try:\n    import pwd\nexcept (OSError, ModuleNotFoundError):\n    pwd = None\n",
        "import fcntl  # posix-only: this helper runs in the Linux CI image only\n",
        "import os\npid = os.fork()  # posix-only: the benchmark forks on Linux only\n",
        "import multiprocessing as mp\nctx = mp.get_context('spawn')\n",
        "import multiprocessing as mp, sys\nctx = mp.get_context('fork' if sys.platform == 'linux' else 'spawn')\n",
        "import multiprocessing as mp, sys\nif sys.platform != 'win32':\n    mp.set_start_method('fork')\n",
        "import torch.multiprocessing as tmp\ntmp.start_processes(f, start_method='spawn')\n",
        '"""Written to /tmp/x by .venv/bin/python."""\n',  # a docstring may mention them
        "import tempfile\nfolder = tempfile.mkdtemp()  # not /tmp\n",  # so may a comment
        "url = 'https://example.org/tmp/data'\nlog = '/var/tmpfiles'\n",  # a /tmp that is not the folder
        "import os\npython = os.path.join(root, '.venv', 'lib')\n",
        "import os\nbin_dir = ROOT / '.venv' / ('Scripts' if os.name == 'nt' else 'bin')\n",
        "import os\npython = '.venv/Scripts/python.exe' if os.name == 'nt' else '.venv/bin/python'\n",
        "import sys\npython = sys.executable\n",
        "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n",  # SIGTERM exists on Windows
        "import os\nos.kill(os.getpid(), 9)\npid, status = os.waitpid(pid, 0)\n",  # os.waitpid does too
    ],
)
def test_the_scanner_lets_guarded_and_portable_code_through(snippet):
    assert scan_source(snippet) == []


@pytest.mark.parametrize(
    ("snippet", "line"),
    [
        ("import os\nif getattr(cfg, 'fast', False):\n    os.fork()\n", 3),  # names no platform, not os
        ("import os\nif fast:\n    os.fork()\n", 3),
        ("import os\nIS_POSIX = os.name == 'posix'\nif IS_POSIX:\n    os.setsid()\n", 4),  # a flag is not read
        ("import os, signal\nif hasattr(signal, 'SIGKILL'):\n    os.fork()\n", 3),  # another module
        ("import os\nif hasattr(os, 'fork'):\n    import fcntl\n", 3),  # hasattr guards names, not imports
        ("import os\nif hasattr(os, 'fork'):\n    pass\nelse:\n    os.fork()\n", 5),  # the wrong branch
        ("import os\nif hasattr(os, 'fork') and os.fork() == 0:\n    pass\n", 2),  # the test is not guarded
        ("import sys\nif sys.platform == 'win32':\n    os.fork()\n", 3),  # the Windows branch
        ("import sys\nif sys.platform != 'win32':\n    pass\nelse:\n    import fcntl\n", 5),
        ("import sys\nif sys.platform.startswith('win'):\n    os.setsid()\n", 3),
        ("import sys\nif sys.platform != 'linux':\n    os.setsid()\n", 3),  # macOS or Windows
        ("import sys\nif sys.platform in ('linux', 'win32'):\n    os.setsid()\n", 3),  # mixed
        ("import os\nif os.name != 'posix':\n    os.setsid()\n", 3),
        ("import os\nif os.name == 'nt':\n    os.setsid()\n", 3),
        ("import platform\nif platform.system() == 'Windows':\n    os.setsid()\n", 3),
        ("import sys\nif sys.platform != 'win32' or fast:\n    os.fork()\n", 3),  # or: either may hold
        ("import sys\nif sys.platform == 'win32' and fast:\n    pass\nelse:\n    os.fork()\n", 5),
        ("import sys\nuid = os.getuid() if sys.platform == 'win32' else 0\n", 2),
        ("import os\ntry:\n    os.fork()\nexcept OSError:\n    pass\n", 3),  # not an import or attribute error
        ("import os\ntry:\n    os.fork()\nexcept Exception:\n    pass\n", 3),
        ("import os\npid = os.fork()  # Linux only\n", 2),  # a comment without posix-only:
    ],
)
def test_the_scanner_reports_what_a_guard_does_not_cover(snippet, line):
    assert [number for number, _ in scan_source(snippet)] == [line]


@pytest.mark.parametrize(
    ("test", "body", "orelse"),
    [
        ("sys.platform != 'win32'", EVERYTHING, NOTHING),
        ("sys.platform == 'win32'", NOTHING, EVERYTHING),
        ("os.name == 'posix'", EVERYTHING, NOTHING),
        ("os.name == 'nt'", NOTHING, EVERYTHING),
        ("not (os.name == 'nt')", EVERYTHING, NOTHING),
        ("hasattr(os, 'fork')", frozenset({"os"}), NOTHING),
        ("hasattr(os, 'fork') and hasattr(signal, 'SIGKILL')", frozenset({"os", "signal"}), NOTHING),
        ("hasattr(os, 'fork') or hasattr(signal, 'SIGKILL')", NOTHING, NOTHING),
        ("hasattr(os, 'fork') or sys.platform != 'win32'", frozenset({"os"}), NOTHING),
        ("getattr(cfg, 'fast', False)", frozenset({"cfg"}), NOTHING),
        ("fast", NOTHING, NOTHING),
        ("sys.version_info >= (3, 12)", NOTHING, NOTHING),
    ],
)
def test_which_branch_a_test_guards(test, body, orelse):
    assert branches(ast.parse(test, mode="eval").body, {}) == (body, orelse)


def test_a_handler_of_a_guarded_try_is_not_guarded():
    snippet = "try:\n    import resource\nexcept ImportError:\n    import fcntl\n"
    assert scan_source(snippet) == [(4, "import fcntl (a module Windows lacks)")]


def test_the_old_train_digits_script_would_have_failed():
    """The script before issue 28 locked its folder with fcntl and killed a worker with SIGKILL (the 'before')."""
    old = (
        "import fcntl\nimport os\nimport signal\n\n\n"
        "def claim(lock):\n    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\n\n"
        "def fail():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert [what.split(" (")[0] for _, what in scan_source(old)] == ["import fcntl", "signal.SIGKILL"]


def _notebook(folder: Path, *cells: dict) -> Path:
    path = folder / "nb.ipynb"
    path.write_text(json.dumps({"cells": list(cells)}), encoding="utf-8")
    return path


def _code(*lines: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "outputs": [], "source": list(lines)}


def test_notebook_magics_do_not_stop_the_scan(tmp_path):
    notebook = _notebook(
        tmp_path, {"cell_type": "markdown", "source": ["import fcntl"]}, _code("%matplotlib inline\n", "import pwd")
    )
    assert [(number, scan_source(source)) for number, source in notebook_cells(notebook)] == [
        (2, [(2, "import pwd (a module Windows lacks)")])  # cell 2, its line 2; the markdown cell is not code
    ]


def test_an_import_alias_in_one_notebook_cell_counts_in_the_others(tmp_path):
    notebook = _notebook(tmp_path, _code("import signal as s\n", "import os as o"), _code("o.kill(1, s.SIGKILL)"))
    assert [(where, what.split(" (")[0]) for where, what in scan_file(notebook)] == [
        ("cell 2, line 1", "signal.SIGKILL")
    ]


def test_a_test_that_needs_make_skips_without_it_and_fails_in_ci(monkeypatch):
    import make_tool

    monkeypatch.setattr(make_tool.shutil, "which", lambda name: None)  # a machine without make (Windows)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="make not found"):
        make_tool.need_make()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI: make not found"):
        make_tool.need_make()
