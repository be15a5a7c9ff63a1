"""A synthetic class graded end to end (``python -m workflow_utils.grade``): 17 students hand in 00's lesson notebook,
correct, partly right, untouched, hanging, crashing, cheating, corrupt, empty, another lesson's, hostile, missing,
zipped, with an error, greedy for memory, forging verdicts from a hook, shadowing the package, killing every process
it can. The gradebook must be exactly the expected one, the hostile student must
neither read another's folder nor write outside its own, and the cheat that fools a grader reading printed verdicts
must gain nothing here. Prints the seconds per notebook (make bench reports the class of 30)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
# The grader's sandbox needs root on Linux (unshare, setpriv); the class with its hostile students needs the sandbox.
SANDBOX = sys.platform == "linux" and os.geteuid() == 0 and shutil.which("unshare") and shutil.which("setpriv")
LESSON = ROOT / "notebooks" / "00_tensors_and_autograd.ipynb"
NAME = LESSON.name

# The answer cells of 00's exercises, by cell id, as a student who solved them writes them (q2 the unusual way).
RIGHT = {
    "335590b3": "ex_grid = torch.arange(12).reshape(3, 4)\nex_column = ex_grid[:, 2]\nex00.q1.check(ex_grid, ex_column)",
    "65449522": "heights = torch.tensor([1, 2, 3])\nwidths = torch.tensor([10, 20, 30, 40])\n"
    "ex_areas = heights[:, None] * widths\nex00.q2.check(ex_areas)",
    "c43df2c8": "ex_scores = torch.tensor([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1], [0.3, 0.2, 0.5], [0.2, 0.5, 0.3]])\n"
    "ex_best = ex_scores.argmax(dim=1)\nex00.q3.check(ex_best)",
    "92fabb28": "ex_a = torch.tensor(2.0, requires_grad=True)\n(ex_a**3 - 5 * ex_a).backward()\nex_by_hand = 7.0\n"
    "ex00.q4.check(ex_a, ex_by_hand)",
}
WRONG_Q3 = RIGHT["c43df2c8"].replace("argmax", "argmin")


def notebook(answers: dict[str, str] | None = None, first: list[str] = (), after_imports: list[str] = ()):
    """The lesson with some answer cells written, and extra cells at the top or after the exercises' import."""
    nb = nbformat.read(LESSON, as_version=4)
    for cell in nb.cells:
        if cell.get("id") in (answers or {}):
            cell.source = answers[cell.id]
    imports = next(i for i, cell in enumerate(nb.cells) if "from workflow_utils.exercises import ex00" in cell.source)
    for offset, source in enumerate(after_imports, start=1):
        nb.cells.insert(imports + offset, nbformat.v4.new_code_cell(source))
    nb.cells[1:1] = [nbformat.v4.new_code_cell(source) for source in first]
    return nbformat.writes(nb)


ESCAPE = Path("/tmp/grading-test-escaped")  # the machine's shared temporary folder: the sandbox gives each run its own


def hostile(submissions: Path, out: Path) -> str:
    """A cell that tries to read another student's notebook and to write beside its own folder, into the class's
    folder and into the gradebook's; its answers are right only if every attempt failed. It also writes into the
    shared temporary folder, which it may (a private one), but which must stay empty outside its run."""
    targets = [
        submissions / "jon" / "escaped.txt",
        submissions / "escaped.txt",
        out / "escaped.txt",
        Path("../escaped"),
    ]
    return (
        "import pathlib\nleaks = []\n"
        f"try:\n    pathlib.Path({str(submissions / 'ada' / NAME)!r}).read_bytes()\n    leaks.append('read ada')\n"
        "except OSError:\n    pass\n"
        f"for target in {[str(t) for t in targets]!r}:\n"
        "    try:\n        pathlib.Path(target).write_text('was here')\n        leaks.append(target)\n"
        "    except OSError:\n        pass\n"
        f"pathlib.Path({str(ESCAPE)!r}).write_text('was here')\n"
        "print('leaks:', leaks)\n"
        "assert not leaks, leaks  # an error: every answer below stays None"
    )


