"""What README.md says agrees with the notebooks and the project, and its first screen is the student's."""

import importlib.util
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


# --- the README starts with the student; the rest lives in CONTRIBUTING.md ---------------------------------------

README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
FIRST_SCREEN = 40  # lines a student sees before scrolling, with the generated badges table left out
BADGES = ("<!-- badges:start -->", "<!-- badges:end -->")
# The sections that moved from the README to CONTRIBUTING.md (the README keeps a pointer to each).
MOVED = (
    "What `make install` installs: the lock",
    "Versions: the lock and the matrix",
    "How the notebooks are tested",
    "What CI runs, and how long each stage takes",
    "The same numbers on every machine",
    "In a real browser, and under real use",
    "After changing a notebook",
    "Performance",
    "The `workflow_utils` package",
    "The fast data path",
)
_FENCE = re.compile(r"^\s*(```|~~~)")


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def headings(source: str) -> list[tuple[int, str]]:
    """(level, title) of every markdown heading outside fenced code, in order."""
    found, fenced = [], False
    for line in source.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := re.match(r"(#{1,6}) (.+)", line)):
            found.append((len(m.group(1)), m.group(2).strip()))
    return found


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def section(source: str, title: str) -> str:
    """The text under the heading ``title`` up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}\n", source, re.MULTILINE)
    assert match, f"no heading {title!r}"
    level = len(match.group(1))
    rest = source[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def first_screen() -> str:
    """The README's first lines as a student sees them, without what the badge generator writes."""
    readme = text(README)
    start, end = readme.index(BADGES[0]), readme.index(BADGES[1])
    collapsed = readme[: start + len(BADGES[0])] + "\n" + readme[end:]
    return "\n".join(collapsed.split("\n")[:FIRST_SCREEN])


def test_the_badges_block_follows_the_opening_paragraph():
    readme = text(README)
    for marker in BADGES:
        assert readme.count(marker) == 1, f"README needs exactly one {marker!r} line (the badge generator fills it)"
    assert readme.index(BADGES[0]) < readme.index(BADGES[1])
    assert re.match(r"# [^\n]+\n\n(?:[^\n]+\n)+\n<!-- badges:start -->\n", readme), (
        "README opens with its title, one paragraph saying what the series is, then the badges block"
    )


def test_the_first_screen_is_the_students():
    screen = first_screen()
    for wanted in (*BADGES, "## Get the code and pick an install", "TORCH=cpu", "Intel"):
        assert wanted in screen, f"README's first {FIRST_SCREEN} lines should show {wanted!r}"
    words = r"\b(?:[Ll]ock(?:ed|s)?|[Mm]atrix|CI|nbval|[Bb]enchmarks?|make bench|[Mm]aintain\w*)\b"
    found = re.search(words, screen)
    assert not found, f"README's first screen is the student's: {found.group(0)!r} belongs in CONTRIBUTING.md"


def test_sections_come_in_the_students_order():
    titles = [title for level, title in headings(text(README)) if level == 2]
    assert titles[:4] == ["Get the code and pick an install", "For students", "For instructors", "Read it anywhere"]


def test_moved_sections_live_in_contributing_and_the_readme_points_to_each():
    readme, contributing = text(README), text(CONTRIBUTING)
    in_readme = {title for _, title in headings(readme)}
    in_contributing = {title for _, title in headings(contributing)}
    for title in MOVED:
        assert title in in_contributing, f"CONTRIBUTING.md has no section {title!r}"
        assert title not in in_readme, f"{title!r} moved to CONTRIBUTING.md; README keeps only a pointer"
    for title in MOVED[:-1]:  # the fast data path is a subsection of the package's section
        assert f"(CONTRIBUTING.md#{anchor(title)})" in readme, f"README has no pointer to {title!r}"
    # The checklist comes first in CONTRIBUTING.md, the moved sections after it.
    assert contributing.index("## Who reviews, and how") < contributing.index("# Maintaining the series")


def test_every_relative_link_in_readme_and_contributing_resolves():
    for path in (README, CONTRIBUTING):
        for target in re.findall(r"\]\(([^)\s]+)\)", text(path)):
            if re.match(r"[a-z]+:", target):
                continue
            name, _, fragment = target.partition("#")
            linked = (path.parent / name) if name else path
            assert linked.exists(), f"{path.name} links to {target}, which does not exist"
            if fragment:
                anchors = {anchor(title) for _, title in headings(text(linked))}
                assert fragment in anchors, f"{path.name} links to {target}: {linked.name} has no such heading"


