"""Grade a class from the notebooks its students hand in.

    sudo .venv/bin/python -m workflow_utils.grade SUBMISSIONS --out grading/grades.csv

``SUBMISSIONS`` holds one folder (or one ``.zip``) per student, named after the student, with the lesson notebooks
they hand in (``01_data.ipynb`` and so on, anywhere inside). Each notebook runs top to bottom in a fresh kernel, in
its own process and a temporary copy of its own, with a time and a memory limit. Then, in that kernel, the grader
imports this package's checks afresh from its own folder and judges the names each exercise's check is given in the
lesson (``Exercise.answers``). What the notebook printed or stored counts for nothing: a student who rewrites
``check`` to print "correct!", edits a stored output or deletes the check cell gains nothing, and one who deletes the
cell that defines an answer has not attempted it.

A notebook that hangs is stopped at the time limit; one that crashes its kernel, is empty, is not a notebook, or is
another lesson's notebook under this name is recorded as such, and the batch goes on. Two notebooks run at a time
(``--jobs``). Student code runs in a sandbox that needs root on Linux (``_sandbox``): as a user id of its own, with
no network, seeing only its own processes, with the class's folder, the gradebook's folder and every folder anyone may
write to emptied. Elsewhere the grader stops and says so, unless ``--no-sandbox`` runs student code as you. The grader writes its gradebook, ``feedback/<student>.txt`` beside it, and temporary copies it removes.

Limits, said plainly: student code runs in the kernel that is then judged. The grader closes the ways we know
(hooks that print after each cell are dropped, checks load only from this package's folder, the verdicts travel
behind a secret the kernel cannot read), but a student who knows Python can still fake a verdict from inside that
kernel (rewriting ``json``, or how IPython reads a cell), as with any grader that judges in the student's kernel. A
notebook whose code uses what such tricks need and no lesson uses (``TAMPERING``) is flagged for a person to read. Each question is worth
``points`` (1 unless ``--points ex07.q4=3`` says otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import os
import queue
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# Each exercise module and the lesson notebook whose exercises it checks.
LESSONS = {
    "ex00": "00_tensors_and_autograd",
    "ex01": "01_data",
    "ex02": "02_model",
    "ex03": "03_loss_and_optimizer",
    "ex04": "04_training_loop",
    "ex05": "05_evaluation",
    "ex06": "06_save_and_load",
    "ex07": "07_putting_it_all_together",
    "ex08": "08_scaling_up",
}
# Student code runs as a user id no account has, one per notebook run at a time (not the shared ``nobody``): limits
# per user (processes) and files one run leaves cannot reach the other run.
STUDENT_UID = 2_000_000_000
FILE_LIMIT = 2**30  # bytes: the largest file a notebook may write (its checkpoints are a few MB)
PROCESS_LIMIT = 2048  # processes and threads of a run's user (08 starts about 10 processes, each with threads)

# A notebook's run status, one per lesson in the gradebook.
RAN, MISSING, TIMED_OUT, CRASHED = "ran", "not handed in", "stopped: over the time limit", "crashed"
EMPTY, NOT_JSON = "empty file", "not a notebook (not valid JSON)"

# Appended to the student's notebook as its last cell: judges in the kernel the notebook ran in. The exercise modules
# are imported afresh from this package's own folder (``{package!r}``), not from a folder the notebook made, so checks
# it redefined or patched do not judge; hooks it registered to run after each cell are dropped first, so they cannot
# print verdicts of their own; a check that raises judges that question incorrect, not the whole notebook.
_MARK = "verdicts: "
_JUDGE = """\
def _grader_judge(_names, _module, _package):
    import importlib, json, os, sys
    import IPython
    for _callbacks in IPython.get_ipython().events.callbacks.values():
        _callbacks.clear()
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != os.getcwd()]
    for _name in [m for m in sys.modules if m.startswith("workflow_utils.exercises")]:
        del sys.modules[_name]
    _exercises = importlib.import_module("workflow_utils.exercises." + _module)
    if not os.path.abspath(_exercises.__file__).startswith(_package + os.sep):
        raise SystemExit("the checks did not come from the package: " + _exercises.__file__)
    _results = {}
    for _question in sorted(n for n in vars(_exercises) if n[:1] == "q" and n[1:].isdigit()):
        _exercise = getattr(_exercises, _question)
        _missing = [n for n in _exercise.answers if n not in _names]
        try:
            if _missing:
                _verdict = ["not attempted", f"{_exercise.name}: {', '.join(_missing)} not defined"]
            else:
                _verdict = list(_exercise.verdict(*(_names[n] for n in _exercise.answers)))
        except BaseException as _error:
            _verdict = ["incorrect", f"{_exercise.name}: checking it raised {type(_error).__name__}"]
        _results[_exercise.name] = _verdict
    sys.stdout.write("verdicts: " + json.dumps(_results) + "\\n")