CHEAT = """\
from workflow_utils.exercises import Exercise, ex00
def _always(self, *answer):
    print(f"{self.name}: correct!")
Exercise.check = _always
Exercise.verdict = lambda self, *answer: ("correct", f"{self.name}: correct!")
for question in (ex00.q1, ex00.q2, ex00.q3, ex00.q4):
    question.check = lambda *answer, name=question.name: print(f"{name}: correct!")"""

FORGE = """\
import json
def _forge(*_):
    print("verdicts: " + json.dumps({f"ex00.q{i}": ["correct", "ex00: correct!"] for i in range(1, 5)}))
get_ipython().events.register("pre_run_cell", _forge)
get_ipython().events.register("post_run_cell", _forge)"""

SHADOW = """\
import os, pathlib, sys
fake = pathlib.Path("workflow_utils/exercises")
fake.mkdir(parents=True)
pathlib.Path("workflow_utils/__init__.py").write_text("")
(fake / "__init__.py").write_text("")
(fake / "ex00.py").write_text(
    "class Q:\\n    answers = ()\\n    def __init__(self, name):\\n        self.name = name\\n"
    "    def verdict(self, *answer):\\n        return 'correct', self.name + ': correct!'\\n"
    + "".join(f"q{i} = Q('ex00.q{i}')\\n" for i in range(1, 5)))
for name in [m for m in sys.modules if m.startswith("workflow_utils")]:
    del sys.modules[name]
sys.path.insert(0, os.getcwd())"""

KILLER = """\
import os, time
if os.fork() == 0:  # a process of its own, in a session of its own, that kills every process it may, forever
    os.setsid()
    if os.fork() == 0:
        while True:
            try:
                os.kill(-1, 9)
            except OSError:
                pass
            time.sleep(0.05)
    os._exit(0)
time.sleep(5)"""

EXPECTED = """\
student,ex00.q1,ex00.q2,ex00.q3,ex00.q4,00_tensors_and_autograd status,total,out of
ada,1,1,1,1,ran,4,4
ben,1,0,0,0,ran,1,4
cal,0,0,0,0,ran,0,4
dee,0,0,0,0,stopped: over the time limit (60 s),0,4
eve,0,0,0,0,crashed: nbclient.exceptions.DeadKernelError: Kernel died,0,4
fay,0,0,0,0,ran; flagged for a person to read: uses Exercise.,0,4
gus,0,0,0,0,not a notebook (not valid JSON),0,4
hal,0,0,0,0,empty file,0,4
ivy,0,0,0,0,not this lesson's notebook (no cell uses ex00),0,4
jon,1,1,1,1,ran,4,4
kim,0,0,0,0,not handed in,0,4
lee,1,1,1,1,ran,4,4
max,1,1,1,1,"ran, with errors in 1 cell",4,4
ned,1,1,1,1,"ran, with errors in 1 cell",4,4
oli,0,0,0,0,"crashed: 2 verdict lines, where the grader prints one: the notebook printed its own; flagged for a \
person to read: uses get_ipython, json.dumps, verdicts:",0,4
pat,0,0,0,0,ran; flagged for a person to read: uses sys.path,0,4
quin,0,0,0,0,"crashed; flagged for a person to read: uses os.kill, setsid",0,4
"""


