"""What README.md says about the notebooks agrees with the notebooks."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def first_note(path: Path) -> str:
    """The text of a notebook's first instructor note, without the <details> it is folded in."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    notes = ["".join(c["source"]) for c in cells if c["metadata"].get("slideshow", {}).get("slide_type") == "notes"]
    return re.sub(r"\A\s*<details[^>]*>\s*<summary>.*?</summary>\s*", "", notes[0], flags=re.DOTALL)


def number(path: Path) -> str:
    """A lesson's number as its title gives it: "00", "00b", "01", ..."""
    title = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
    return re.match(r"# (0\d[a-z]?) ·", title).group(1)


def test_class_times_in_the_readme_are_those_of_the_instructor_notes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| (0\d[a-z]?) [^|]+ \| (\d+) min[^|]*\|", readme, flags=re.MULTILINE))
    assert sorted(table) == [number(p) for p in LESSONS], "the README's class-time table has a row per lesson"
    for path in LESSONS:
        stated = re.match(r"About (\d+) minutes", first_note(path))
        assert stated, f"{path.name}: the first instructor note starts with the lesson's time ('About N minutes')"
        assert table[number(path)] == stated.group(1), (
            f"README gives {number(path)} {table[number(path)]} min; its first note says {stated.group(1)}"
        )