_grader_judge(globals(), {module!r}, {package!r})
"""


# What no lesson's code uses and code that reaches into the grader's way of judging does: a notebook using any of them
# is flagged for a person to read (the grade stands; the flag says where to look).
TAMPERING = (
    "get_ipython", "input_transformers", "ast_transformers", "settrace", "setprofile", "builtins", "/proc/", "ctypes",
    "json.dumps", "os.kill", "setsid", "Exercise.", "sys.path", "sys.stdout", "verdicts:", "__import__", "globals()",
    "pidfd", "prctl",
)  # fmt: skip


def tampering(sources: list[str]) -> list[str]:
    """The TAMPERING names a notebook's code cells use (tests/test_grade.py: no lesson or solution uses any)."""
    code = "\n".join(sources)
    return [name for name in TAMPERING if name in code]


@dataclass
class Graded:
    """One student's notebook for one lesson: how its run ended and each question's outcome and message."""

    student: str
    lesson: str
    status: str
    seconds: float = 0.0
    questions: dict[str, tuple[str, str]] = field(default_factory=dict)


@functools.cache
def exercise_modules() -> dict[str, list]:
    """Each exercise module name and its questions, in order (``ex01`` -> [q1, q2, ...])."""
    import importlib

    modules = {}
    for module in LESSONS:
        exercises = importlib.import_module(f"workflow_utils.exercises.{module}")
        names = sorted((n for n in vars(exercises) if n[:1] == "q" and n[1:].isdigit()), key=lambda n: int(n[1:]))
        modules[module] = [getattr(exercises, n) for n in names]
    return modules


def find_notebooks(folder: Path) -> dict[str, Path]:
    """The lesson notebooks in a student's folder: ``{lesson: path}``, the shallowest match of ``<lesson>.ipynb``."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.ipynb"), key=lambda p: (len(p.parts), str(p))):
        if ".ipynb_checkpoints" in path.parts or path.is_symlink():
            continue
        if path.stem in LESSONS.values():
            found.setdefault(path.stem, path)
    return found


ZIP_LIMIT = 200 * 2**20  # bytes of notebooks one student's .zip may unpack to
NOTEBOOK_LIMIT = 100 * 2**20  # bytes of one notebook (the lessons' are under 1 MB)


def unpack_zips(submissions: Path, into: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """Every student's folder, their ``.zip``'s notebooks unpacked under ``into`` (zipfile drops absolute and ..
    paths), and, for a zip that could not be read, why not."""
    students, problems = {}, {}
    for entry in sorted(submissions.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            students[entry.name] = entry
        elif entry.suffix == ".zip" and entry.is_file():
            target = into / entry.stem
            target.mkdir(parents=True, exist_ok=True)
            students[entry.stem] = target
            try:
                with zipfile.ZipFile(entry) as archive:
                    notebooks = [m for m in archive.infolist() if m.filename.endswith(".ipynb")]
                    if sum(m.file_size for m in notebooks) > ZIP_LIMIT:
                        problems[entry.stem] = f"zip not unpacked: its notebooks are over {ZIP_LIMIT // 2**20} MB"
                        continue
                    archive.extractall(target, members=notebooks)
            except Exception as error:  # a damaged, encrypted or oddly compressed zip: that student's, not the batch's
                problems[entry.stem] = f"zip not unpacked: {type(error).__name__}: {error}"[:160]
    return students, problems


def _is_root() -> bool:
    return getattr(os, "geteuid", lambda: -1)() == 0  # Windows has no users' ids, and no root


def _needed_paths() -> list[Path]:
    """What student code must reach to run: this Python, its libraries and this package."""
    import workflow_utils

    paths = [Path(os.path.realpath(sys.executable)), Path(sys.prefix), Path(sys.base_prefix)]
    paths += [Path(workflow_utils.__file__).resolve().parents[1]]
    return [p for p in paths if p.exists()]


def _private_ancestors(needed: list[Path]) -> list[Path]:
    """Folders others may not enter (mode without o+x) on the way to what student code needs: ``/root`` where
    Python came from pyenv in root's home."""
    return sorted({a for path in needed for a in path.parents if not a.stat().st_mode & 0o001})


