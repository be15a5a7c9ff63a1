"""What README.md says about the notebooks agrees with the notebooks."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def first_note(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    notes = ["".join(c["source"]) for c in cells if c["metadata"].get("slideshow", {}).get("slide_type") == "notes"]
    return notes[0]


def test_class_times_in_the_readme_are_those_of_the_instructor_notes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| (0\d) [^|]+ \| (\d+) min[^|]*\|", readme, flags=re.MULTILINE))
    assert sorted(table) == [p.name[:2] for p in LESSONS], "the README's class-time table has a row per lesson"
    for path in LESSONS:
        stated = re.match(r"\*\*Instructor notes\.\*\* About (\d+) minutes", first_note(path))
        assert stated, f"{path.name}: the first instructor note starts with the lesson's time ('About N minutes')"
        assert table[path.name[:2]] == stated.group(1), (
            f"README gives {path.name[:2]} {table[path.name[:2]]} min; its first note says {stated.group(1)}"
        )