def test_the_start_page_sections_hold_no_relative_links():
    """The book copies "For students" and "For instructors" onto its start page, where a README link would break."""
    readme = text(README)
    for title in ("For students", "For instructors"):
        links = [t for t in re.findall(r"\]\(([^)\s]+)\)", section(readme, title)) if not re.match(r"[a-z]+:", t)]
        assert not links, f"README's {title!r} is also the book's start page; name files in words, not links: {links}"


def test_the_install_advice_matches_the_project():
    """Python range, PyTorch floor and the fix the Makefile names are the project's own, said before any download."""
    readme = text(README)
    spec = importlib.util.spec_from_file_location("check_python", ROOT / "scripts" / "check_python.py")
    check_python = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_python)
    (low_major, low_minor), (high_major, high_minor) = check_python.LOWEST, check_python.HIGHEST
    assert f"Python {low_major}.{low_minor}–{high_major}.{high_minor}" in first_screen()
    assert "make install PYTHON=python3.11" in readme  # the fix check_python.py prints
    assert "make install PYTHON=python3.11" in Path(check_python.__file__).read_text(encoding="utf-8")
    floor = re.search(r'"torch>=([\d.]+)"', text(ROOT / "pyproject.toml")).group(1)
    intel = readme.index("Macs with an Intel processor are not supported")
    assert f"PyTorch {floor} or newer" in readme[intel : intel + 400], (
        "the Intel-Mac note names pyproject's torch floor"
    )
    assert intel < readme.index("```"), "the Intel-Mac note comes before the first command that downloads anything"
    assert "python3` is 3.9" in readme[: readme.index("```")]


def test_the_windows_route_activates_in_powershell_and_installs_the_lab_settings():
    readme = text(README)
    block = re.search(r"```powershell\n(.*?)```", readme, re.DOTALL)
    assert block, "README gives the Windows route as a PowerShell block"
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert "Set-ExecutionPolicy -Scope Process -ExecutionPolicy RemoteSigned" in lines
    assert lines.index("Set-ExecutionPolicy -Scope Process -ExecutionPolicy RemoteSigned") < lines.index(
        r".venv\Scripts\Activate.ps1"
    )
    # The by-hand routes install the JupyterLab settings exactly as `make lab` does.
    makefile = text(ROOT / "Makefile")
    assert "scripts/install_lab_settings.py --prefix $(VENV)" in makefile
    assert "python scripts/install_lab_settings.py --prefix .venv" in lines
    bash_route = section(readme, "Windows, or without make")
    assert bash_route.count("python scripts/install_lab_settings.py --prefix .venv") >= 3  # PowerShell, bash, prose
    assert "skipped" in bash_route, "README says that tests needing make are skipped without it"


def test_hosted_notebooks_are_never_told_to_install_the_pinned_requirements():
    hosted = section(text(README), "Hosted notebooks: Colab, Kaggle and SageMaker Studio Lab")
    assert "```" not in hosted, "no install commands for hosted runtimes: each notebook's first cell does it"
    hosted = " ".join(hosted.split())  # sentences, whatever their line breaks
    assert "never installs, upgrades or downgrades `torch` or `torchvision`" in hosted
    assert "do not run `pip install -r requirements.txt`" in hosted
    assert "`Source`" in hosted and "`[project.urls]`" in hosted and "make badges" in hosted


def test_the_08_script_is_run_as_a_module_of_the_package():
    readme = text(README)
    assert "python -m workflow_utils.train_digits" in readme
    assert "torchrun --nproc_per_node=2 -m workflow_utils.train_digits" in readme
    assert "scripts/train_digits.py" not in readme


def test_the_book_says_what_building_it_needs():
    """'Without installing anything' is true only of a built copy; no published address is invented."""
    readme = text(README)
    for match in re.finditer(r"without installing anything", readme):
        paragraph = readme[readme.rfind("\n\n", 0, match.start()) : readme.find("\n\n", match.end())]
        assert "built" in paragraph.lower(), f"'without installing anything' must be about a built book: {paragraph!r}"
    book = section(readme, "The book")
    assert "No built copy is published yet" in book and "`book` extra" in book
    assert not re.search(r"https?://(?!localhost)", book), "the book section names no address the repository lacks"