# Where anyone may write: emptied in the sandbox (each run gets its own, of a fixed size), so one student's code cannot
# leave files for another's, nor fill the machine's memory through them.
SHARED_TEMP = [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")]  # posix-only: Linux


def _shared_writable() -> list[Path]:
    """The shared temporary folders and every other folder anyone may write to near the top of /run, /var and /dev
    (``/run/lock``, say): one student's run could leave files there for another's."""
    found = [p for p in SHARED_TEMP if p.is_dir()]
    for top in (Path("/run"), Path("/var"), Path("/dev")):  # posix-only: Linux
        for folder in [top, *(p for p in (top.iterdir() if top.is_dir() else []) if p.is_dir() and not p.is_symlink())]:
            for entry in [folder, *(folder.iterdir() if folder != top else [])]:
                with contextlib.suppress(OSError):
                    if entry.is_dir() and not entry.is_symlink() and entry.stat().st_mode & 0o002:
                        found.append(entry)
    return sorted(set(found))


def _blank(blanks: list[Path], keeps: list[Path]) -> list[str]:
    """Shell lines that mount an empty folder over each of ``blanks`` and put back the ``keeps`` beneath it.

    Run in a mount namespace from a scratch folder (the cwd): each kept folder is first bound there, so it can
    still be reached (relative to the cwd) after the empty folder covers its old path, then bound back at its own
    path. The namespace, and so every mount in it, ends with the run."""
    q = shlex.quote
    lines, blanked, n = [], [], 0
    for blank in sorted(set(blanks), key=lambda p: (len(p.parts), str(p))):
        if not blank.is_dir() or blank in keeps or any(b == blank or b in blank.parents for b in blanked):
            continue  # missing, needed, or already covered by an emptied folder above it
        under = [k for k in keeps if blank in k.parents]
        under = [k for k in under if not any(o in k.parents for o in under)]  # the outermost: they bring the rest
        mode = "mode=1777,size=256m" if blank.stat().st_mode & 0o002 else "mode=755,size=1m"
        for k in under:
            lines += [f"mkdir -p ./{n}", f"mount --bind {q(str(k))} ./{n}"]
            n += 1
        lines.append(f"mount -t tmpfs -o {mode} tmpfs {q(str(blank))}")
        for i, k in enumerate(under, start=n - len(under)):
            lines += [f"mkdir -p {q(str(k))}", f"mount --bind ./{i} {q(str(k))}"]  # ./{i} is out of reach now
        blanked.append(blank)
    return lines


def _sandbox(hide: list[Path], work: Path, scratch: Path, uid: int = STUDENT_UID) -> tuple[list[str], str]:
    """The command that runs student code apart (followed by the command to run), and a line saying what it gives.

    Needs root on Linux. New namespaces: network (only loopback; the kernel does not even need it: it talks over a
    Unix socket), processes (the run sees only its own, and all of them end with it, or with the grader), and mounts,
    in which ``hide`` (the class's submissions, the gradebook's folder) and every folder anyone may write to are
    empty but for ``work``, the student's copy, and what Python needs, read-only. The user id ``uid``, which no account
    has, runs the code; a private folder on the way to Python (``/root`` for pyenv's) is emptied the same way, so that
    user can run Python and read nothing else there. Returns ``[]`` and why where this cannot be done.
    """
    if not _is_root() or not shutil.which("unshare") or not shutil.which("setpriv"):
        return [], "needs root on Linux (unshare and setpriv)"
    q = shlex.quote
    needed = _needed_paths()
    lines = ["ip link set lo up 2>/dev/null || true", f"cd {q(str(scratch))}"]
    lines += _blank([*hide, *_shared_writable(), *_private_ancestors(needed)], [*needed, work])
    for path in (p for p in needed if p.is_dir()):  # bound onto itself first: a remount needs a mount point
        lines += [f"mount --bind {q(str(path))} {q(str(path))}", f"mount -o remount,bind,ro {q(str(path))}"]
    # --pdeathsig: the run dies with its parent (setpriv's change of user would clear what --kill-child set)
    lines += [f"cd {q(str(work))}", f'exec setpriv --reuid={uid} --regid={uid} --clear-groups --pdeathsig KILL -- "$@"']
    unshare = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--ipc", "--"]
    prefix = ["setpriv", "--pdeathsig", "KILL", "--", *unshare]  # and unshare dies with the grader
    return [*prefix, "/bin/sh", "-c", "set -e; " + "; ".join(lines), "sh"], (
        "student code runs as a user of its own, with no network, seeing only its own processes, with the class's"
        " and gradebook's folders and the shared temporary folders hidden (files anyone may read stay readable)"
    )


def _sandbox_works(hide: list[Path]) -> str | None:
    """Run Python in the sandbox once: None if it works, else why not."""
    with tempfile.TemporaryDirectory(prefix="grading-probe-") as folder:
        work, scratch = _work_folders(Path(folder))
        command, why = _sandbox(hide, work, scratch)
        if not command:
            return why
        trial = subprocess.run(
            [*command, sys.executable, "-c", "import workflow_utils"],
            env={"PATH": os.environ.get("PATH", "")},
            capture_output=True,
        )
    if trial.returncode == 0:
        return None
    return (trial.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no reason given"])[0]


def _work_folders(parent: Path, uid: int = STUDENT_UID) -> tuple[Path, Path]:
    """The student's copy (the run's user's, when the grader is root) and the sandbox's scratch folder (root's)."""
    work, scratch = parent / "work", parent / "scratch"
    work.mkdir()
    scratch.mkdir(mode=0o700)
    if _is_root():
        os.chown(work, uid, uid)  # posix-only: root exists only there
    return work, scratch


def grade_notebook(
    student: str,
    module: str,
    path: Path | None,
    timeout: float,
    memory_gb: float,
    hide: list[Path] | None,
    threads: int = 1,
    uid: int = STUDENT_UID,
) -> Graded:
    """Run one handed-in notebook in a temporary copy and judge its answers (see the module's docstring). ``hide``:
    the folders the sandbox empties (``_sandbox``); None runs the notebook as you, unsandboxed."""
    lesson = LESSONS[module]
    if path is None:
        return Graded(student, lesson, MISSING)
    if path.stat().st_size > NOTEBOOK_LIMIT:
        return Graded(student, lesson, f"not graded: over {NOTEBOOK_LIMIT // 2**20} MB")
    raw = path.read_bytes()
    if not raw.strip():
        return Graded(student, lesson, EMPTY)
    try:
        cells = json.loads(raw)["cells"]
        sources = ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return Graded(student, lesson, NOT_JSON)
    if not any(module in source for source in sources):
        return Graded(student, lesson, f"not this lesson's notebook (no cell uses {module})")
    parent = Path(tempfile.mkdtemp(prefix="grading-"))
    start = time.perf_counter()
    process = None
    try:
        work, scratch = _work_folders(parent, uid)
        notebook = work / f"{lesson}.ipynb"
        shutil.copyfile(path, notebook)
        if _is_root() and hide is not None:
            os.chown(notebook, uid, uid)  # posix-only: root exists only there
        sandbox, why = ([], "") if hide is None else _sandbox(hide, work, scratch, uid)
        if hide is not None and not sandbox:  # never run student code unsandboxed unless told to
            raise RuntimeError(f"cannot sandbox student code here: {why}")
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "OMP_NUM_THREADS", "PYTHONPATH")}
        env.setdefault("OMP_NUM_THREADS", str(threads))  # the cores shared among the notebooks run at a time
        # the run's own folders in the copy: the run's user has no home, and nothing lands in the instructor's
        env.update(HOME=str(work), TMPDIR=str(work), MPLCONFIGDIR=str(work / ".mpl"), JUPYTER_RUNTIME_DIR=str(work))
        env.update(IPYTHONDIR=str(work / ".ipython"), JUPYTER_PLATFORM_DIRS="1", PYTHONDONTWRITEBYTECODE="1")
        memory = str(int(memory_gb * 2**30))
        command = [*sandbox, sys.executable, "-m", "workflow_utils.grade", "--run-one", str(notebook), module, memory]
        # The verdicts come back on the runner's output behind a secret the student's code never sees (it arrives on
        # stdin, and the runner then makes its memory unreadable to the kernel): a file the notebook could write, or
        # a line it forged, counts nothing.
        secret = secrets.token_hex(16)
        process = subprocess.Popen(
            command,
            cwd=work,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group
        )
        _RUNNING.add(process)
        try:
            stdout, stderr = process.communicate(input=f"{secret}\n".encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_tree(process)
            process.communicate()
            return Graded(
                student, lesson, f"{TIMED_OUT} ({timeout:.0f} s){_flag(sources)}", time.perf_counter() - start
            )
        seconds = time.perf_counter() - start
        lines = [
            line[len(secret) :] for line in stdout.decode(errors="replace").splitlines() if line.startswith(secret)
        ]
        if process.returncode > 100 or not lines:
            why = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no verdicts came back"]
            return Graded(student, lesson, f"{CRASHED}: {why[0][:160]}{_flag(sources)}", seconds)
        questions = verdicts(lines[-1], [q.name for q in exercise_modules()[module]])
        if questions is None:
            status = f"{CRASHED}: the verdicts that came back were not the grader's{_flag(sources)}"
            return Graded(student, lesson, status, seconds)
        errors = process.returncode
        status = RAN if errors == 0 else f"{RAN}, with errors in {errors} cell{'s' if errors > 1 else ''}"
        return Graded(student, lesson, status + _flag(sources), seconds, questions)
    finally:
        _RUNNING.discard(process)
        shutil.rmtree(parent, ignore_errors=True)


_RUNNING: set[subprocess.Popen] = set()  # the runs under way, stopped at once if the grader is stopped


def _stop_all_runs(*_signal) -> None:
    """Stop every run under way (their threads then clean up their copies), then end the grader."""
    for process in list(_RUNNING):
        _stop_tree(process)
    raise SystemExit("grading stopped: no gradebook written")


def _flag(sources: list[str]) -> str:
    used = tampering(sources)
    return f"; flagged for a person to read: uses {', '.join(used)}" if used else ""


def verdicts(text: str, names: list[str]) -> dict[str, tuple[str, str]] | None:
    """The judging cell's verdicts, ``{question: (outcome, message)}`` for exactly ``names``, or None for anything
    else (text the notebook forged, say)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or sorted(parsed) != sorted(names):
        return None
    outcomes = ("not attempted", "incorrect", "correct")
    for value in parsed.values():
        if not (isinstance(value, list) and len(value) == 2 and value[0] in outcomes and isinstance(value[1], str)):
            return None
    return {name: (parsed[name][0], parsed[name][1]) for name in names}


def _stop_tree(process: subprocess.Popen) -> None:
    """Stop a run and everything it started: its kernel runs in a session of its own, out of the group's reach."""
    import psutil

    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        try:
            member.kill()
        except psutil.NoSuchProcess:
            pass
    if hasattr(os, "killpg"):  # POSIX: what is left of its process group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # posix-only: behind hasattr(os, "killpg")


def run_one(notebook: Path, module: str, memory_bytes: int) -> int:
    """Inside the sandbox: run the notebook and the judging cell in one fresh kernel (over a Unix socket, so the
    kernel needs no network), under a memory ceiling the kernel inherits and cannot raise. Print the verdicts behind
    the secret read from stdin; exit with the number of cells that raised errors (at most 100)."""
    secret = sys.stdin.readline().strip()
    if sys.platform == "linux":  # no process of the same user (the kernel) may read this one's memory or files
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0
    try:
        import resource
    except ImportError:  # Windows (only with --no-sandbox): no ceilings
        pass
    else:  # the kernel inherits them and cannot raise them
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        if os.getuid() >= STUDENT_UID:  # posix-only: in the resource branch; NPROC counts a user's: only the run's
            resource.setrlimit(resource.RLIMIT_NPROC, (PROCESS_LIMIT, PROCESS_LIMIT))
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    package = str(Path(__file__).resolve().parent)
    nb.cells.append(
        nbformat.v4.new_code_cell(_JUDGE.replace("{module!r}", repr(module)).replace("{package!r}", repr(package)))
    )
    manager = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=str(notebook.parent / "kernel"))
    client = NotebookClient(
        nb, km=manager, timeout=None, allow_errors=True, resources={"metadata": {"path": str(notebook.parent)}}
    )
    # the kernel writes nowhere but its messages: not to this process's output, where the verdicts go
    client.execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    judged = [
        line.removeprefix(_MARK)
        for output in nb.cells[-1].get("outputs", [])
        if output.get("output_type") == "stream"
        for line in output.get("text", "").splitlines()
        if line.startswith(_MARK)
    ]
    if len(judged) == 1:  # printed only now: the kernel has shut down
        print(secret + judged[0], flush=True)
    elif judged:
        print(
            f"{len(judged)} verdict lines, where the grader prints one: the notebook printed its own", file=sys.stderr
        )
    else:
        why = [f"{o.get('ename')}: {o.get('evalue')}" for o in nb.cells[-1].get("outputs", []) if "ename" in o]
        print(f"the judging cell gave no verdicts{': ' + why[0] if why else ''}", file=sys.stderr)
    errors = sum(o.get("output_type") == "error" for c in nb.cells[:-1] for o in c.get("outputs", []))
    return min(errors, 100)


