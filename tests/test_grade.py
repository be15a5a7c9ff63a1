"""The grader's parts that need no kernel: which names it judges, how it finds notebooks, what it refuses without
running anything, the gradebook and feedback it writes, and the sandbox's mounts. The whole grader runs on a
synthetic class in tests/robustness/test_grading.py (make test-robust)."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

from workflow_utils import grade
from workflow_utils.exercises import CORRECT, INCORRECT, NOT_ATTEMPTED

ROOT = Path(__file__).resolve().parents[1]
CHECK_CALL = re.compile(r"(ex\d\d)\.(q\d+)\.check\((.*?)\)\s*$", re.MULTILINE)


def _check_calls(path: Path) -> dict[str, list[str]]:
    calls = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            for module, question, args in CHECK_CALL.findall(cell.source):
                calls[f"{module}.{question}"] = [a.strip() for a in args.split(",")]
    return calls


def test_each_exercise_module_grades_a_lesson_that_exists():
    for module, lesson in grade.LESSONS.items():
        assert (ROOT / "notebooks" / f"{lesson}.ipynb").is_file(), module
        assert (ROOT / "notebooks" / "solutions" / f"{lesson}_solutions.ipynb").is_file(), module
    modules = sorted(p.stem for p in (ROOT / "workflow_utils" / "exercises").glob("ex*.py"))
    assert modules == sorted(grade.LESSONS)


def test_the_grader_judges_exactly_the_names_the_lessons_pass_to_check():
    """Exercise.answers is what the grader reads from a student's notebook: it must be what the lesson's own check
    cell passes, or a student who answered right would be judged on the wrong names."""
    for module, questions in grade.exercise_modules().items():
        calls = _check_calls(ROOT / "notebooks" / f"{grade.LESSONS[module]}.ipynb")
        assert sorted(calls) == sorted(q.name for q in questions), module
        for exercise in questions:
            assert list(exercise.answers) == calls[exercise.name], exercise.name


def test_verdict_gives_the_outcome_and_the_line_check_prints(capsys):
    import torch

    from workflow_utils.exercises import ex00

    assert ex00.q2.verdict(None)[0] == NOT_ATTEMPTED and capsys.readouterr().out == ""  # verdict prints nothing
    outcome, message = ex00.q2.verdict(torch.zeros(3, 4))
    assert outcome == INCORRECT and message.startswith("ex00.q2: not yet.")
    right = torch.tensor([1, 2, 3]).unsqueeze(1) * torch.tensor([10, 20, 30, 40])
    assert ex00.q2.verdict(right) == (CORRECT, "ex00.q2: correct!")
    ex00.q2.check(right)
    assert capsys.readouterr().out == "ex00.q2: correct!\n"


def test_find_notebooks_takes_the_shallowest_lesson_file_and_skips_checkpoints(tmp_path):
    for relative in ("deep/er/01_data.ipynb", "week1/01_data.ipynb", ".ipynb_checkpoints/02_model.ipynb", "x.ipynb"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("{}")
    assert grade.find_notebooks(tmp_path) == {"01_data": tmp_path / "week1" / "01_data.ipynb"}


def test_zips_unpack_inside_their_folder_and_a_broken_zip_hands_in_nothing(tmp_path):
    submissions, into = tmp_path / "in", tmp_path / "unpacked"
    submissions.mkdir()
    with zipfile.ZipFile(submissions / "ann.zip", "w") as archive:
        archive.writestr("../../escape.ipynb", "{}")  # zipfile drops the ..
        archive.writestr("ann/01_data.ipynb", "{}")
    (submissions / "bob.zip").write_bytes(b"not a zip")
    (submissions / "cy").mkdir()
    with zipfile.ZipFile(submissions / "dee.zip", "w") as archive:
        archive.writestr("big.ipynb", "x" * 10)
        archive.writestr("video.mp4", "x" * 100)  # not a notebook: not unpacked
    students, problems = grade.unpack_zips(submissions, into)
    assert sorted(students) == ["ann", "bob", "cy", "dee"]
    assert grade.find_notebooks(students["ann"]) == {"01_data": into / "ann" / "ann" / "01_data.ipynb"}
    assert grade.find_notebooks(students["bob"]) == {}
    assert problems == {"bob": "zip not unpacked: BadZipFile: File is not a zip file"}
    assert sorted(p.name for p in (into / "dee").iterdir()) == ["big.ipynb"]
    assert not (tmp_path / "escape.ipynb").exists() and not (into / "escape.ipynb").exists()


def test_a_zip_whose_notebooks_unpack_too_large_is_not_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(grade, "ZIP_LIMIT", 100)
    with zipfile.ZipFile(tmp_path / "eve.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("01_data.ipynb", "0" * 101)  # a few bytes packed: a zip bomb's shape
    (tmp_path / "out").mkdir()
    students, problems = grade.unpack_zips(tmp_path, tmp_path / "out")
    assert (
        problems == {"eve": "zip not unpacked: its notebooks are over 0 MB"}
        and grade.find_notebooks(students["eve"]) == {}
    )


def test_only_well_formed_verdicts_for_exactly_the_lessons_questions_count():
    names = ["ex00.q1", "ex00.q2"]
    good = {"ex00.q1": ["correct", "ex00.q1: correct!"], "ex00.q2": ["incorrect", "ex00.q2: not yet."]}
    assert grade.verdicts(json.dumps(good), names) == {k: tuple(v) for k, v in good.items()}
    for forged in (
        "{",
        "[]",
        json.dumps({"ex00.q1": ["correct", "ok"]}),  # a question missing
        json.dumps({**good, "ex00.q9": ["correct", "ok"]}),  # one too many
        json.dumps({**good, "ex00.q2": ["full marks", "ok"]}),  # not an outcome
        json.dumps({**good, "ex00.q2": "correct"}),
        json.dumps({**good, "ex00.q2": ["correct", 1]}),
    ):
        assert grade.verdicts(forged, names) is None, forged


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (None, grade.MISSING),
        (b"", grade.EMPTY),
        (b"  \n", grade.EMPTY),
        (b'{"cells": [', grade.NOT_JSON),
        (b"\x89PNG\r\n\x1a\n", grade.NOT_JSON),
        (b'["a list"]', grade.NOT_JSON),
        (
            json.dumps(
                {"cells": [{"cell_type": "code", "source": "from workflow_utils.exercises import ex02"}]}
            ).encode(),
            "not this lesson's notebook (no cell uses ex01)",
        ),
    ],
)
def test_what_is_not_this_lessons_notebook_is_named_without_running_it(tmp_path, content, status):
    path = None
    if content is not None:
        path = tmp_path / "01_data.ipynb"
        path.write_bytes(content)
    graded = grade.grade_notebook("ann", "ex01", path, timeout=1, memory_gb=1, hide=None)
    assert (graded.status, graded.questions) == (status, {})


def _graded(student, lesson, status, **outcomes):
    questions = {q.replace("_", "."): (o, f"{q.replace('_', '.')}: said {o}\n  hint: ...") for q, o in outcomes.items()}
    return grade.Graded(student, lesson, status, 1.0, questions)


def test_the_gradebook_has_a_row_per_student_points_per_question_and_each_lessons_status():
    modules = grade.exercise_modules()
    results = [
        _graded(
            "bo",
            "00_tensors_and_autograd",
            "ran",
            ex00_q1=CORRECT,
            ex00_q2=INCORRECT,
            ex00_q3=NOT_ATTEMPTED,
            ex00_q4=CORRECT,
        ),
        _graded("al", "00_tensors_and_autograd", grade.EMPTY),
        _graded("al", "08_scaling_up", "ran", ex08_q1=CORRECT, ex08_q2=CORRECT, ex08_q3=CORRECT),
    ]
    header, rows = grade.gradebook_rows(results, modules, {"ex00.q4": 3, "ex08.q3": 0.5})
    assert header == [
        "student", "ex00.q1", "ex00.q2", "ex00.q3", "ex00.q4", "00_tensors_and_autograd status",
        "ex08.q1", "ex08.q2", "ex08.q3", "08_scaling_up status", "total", "out of",
    ]  # fmt: skip
    assert rows == [
        ["al", "0", "0", "0", "0", "empty file", "1", "1", "0.5", "ran", "2.5", "8.5"],
        ["bo", "1", "0", "0", "3", "ran", "0", "0", "0", "not handed in", "4", "8.5"],
    ]


def test_feedback_names_each_question_its_outcome_and_message():
    text = grade.feedback_text(
        "bo", [_graded("bo", "00_tensors_and_autograd", "ran", ex00_q1=CORRECT, ex00_q2=INCORRECT)]
    )
    assert text == (
        "Feedback for bo\n\n00_tensors_and_autograd: ran\n"
        "  ex00.q1 (correct): said correct\n    hint: ...\n  ex00.q2 (incorrect): said incorrect\n    hint: ...\n"
    )


def test_the_cli_refuses_bad_input_in_one_line_naming_the_fix(tmp_path, capsys):
    submissions, out = tmp_path / "class", ["--out", str(tmp_path / "out" / "g.csv")]
    submissions.mkdir()
    with pytest.raises(SystemExit):
        grade.grade_cli([str(tmp_path / "nowhere"), *out])
    assert "is not a folder: give the folder that holds one folder or .zip per student" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        grade.grade_cli([str(submissions), *out, "--lessons", "01_dat"])
    assert "no lesson 01_dat; the lessons are 00_tensors_and_autograd, 01_data" in capsys.readouterr().err
    for points, message in [
        ("ex07.q4", "write it as QUESTION=POINTS, POINTS 0 or more, e.g. ex07.q4=3"),
        ("ex07.q4=-1", "POINTS 0 or more"),
        ("ex07.q4=nan", "POINTS 0 or more"),
        ("ex7.q4=3", "no question ex7.q4; the questions are the gradebook's columns, e.g. ex07.q4"),
    ]:
        with pytest.raises(SystemExit, match=re.escape(message)):
            grade.grade_cli([str(submissions), *out, "--points", points])
    with pytest.raises(SystemExit):
        grade.grade_cli([str(submissions), "--out", str(submissions / "grading" / "g.csv")])
    assert "is inside" in capsys.readouterr().err  # its feedback folder would be graded as a student
    for bad in (["--jobs", "0"], ["--timeout", "0"], ["--memory-gb", "-1"]):
        with pytest.raises(SystemExit):
            grade.grade_cli([str(submissions), *out, *bad])
        assert "--jobs must be 1 or more, --timeout and --memory-gb more than 0" in capsys.readouterr().err


def test_the_sandbox_empties_each_folder_and_puts_back_only_what_is_kept(tmp_path):
    """Each kept folder under an emptied one is bound aside first (reached from the cwd once its path is covered) and
    back afterwards; a folder inside one already emptied, a kept one, or a missing one is left alone."""
    for folder in ("class/subs", "work/inner", "py", "out"):
        (tmp_path / folder).mkdir(parents=True)
    t = str(tmp_path)
    lines = grade._blank(
        [tmp_path / "class", tmp_path / "class" / "subs", tmp_path / "py", tmp_path / "gone"],
        [tmp_path / "work", tmp_path / "work" / "inner", tmp_path / "py"],
    )
    assert lines == [f"mount -t tmpfs -o mode=755,size=1m tmpfs {t}/class"]
    lines = grade._blank(
        [tmp_path, tmp_path / "out"], [tmp_path / "work", tmp_path / "work" / "inner", tmp_path / "py"]
    )
    assert lines == [
        "mkdir -p ./0",
        f"mount --bind {t}/work ./0",
        "mkdir -p ./1",
        f"mount --bind {t}/py ./1",
        f"mount -t tmpfs -o mode=755,size=1m tmpfs {t}",
        f"mkdir -p {t}/work",
        f"mount --bind ./0 {t}/work",
        f"mkdir -p {t}/py",
        f"mount --bind ./1 {t}/py",
    ]
    assert grade._blank([Path("/tmp")], []) == ["mount -t tmpfs -o mode=1777,size=256m tmpfs /tmp"]


def test_no_lesson_or_solution_uses_what_flags_a_notebook_for_a_person_to_read():
    """The flag must mean something: the series' own code never reaches into the grader's way of judging."""
    for path in sorted((ROOT / "notebooks").glob("**/*.ipynb")):
        sources = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        assert grade.tampering(sources) == [], path.name
    assert grade.tampering(["x = 1", "Exercise.check = print", "import ctypes"]) == ["ctypes", "Exercise."]