def printed_verdicts(text: str) -> int:
    """What a grader that trusts the stored outputs would count: the "correct!" lines the notebook shows."""
    nb = json.loads(text)
    return sum("correct!" in "".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not SANDBOX:
        pytest.skip("the grader's sandbox needs root on Linux (run as root)")
    ESCAPE.unlink(missing_ok=True)
    base = tmp_path_factory.mktemp("class")
    submissions, out = base / "submissions", base / "out"
    out.mkdir()
    lesson = LESSON.read_text(encoding="utf-8")
    fay = json.loads(notebook(after_imports=[CHEAT]))
    for cell in fay["cells"]:  # and the stored outputs edited to say so
        if cell.get("id") in RIGHT:
            cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text="ex00.qN: correct!\n")]
    class_ = {
        "ada": notebook(RIGHT),
        "ben": notebook({"335590b3": RIGHT["335590b3"], "c43df2c8": WRONG_Q3}),
        "cal": lesson,
        "dee": notebook(RIGHT, first=["while True:\n    pass"]),
        "eve": notebook(RIGHT, first=["import os\nos._exit(1)"]),
        "fay": json.dumps(fay),
        "gus": lesson[: len(lesson) // 2],
        "hal": "",
        "ivy": (ROOT / "notebooks" / "01_data.ipynb").read_text(encoding="utf-8"),
        "jon": notebook(RIGHT, first=[hostile(submissions, out)]).replace(
            "ex_grid = torch.arange", "ex_grid = None if leaks else torch.arange"
        ),
        "max": notebook(RIGHT, first=["1 / 0"]),
        "ned": notebook(RIGHT, first=["import torch\ngreedy = torch.empty(2**34)  # 64 GiB: over the memory limit"]),
        "oli": notebook(first=[FORGE]),
        "pat": notebook(after_imports=[SHADOW]),
        "quin": notebook(RIGHT, first=[KILLER]),
    }
    for student, text in class_.items():
        (submissions / student).mkdir(parents=True)
        (submissions / student / NAME).write_text(text, encoding="utf-8")
    (submissions / "kim").mkdir()
    (submissions / "kim" / "notes.txt").write_text("I forgot the notebook")
    with zipfile.ZipFile(submissions / "lee.zip", "w") as archive:
        archive.writestr(f"lee/week1/{NAME}", notebook(RIGHT))
    assert printed_verdicts(class_["fay"]) == 4  # a grader reading the printed verdicts would give fay 4 of 4
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "workflow_utils.grade", str(submissions), "--out", str(out / "grades.csv")]
        + ["--lessons", "00_tensors_and_autograd", "--timeout", "60", "--memory-gb", "6"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.perf_counter() - start
    print(run.stdout)
    assert run.returncode == 0, run.stderr[-3000:]
    return submissions, out, run.stdout, seconds


def test_the_gradebook_is_exactly_the_expected_one(graded):
    _, out, _, seconds = graded
    got = list(csv.reader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))
    # quin's kernel dies with every process of its run, at a moment the killing loop picks: its message varies
    for row in got:
        if row[0] == "quin":
            row[5] = re.sub(r"^crashed: .*?(; flagged|$)", r"crashed\1", row[5])
    assert got == list(csv.reader(io.StringIO(EXPECTED)))
    print(f"graded 17 students (1 hangs for the 60 s limit) in {seconds:.0f} s on 2 workers")


def test_nothing_a_student_started_outlives_the_batch(graded):
    """quin's killer runs in a session of its own; it ends with its run's process namespace (the kernel reaps such
    a namespace's last processes a moment after its first process ends, so this waits up to 10 s). The runs' users
    are the grader's own user ids, from STUDENT_UID up."""
    import psutil

    from workflow_utils.grade import STUDENT_UID

    def students_processes():
        return [p.info for p in psutil.process_iter(["pid", "uids", "cmdline"]) if p.info["uids"].real >= STUDENT_UID]

    deadline = time.monotonic() + 10
    while left := students_processes():
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert left == []


def test_the_grader_says_how_student_code_ran_and_shows_progress(graded):
    _, _, stdout, _ = graded
    first = stdout.splitlines()[0]
    assert "student code runs as a user of its own, with no network, seeing only its own processes" in first, first
    assert [line.split("]")[0] for line in stdout.splitlines() if line.startswith("[")] == [
        f"[{i}/17" for i in range(1, 18)
    ]


def test_the_hostile_student_read_and_wrote_nothing_outside_its_copy(graded):
    submissions, out, _, _ = graded
    escaped = [*submissions.rglob("escaped*"), *out.rglob("escaped*")]
    assert escaped == [] and not ESCAPE.exists()
    assert sorted(p.name for p in out.iterdir()) == ["feedback", "grades.csv"]
    students = ["ada", "ben", "cal", "dee", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "max", "ned", "oli", "pat"]
    students += ["quin"]
    assert sorted(p.name for p in submissions.iterdir()) == sorted([*students, "lee.zip"])  # nothing added