def gradebook_rows(
    results: list[Graded], modules: dict[str, list], points: dict[str, float]
) -> tuple[list[str], list[list]]:
    """The gradebook's header and rows: one row per student, points per question, each lesson's run status."""
    graded_modules = [m for m in LESSONS if any(r.lesson == LESSONS[m] for r in results)]
    header = ["student"]
    for module in graded_modules:
        header += [q.name for q in modules[module]] + [f"{LESSONS[module]} status"]
    header += ["total", "out of"]
    students = sorted({r.student for r in results})
    by = {(r.student, r.lesson): r for r in results}
    rows = []
    for student in students:
        row: list = [student]
        total = possible = 0.0
        for module in graded_modules:
            graded = by.get((student, LESSONS[module]))
            for exercise in modules[module]:
                worth = points.get(exercise.name, 1.0)
                outcome = graded.questions.get(exercise.name, ("", ""))[0] if graded else ""
                got = worth if outcome == "correct" else 0.0
                row.append(_as_points(got))
                total, possible = total + got, possible + worth
            row.append(graded.status if graded else MISSING)
        rows.append([*row, _as_points(total), _as_points(possible)])
    return header, rows


def _as_points(value: float) -> str:
    return f"{value:g}"


def feedback_text(student: str, results: list[Graded]) -> str:
    """A student's feedback: each lesson's run status and each question's outcome and message."""
    lines = [f"Feedback for {student}", ""]
    for graded in sorted((r for r in results if r.student == student), key=lambda r: r.lesson):
        lines.append(f"{graded.lesson}: {graded.status}")
        for name, (outcome, message) in graded.questions.items():
            first, *rest = message.removeprefix(f"{name}: ").splitlines() or [""]
            lines += [f"  {name} ({outcome}): {first}", *(f"    {line.strip()}" for line in rest)]
        lines.append("")
    return "\n".join(lines)


def grade_class(
    submissions: Path,
    out: Path,
    lessons: list[str] | None = None,
    timeout: float = 600,
    memory_gb: float = 6,
    jobs: int = 2,
    points: dict[str, float] | None = None,
    sandbox: bool = True,
    echo=print,
) -> list[Graded]:
    """Grade every student's notebooks; write the gradebook ``out`` and ``feedback/<student>.txt`` beside it.

    Raises SystemExit naming the fix when student code cannot be sandboxed and ``sandbox`` is True."""
    modules = exercise_modules()
    wanted = [m for m in LESSONS if lessons is None or LESSONS[m] in lessons or m in lessons]
    out.parent.mkdir(parents=True, exist_ok=True)
    hide = [submissions.resolve(), out.parent.resolve()]
    if sandbox:
        why = _sandbox_works(hide)
        if why is not None:
            raise SystemExit(
                f"cannot run student code apart here ({why}): grade as root on Linux (sudo, a VM, or a container "
                "started with --privileged), or pass --no-sandbox to run it as you, with your files and the network"
            )
        isolation = _sandbox(hide, Path("work"), Path("scratch"))[1]
    else:
        hide, isolation = None, "student code runs as you, with your files and the network (--no-sandbox)"
    threads = max(1, (os.cpu_count() or 1) // jobs)
    echo(f"grading {submissions}: {isolation}; {jobs} at a time, {timeout:.0f} s and {memory_gb:g} GB each")
    with tempfile.TemporaryDirectory(prefix="grading-zips-") as unpacked:
        students, problems = unpack_zips(submissions, Path(unpacked))
        tasks = [(s, m, find_notebooks(folder).get(LESSONS[m])) for s, folder in students.items() for m in wanted]
        done: list[Graded] = []
        slots: queue.Queue[int] = queue.Queue()
        for slot in range(jobs):  # a user id per run at a time
            slots.put(STUDENT_UID + slot)

        def one(task) -> Graded:
            student, module, path = task
            if student in problems:
                graded = Graded(student, LESSONS[module], problems[student])
            else:
                uid = slots.get()
                try:
                    graded = grade_notebook(student, module, path, timeout, memory_gb, hide, threads, uid)
                except Exception as error:  # that student's notebook, not the batch
                    graded = Graded(student, LESSONS[module], f"not graded: {type(error).__name__}: {error}"[:160])
                finally:
                    slots.put(uid)
            done.append(graded)
            right = sum(outcome == "correct" for outcome, _ in graded.questions.values())
            score = f", {right} of {len(modules[module])} correct" if graded.questions else ""
            echo(f"[{len(done)}/{len(tasks)}] {graded.student} {graded.lesson}: {graded.status}{score}", flush=True)
            return graded

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            try:
                graded_all = list(pool.map(one, tasks))
            except BaseException:  # Ctrl-C: stop the runs under way rather than wait for their time limits
                for process in list(_RUNNING):
                    _stop_tree(process)
                raise
    header, rows = gradebook_rows(graded_all, modules, points or {})
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    feedback = out.parent / "feedback"
    feedback.mkdir(exist_ok=True)
    for student in students:
        (feedback / f"{student}.txt").write_text(feedback_text(student, graded_all), encoding="utf-8")
    echo(f"wrote {out} ({len(rows)} students) and {feedback}/<student>.txt")
    return graded_all


def _points(items: list[str]) -> dict[str, float]:
    """``--points ex07.q4=3 ...`` as ``{question: points}``; SystemExit naming the fix for a bad one."""
    import math

    known = [q.name for questions in exercise_modules().values() for q in questions]
    points = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            worth = float(value)
        except ValueError:
            worth = math.nan
        if not math.isfinite(worth) or worth < 0:
            raise SystemExit(f"--points {item!r}: write it as QUESTION=POINTS, POINTS 0 or more, e.g. ex07.q4=3")
        if name not in known:
            raise SystemExit(
                f"--points {item!r}: no question {name}; the questions are the gradebook's columns, e.g. ex07.q4"
            )
        points[name] = worth
    return points


def grade_cli(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-one"]:  # inside the sandbox (grade_notebook starts it)
        try:
            code = run_one(Path(argv[1]), argv[2], int(argv[3]))
        except BaseException:  # a dead kernel, say: the traceback's last line is the status the grader records
            import traceback

            traceback.print_exc()
            code = 101
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # now: a thread nbclient left behind would keep the process, and the batch, waiting
    parser = argparse.ArgumentParser(prog="python -m workflow_utils.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="one folder or .zip per student")
    parser.add_argument("--out", type=Path, required=True, help="the gradebook, a CSV file")
    parser.add_argument("--lessons", nargs="+", help="only these lessons, e.g. 01_data 03_loss_and_optimizer")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per notebook (default 600)")
    parser.add_argument("--memory-gb", type=float, default=6, help="memory per notebook (default 6)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at a time (default 2)")
    parser.add_argument("--points", nargs="+", default=[], help="QUESTION=POINTS, e.g. ex07.q4=3 (default 1 each)")
    parser.add_argument("--no-sandbox", action="store_true", help="run student code as you (no unshare: not Linux)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder: give the folder that holds one folder or .zip per student")
    if args.submissions.resolve() in args.out.resolve().parents:
        parser.error(f"--out {args.out} is inside {args.submissions}: its feedback folder would be graded as a student")
    if args.jobs < 1 or args.timeout <= 0 or args.memory_gb <= 0:
        parser.error("--jobs must be 1 or more, --timeout and --memory-gb more than 0")
    unknown = sorted(set(args.lessons or []) - set(LESSONS.values()) - set(LESSONS))
    if unknown:
        parser.error(f"no lesson {', '.join(unknown)}; the lessons are {', '.join(LESSONS.values())}")
    if hasattr(signal, "SIGHUP"):  # a closed terminal, like kill, stops the runs and removes their copies
        signal.signal(signal.SIGHUP, _stop_all_runs)
    signal.signal(signal.SIGTERM, _stop_all_runs)
    grade_class(
        args.submissions,
        args.out,
        args.lessons,
        args.timeout,
        args.memory_gb,
        args.jobs,
        _points(args.points),
        sandbox=not args.no_sandbox,
    )
    return 0


if __name__ == "__main__":
    sys.exit(grade_cli())