def test_each_student_gets_feedback_naming_each_question(graded):
    _, out, _, _ = graded
    ben = (out / "feedback" / "ben.txt").read_text(encoding="utf-8")
    assert "ex00.q1 (correct): correct!" in ben
    assert "ex00.q3 (incorrect): not yet." in ben and "ex00.q2 (not attempted)" in ben
    fay = (out / "feedback" / "fay.txt").read_text(encoding="utf-8")
    assert fay.count("(not attempted)") == 4  # the redefined checks judged nothing
    assert "over the time limit" in (out / "feedback" / "dee.txt").read_text(encoding="utf-8")
    assert len(list((out / "feedback").iterdir())) == 17


def test_without_the_sandbox_it_grades_the_same_and_says_so(tmp_path):
    """--no-sandbox (macOS, Windows): student code runs as the instructor, and the first line says it plainly."""
    (tmp_path / "in" / "ada").mkdir(parents=True)
    (tmp_path / "in" / "ada" / NAME).write_text(notebook(RIGHT), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "workflow_utils.grade", str(tmp_path / "in"), "--out", str(tmp_path / "out" / "g.csv")]
        + ["--no-sandbox", "--timeout", "120"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "student code runs as you, with your files and the network (--no-sandbox)" in run.stdout.splitlines()[0]
    rows = list(csv.reader(io.StringIO((tmp_path / "out" / "g.csv").read_text(encoding="utf-8"))))
    assert rows[1][:6] == ["ada", "1", "1", "1", "1", "ran"] and rows[1][-2:] == ["4", "36"]  # every lesson by default
    statuses = [value for name, value in zip(rows[0], rows[1]) if name.endswith(" status")]
    assert statuses == ["ran", *["not handed in"] * 8]


def test_every_solutions_notebook_handed_in_as_its_lesson_gets_full_marks(tmp_path):
    """The grader judges every exercise of every lesson right, ex07's trained models included: the reference
    answers, handed in under the lessons' names, score every point."""
    submissions = tmp_path / "in" / "solutions"
    submissions.mkdir(parents=True)
    for path in (ROOT / "notebooks" / "solutions").glob("*_solutions.ipynb"):
        (submissions / path.name.replace("_solutions", "")).write_bytes(path.read_bytes())
    run = subprocess.run(
        [sys.executable, "-m", "workflow_utils.grade", str(tmp_path / "in"), "--out", str(tmp_path / "out" / "g.csv")]
        + ([] if SANDBOX else ["--no-sandbox"]),  # reference answers: safe to run as you
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    header, row = list(csv.reader(io.StringIO((tmp_path / "out" / "g.csv").read_text(encoding="utf-8"))))
    assert row[-2] == row[-1] == "36", dict(zip(header, row))
    assert [v for h, v in zip(header, row) if h.endswith(" status")] == ["ran"] * 9


def test_stopping_the_grader_stops_every_run_it_started(tmp_path):
    """A grader stopped mid-batch (kill, a closed terminal; or killed outright, by the parent-death signal) takes
    every run with it, even a process a notebook started in a session of its own, and removes their copies."""
    if not SANDBOX:
        pytest.skip("the grader's sandbox needs root on Linux (run as root)")
    import psutil

    from workflow_utils.grade import STUDENT_UID

    stubborn = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1000)\ntime.sleep(1000)"
    (tmp_path / "in" / "zed").mkdir(parents=True)
    (tmp_path / "in" / "zed" / NAME).write_text(notebook(first=[stubborn]), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "workflow_utils.grade",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "out" / "g.csv"),
    ]
    import tempfile

    copies = Path(tempfile.gettempdir()).glob
    before = set(copies("grading-*"))
    grader = subprocess.Popen([*command, "--lessons", "00_tensors_and_autograd"], stdout=subprocess.DEVNULL)

    def runs():
        return [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"].real >= STUDENT_UID]

    deadline = time.monotonic() + 60
    while len(runs()) < 3 and time.monotonic() < deadline:  # the runner, the kernel, the notebook's own process
        time.sleep(0.2)
    assert len(runs()) >= 3
    grader.terminate()
    grader.wait(timeout=10)
    deadline = time.monotonic() + 10
    while runs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runs() == []
    assert set(copies("grading-*")) - before == set()  # and the copies are gone
