"""No lesson uses a word, a torch function or a tensor method before the lesson that introduces it.

GLOSSARY.md (at the repository's root) is the students' glossary and the list this test reads. Each row of its
two tables names an entry, the section that introduces it (``02_model § Build the model by hand``: a notebook's
stem and the exact text of one of its headings) and its meaning in one line. The test reads every notebook in
``notebooks/`` (not the solutions) in the order of their names, which is the order of the lessons
(00_start_here, 00_tensors_and_autograd, 01_data, ..., 08_scaling_up), and fails, with one line per finding
(notebook, cell index from 0, the entry, the sentence or code line, and where the glossary introduces it), when

- a notebook uses an entry before the notebook that introduces it, or in that notebook above its heading;
- a code cell uses a ``torch``/``torchvision`` name that has no row (a new function gets a meaning first);
- a row's notebook or heading does not exist (a heading was renamed: update the row);
- the introducing section, from its heading to the next heading of the same or a higher level, never uses the
  entry (for a term: its first, main spelling), so the glossary cannot point at a section that does not teach
  it; the main spelling is how a row demands "stochastic gradient descent" where the lessons mostly say "SGD";
- a row marked "not used in the lessons" is used by a lesson after all.

What counts as a use:

- Terms (the "## Terms" table): in markdown cells, case-insensitive, as whole words; a hyphen and a space are the
  same ("cross-entropy" = "cross entropy"), and a trailing "s", "es", "d" or "ed" is allowed (gradients, batches,
  seeded, normalised). The spellings in parentheses after the name count too: ``cross-entropy (CrossEntropyLoss)``.
  Inline code and fenced code inside markdown count: a student who reads `state_dict` in the prose needs it
  explained as much as one who reads "state dict".
- Functions (rows whose name is a dotted name, e.g. ``nn.Linear``; ``nn.``, ``F.``, ``optim.`` and ``v2.``
  abbreviate ``torch.nn.``, ``torch.nn.functional.``, ``torch.optim.`` and ``torchvision.transforms.v2.``): in
  code cells, read with ``ast`` after following the notebook's imports (``from torch import nn`` makes
  ``nn.Linear`` ``torch.nn.Linear``), and in inline or fenced code inside markdown, spelled in full, abbreviated,
  or as one of the row's spellings in parentheses (``torch.utils.data.DataLoader (DataLoader)``).
- Methods and attributes (rows whose name starts with a dot: ``.reshape()`` is a method, ``.shape`` an
  attribute): a call ``anything.reshape(...)`` or an access ``anything.shape`` in a code cell, on any object
  (``ast`` cannot know the type, so ``model.to(device)`` is a use of ``.to()``); in markdown, inline code that
  holds ``.reshape`` or is just ``reshape``/``reshape()``.
- Lines starting with ``%`` or ``!`` (IPython magics and shell escapes) are blanked before ``ast`` reads a cell.

What does not count:

- Instructor notes (cells whose slideshow.slide_type is "notes"): students do not read them, and they are
  written for someone who already knows every word. Their headings do not count either.
- Code comments and strings: the check reads names from code, and words from the prose around it.
- A notebook's title cell (its first markdown cell, when it opens with a ``#`` heading: the title and the
  "What you'll learn" list) naming an entry that *this* notebook introduces further down. That list is the
  lesson's table of contents, a promise rather than a use. Naming an entry that a later notebook introduces is
  still a failure there. (Forward references elsewhere, "notebook 03 introduces optimizers", do fail: say it
  without the word, or introduce the word where it is first needed.)

The checks are pure functions of the notebooks' cells and the glossary's text, so ``test_the_check_can_fail``
runs them on small made-up notebooks. Run: ``.venv/bin/python -m pytest tests/test_glossary.py`` (about 2 s).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
GLOSSARY = ROOT / "GLOSSARY.md"

TERMS_HEADING = "## Terms"
FUNCTIONS_HEADING = "## PyTorch functions and tensor methods"
NOT_USED = "not used in the lessons"  # the "introduced in" of a row kept for students who meet the word elsewhere
# The abbreviations the lessons import (`from torch import nn`, `import torch.nn.functional as F`, ...).
ABBREVIATIONS = {
    "nn.": "torch.nn.",
    "F.": "torch.nn.functional.",
    "optim.": "torch.optim.",
    "v2.": "torchvision.transforms.v2.",
}
ROOT_MODULES = ("torch", "torchvision")
# Modules, not functions: a bare `nn` or `v2` is not a use of anything the glossary lists.
MODULES = {
    "torch",
    "torch.nn",
    "torch.nn.functional",
    "torch.optim",
    "torch.optim.lr_scheduler",
    "torch.utils",
    "torch.utils.data",
    "torch.export",
    "torch.distributed",
    "torch.amp",
    "torch.cuda",
    "torch.linalg",
    "torchvision",
    "torchvision.datasets",
    "torchvision.transforms",
    "torchvision.transforms.v2",
}


# --- the glossary ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One row of GLOSSARY.md."""

    kind: str  # "term", "function", "method" (.reshape()) or "attribute" (.shape)
    name: str  # the main spelling, as written in the name column (without backticks)
    spellings: tuple[str, ...]  # every spelling that counts as a use, the main one first
    notebook: str  # the introducing notebook's stem, or "" for a row NOT_USED in the lessons
    heading: str  # the exact text of its heading
    line: int  # the row's line number in GLOSSARY.md

    @property
    def where(self) -> str:
        return f"{self.notebook} § {self.heading}" if self.notebook else NOT_USED

    @property
    def key(self) -> str:
        """What uses are matched by: a term's name, a function's full dotted name, `.reshape` for a method."""
        if self.kind == "function":
            return expand(self.name)
        if self.kind in ("method", "attribute"):
            return "." + self.name.strip(".()")
        return self.name


def expand(name: str) -> str:
    """`nn.Linear` -> `torch.nn.Linear`; a full name stays as it is."""
    for short, full in ABBREVIATIONS.items():
        if name.startswith(short):
            return full + name[len(short) :]
    return name


ROW = re.compile(r"^\|(?P<cells>.*)\|\s*$")
NAME_CELL = re.compile(r"^(?P<main>.+?)(?:\s+\((?P<more>[^()]*)\))?$")  # `name (other, spellings)`


def parse_glossary(text: str) -> tuple[list[Entry], list[str]]:
    """The rows of the two tables, and one line per row that cannot be read."""
    entries, problems = [], []
    section = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            section = {TERMS_HEADING: "term", FUNCTIONS_HEADING: "function"}.get(line.strip())
            continue
        row = ROW.match(line)
        if section is None or not row:
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row["cells"])]
        if len(cells) != 3:
            problems.append(f"GLOSSARY.md line {number}: a row needs 3 columns (name, introduced in, meaning)")
            continue
        name_cell, where, meaning = cells
        if name_cell.lower() == "name" or set(name_cell) <= set("-: "):
            continue  # the table's header and separator rows
        parsed = NAME_CELL.match(name_cell.replace("`", ""))
        main = parsed["main"].strip()
        more = [s.strip() for s in (parsed["more"] or "").split(",") if s.strip()]
        kind = section
        if section == "function" and main.startswith("."):
            kind = "method" if main.endswith("()") else "attribute"
        if where.strip("*_ ") == NOT_USED:
            notebook, heading = "", ""
        elif " § " in where:
            notebook, heading = (part.strip() for part in where.split(" § ", 1))
        else:
            problems.append(f"GLOSSARY.md line {number}: {main!r}: 'introduced in' must read 'NOTEBOOK § HEADING'")
            continue
        if not meaning:
            problems.append(f"GLOSSARY.md line {number}: {main!r} has no meaning")
        entries.append(Entry(kind, main, (main, *more), notebook, heading, number))
    seen: dict[tuple[str, str], Entry] = {}
    for entry in entries:
        for spelling in entry.spellings:
            # terms match whatever the case; code names only as spelled (torch.tensor is not torch.Tensor)
            known = seen.setdefault(("term", spelling.lower()) if entry.kind == "term" else ("code", spelling), entry)
            if known is not entry:
                problems.append(
                    f"GLOSSARY.md line {entry.line}: {spelling!r} is also a spelling of {known.name!r} (line {known.line})"
                )
    for heading in (TERMS_HEADING, FUNCTIONS_HEADING):
        if heading not in text.splitlines():
            problems.append(f"GLOSSARY.md has no heading {heading!r} over its table")
    return entries, problems


# --- reading a notebook ---------------------------------------------------------------------------------------


def is_notes(cell: dict) -> bool:
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type") == "notes"


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def code_spans(text: str) -> list[tuple[int, str]]:
    """(offset, code) of each fenced block and inline code span of a markdown text."""
    spans = [(m.start(), m.group(0)) for m in FENCE.finditer(text)]
    blanked = FENCE.sub(lambda m: " " * len(m.group(0)), text)
    spans += [(m.start(2), m.group(2)) for m in INLINE_CODE.finditer(blanked)]
    return sorted(spans)


def headings(text: str) -> list[tuple[int, int, str]]:
    """(offset, level, text) of each heading of a markdown text (not inside fenced code)."""
    blanked = FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return [(m.start(), len(m.group(1)), m.group(2).strip()) for m in HEADING.finditer(blanked)]


def sentence_at(text: str, offset: int, width: int = 160) -> str:
    """The sentence (or list item, or table row) of `text` around `offset`, on one line."""
    boundaries = [0]
    boundaries += [m.end() for m in re.finditer(r"[.!?](?=\s)|\n\s*\n|\n(?=\s*(?:[-*|#]|\d+\.)\s)", text)]
    start = max(b for b in boundaries if b <= offset)
    ends = [m.start() + 1 for m in re.finditer(r"[.!?](?=\s|$)|\n\s*\n|\n(?=\s*(?:[-*|#]|\d+\.)\s)", text)]
    end = min([e for e in ends if e > offset] or [len(text)])
    sentence = " ".join(text[start:end].split()).lstrip("-*|# ")
    if len(sentence) > width:
        at = max(0, min(len(sentence) - width, len(" ".join(text[start:offset].split())) - width // 3))
        sentence = ("…" if at else "") + sentence[at : at + width] + "…"
    return sentence


# --- uses -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Use:
    """Where a notebook uses a glossary entry (or an unlisted torch name)."""

    cell: int
    offset: int  # the position in the cell's text; headings can sit in the middle of a markdown cell
    key: str  # Entry.key, or the full name of a torch name that has no row
    context: str = field(compare=False)


def term_pattern(spellings: tuple[str, ...]) -> re.Pattern:
    words = []
    for spelling in spellings:
        tokens = [re.escape(t) for t in re.split(r"[-\s]+", spelling.strip()) if t]
        words.append(r"[-\s]+".join(tokens))
    # plurals and past forms count: gradients, batches, seeded, normalised
    return re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?:s|es|d|ed)?(?!\w)", re.IGNORECASE)


def code_mention_pattern(entry: Entry) -> re.Pattern:
    """How markdown's inline code names a function, method or attribute."""
    if entry.kind == "function":
        spellings = {entry.key, *entry.spellings}
        names = "|".join(re.escape(s) for s in sorted(spellings, key=len, reverse=True))
        return re.compile(r"(?<![\w.])(?:" + names + r")(?!\w)")
    bare = re.escape(entry.key.lstrip("."))
    return re.compile(r"\." + bare + r"(?!\w)|^" + bare + r"(?:\(\))?$")


class _CodeUses(ast.NodeVisitor):
    """The torch names, methods and attributes one code cell uses, following the notebook's imports."""

    def __init__(self, aliases: dict[str, str], methods: set[str], attributes: set[str]):
        self.aliases, self.methods, self.attributes = aliases, methods, attributes
        self.found: list[tuple[int, str]] = []  # (line, key)
        self._calls: set[int] = set()

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top in ROOT_MODULES:
                # `import torch.nn.functional as F` binds F to torch.nn.functional; `import torch.nn` binds torch
                self.aliases[alias.asname or top] = alias.name if alias.asname else top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if (node.module or "").split(".")[0] in ROOT_MODULES and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                self.aliases[alias.asname or alias.name] = full
                if full not in MODULES:
                    self.found.append((node.lineno, full))

    def visit_Call(self, node: ast.Call) -> None:
        self._calls.add(id(node.func))
        self.generic_visit(node)

    def _dotted(self, node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in self.aliases:
            return ".".join([self.aliases[node.id], *reversed(parts)])
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        full = self._dotted(node)
        if full is not None:  # torch.optim.SGD, nn.Linear: the whole chain is one name
            if full not in MODULES:
                self.found.append((node.lineno, full))
            return
        called = id(node) in self._calls
        if (called and node.attr in self.methods) or (not called and node.attr in self.attributes):
            self.found.append((node.lineno, "." + node.attr))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        full = self.aliases.get(node.id)
        if full is not None and full not in MODULES and isinstance(node.ctx, ast.Load):
            self.found.append((node.lineno, full))


def code_uses(text: str, aliases: dict[str, str], methods: set[str], attributes: set[str]) -> list[tuple[int, str]]:
    """(line, key) for each use in one code cell; `aliases` carries the notebook's imports from cell to cell."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()]
    visitor = _CodeUses(aliases, methods, attributes)
    visitor.visit(ast.parse("\n".join(lines)))
    return visitor.found


def notebook_uses(cells: list[dict], entries: list[Entry]) -> tuple[list[Use], list[str]]:
    """Every use of an entry, and of a torch name, in one notebook's cells; and the cells `ast` cannot read."""
    methods = {e.key.lstrip(".") for e in entries if e.kind == "method"}
    attributes = {e.key.lstrip(".") for e in entries if e.kind == "attribute"}
    terms = [(e.key, term_pattern(e.spellings)) for e in entries if e.kind == "term"]
    in_code = [(e.key, code_mention_pattern(e)) for e in entries if e.kind != "term"]
    uses, problems, aliases = [], [], {}
    for index, cell in enumerate(cells):
        text = source(cell)
        if cell.get("cell_type") == "code":
            try:
                found = code_uses(text, aliases, methods, attributes)
            except SyntaxError as err:
                problems.append(f"cell {index}: ast cannot read the code ({err.msg}, line {err.lineno})")
                continue
            lines = text.splitlines()
            uses += [Use(index, 0, key, lines[line - 1].strip()) for line, key in found]
        elif cell.get("cell_type") == "markdown" and not is_notes(cell):
            for key, pattern in terms:
                uses += [Use(index, m.start(), key, sentence_at(text, m.start())) for m in pattern.finditer(text)]
            for start, code in code_spans(text):
                for key, pattern in in_code:
                    for m in pattern.finditer(code):
                        at = start + m.start()
                        uses.append(Use(index, at, key, sentence_at(text, at)))
    return sorted(uses), problems


# --- the checks -----------------------------------------------------------------------------------------------


def section_cells(cells: list[dict], cell: int, offset: int, level: int) -> list[tuple[int, str]]:
    """(cell, text) of a section: from the heading at (cell, offset) to the next heading of level <= `level`."""
    out = []
    for index in range(cell, len(cells)):
        text = source(cells[index])
        start = offset if index == cell else 0
        if cells[index].get("cell_type") == "markdown" and not is_notes(cells[index]):
            later = [at for at, lvl, _ in headings(text) if (at > start or index > cell) and lvl <= level]
            if later:
                out.append((index, text[start : later[0]]))
                break
        out.append((index, text[start:]))
    return out


def section_uses(cells: list[dict], section: list[tuple[int, str]], entry: Entry, uses: list[Use]) -> bool:
    """Whether a section (its heading included) uses the entry.

    A term must appear in the section's prose by its main spelling (a row can demand the spelled-out form,
    "stochastic gradient descent", even where the lessons usually say "SGD"). A function, method or attribute
    must appear in the section's code, or in its markdown's inline code under any of its spellings.
    """
    markdown = [text for i, text in section if cells[i].get("cell_type") == "markdown" and not is_notes(cells[i])]
    if entry.kind == "term":
        pattern = term_pattern(entry.spellings[:1])
        return any(pattern.search(text) for text in markdown)
    code_cells = {i for i, _ in section if cells[i].get("cell_type") == "code"}
    if any(use.key == entry.key and use.cell in code_cells for use in uses):
        return True
    pattern = code_mention_pattern(entry)
    return any(pattern.search(code) for text in markdown for _, code in code_spans(text))


def title_cell(cells: list[dict]) -> int | None:
    """The index of a notebook's title cell: its first markdown cell, if that starts with a level-1 heading."""
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown":
            found = headings(source(cell))
            return index if found and found[0][:2] == (0, 1) else None
    return None


def order_of(notebooks: dict[str, list[dict]], entries: list[Entry]) -> list[str]:
    """The lessons in order: the notebooks' stems, and those the glossary names but that do not exist yet."""
    return sorted(set(notebooks) | {e.notebook for e in entries if e.notebook})


def find_violations(notebooks: dict[str, list[dict]], glossary_text: str) -> list[str]:
    """One line per way the notebooks and the glossary disagree; empty when they agree.

    `notebooks` maps a notebook's stem to its cells (dicts with cell_type, source and metadata), in any order:
    the lessons run in the order of their stems.
    """
    entries, problems = parse_glossary(glossary_text)
    order = order_of(notebooks, entries)
    by_key = {e.key: e for e in entries}
    cache: dict[str, tuple[list[Use], list[str]]] = {}

    def uses_in(stem: str) -> tuple[list[Use], list[str]]:
        if stem not in cache:
            cache[stem] = notebook_uses(notebooks[stem], entries)
        return cache[stem]

    # Where each entry is introduced: (position of its notebook, cell, offset of its heading).
    starts: dict[str, tuple[int, int, int]] = {}
    for entry in entries:
        if not entry.notebook:
            continue
        if entry.notebook not in notebooks:
            problems.append(
                f"GLOSSARY.md line {entry.line}: {entry.name!r} is introduced in {entry.where}, "
                f"but notebooks/{entry.notebook}.ipynb does not exist"
            )
            continue
        cells = notebooks[entry.notebook]
        found = [
            (index, at, level)
            for index, cell in enumerate(cells)
            if cell.get("cell_type") == "markdown"
            if not is_notes(cell)
            for at, level, text in headings(source(cell))
            if text == entry.heading
        ]
        if not found:
            problems.append(
                f"GLOSSARY.md line {entry.line}: {entry.name!r} is introduced in {entry.where}, "
                f"but {entry.notebook} has no heading {entry.heading!r} (renamed? update the row)"
            )
            continue
        index, at, level = found[0]
        starts[entry.key] = (order.index(entry.notebook), index, at)
        if not section_uses(cells, section_cells(cells, index, at, level), entry, uses_in(entry.notebook)[0]):
            problems.append(
                f"GLOSSARY.md line {entry.line}: {entry.name!r} is introduced in {entry.where}, "
                f"but that section never uses the word {entry.name!r}"
            )

    unlisted: set[str] = set()
    for position, stem in enumerate(order):
        if stem not in notebooks:
            continue
        uses, unreadable = uses_in(stem)
        problems += [f"{stem} {line}" for line in unreadable]
        title = title_cell(notebooks[stem])
        reported: set[tuple[int, str]] = set()
        for use in uses:
            if (use.cell, use.key) in reported:
                continue
            entry = by_key.get(use.key)
            if entry is None:
                if use.key.split(".")[0] in ROOT_MODULES and use.key not in unlisted:
                    unlisted.add(use.key)
                    problems.append(
                        f"{stem} cell {use.cell}: {use.key} is used ({use.context}) but GLOSSARY.md has no row for it: "
                        f"add one under {FUNCTIONS_HEADING!r}"
                    )
                continue
            if stem == entry.notebook and use.cell == title:
                # The title cell's "What you'll learn" list promises what this notebook teaches: naming a word
                # there is a table of contents, not a use. (A word a *later* notebook introduces still fails.)
                continue
            if not entry.notebook:
                reported.add((use.cell, use.key))
                problems.append(
                    f"{stem} cell {use.cell}: {entry.name!r} is used ({use.context}) but the glossary says it is "
                    f"{NOT_USED}: point its row at the section that introduces it"
                )
                continue
            start = starts.get(use.key)
            if start is not None and (position, use.cell, use.offset) < start:
                reported.add((use.cell, use.key))
                problems.append(
                    f"{stem} cell {use.cell}: {entry.name!r} is used ({use.context}) before it is introduced, "
                    f"in {entry.where}"
                )
    return problems


def read_notebooks(folder: Path = NOTEBOOK_DIR) -> dict[str, list[dict]]:
    return {path.stem: list(nbformat.read(path, as_version=4).cells) for path in sorted(folder.glob("*.ipynb"))}


# --- the tests ------------------------------------------------------------------------------------------------


def test_every_name_is_introduced_before_a_lesson_uses_it():
    problems = find_violations(read_notebooks(), GLOSSARY.read_text(encoding="utf-8"))
    assert not problems, f"{len(problems)} disagreements between GLOSSARY.md and the notebooks:\n" + "\n".join(problems)


def _markdown(text: str, notes: bool = False) -> dict:
    return {
        "cell_type": "markdown",
        "source": text,
        "metadata": {"slideshow": {"slide_type": "notes" if notes else "slide"}},
    }


def _code(text: str) -> dict:
    return {"cell_type": "code", "source": text, "metadata": {}}


SYNTHETIC_GLOSSARY = """\
# Glossary

## Terms

| name | introduced in | meaning |
|---|---|---|
| epoch (epochs) | 02_loop § Epochs | one pass over the training data |
| hyperparameter | not used in the lessons | a setting we choose |

## PyTorch functions and tensor methods

| name | introduced in | meaning |
|---|---|---|
| `nn.Linear` | 01_model § A layer | a linear layer |
| `.reshape()` | 01_model § A layer | the same numbers in another shape |
"""


def test_the_check_can_fail():
    """A made-up pair of lessons where 01 says 'epochs' before 02 explains it: the check names the cell."""
    model = [
        _markdown("# 01 · Model\n\n**What you'll learn**\n- a layer, trained for a few epochs in 02"),
        _markdown("## A layer\n\n`nn.Linear(1, 1)` is a layer."),
        _code("from torch import nn\n\nlayer = nn.Linear(1, 1)\nx = layer.weight.reshape(1)"),
        _markdown("We will train it for many epochs."),  # too early: 02 introduces the word
        _markdown("An epoch is a word instructors may use in their notes.", notes=True),  # notes do not count
    ]
    loop = [
        _markdown("# 02 · Loop\n\n**What you'll learn**\n- what an epoch is"),  # 02's own promise: allowed
        _markdown("Each epoch ..."),  # too early: above the heading that introduces it
        _markdown("## Epochs\n\nAn **epoch** is one pass over the training data."),
        _markdown("Three epochs:"),
        _code("import torch\n\noptimizer = torch.optim.SGD(layer.parameters(), lr=0.1)"),  # a name with no row
    ]
    problems = find_violations({"01_model": model, "02_loop": loop}, SYNTHETIC_GLOSSARY)
    assert len(problems) == 4, "\n".join(problems)
    assert problems[0].startswith("01_model cell 0: 'epoch' is used (a layer, trained for a few epochs in 02) before")
    assert problems[1].startswith("01_model cell 3: 'epoch' is used (We will train it for many epochs.) before")
    assert problems[1].endswith("before it is introduced, in 02_loop § Epochs")
    assert problems[2].startswith("02_loop cell 1: 'epoch' is used (Each epoch ...) before")
    assert problems[3].startswith("02_loop cell 4: torch.optim.SGD is used (optimizer = torch.optim.SGD(")

    fixed = {"01_model": [model[1], model[2], model[4]], "02_loop": [loop[0], *loop[2:4]]}
    assert find_violations(fixed, SYNTHETIC_GLOSSARY) == []


def test_the_check_catches_a_glossary_that_lies():
    """A renamed heading, a section that never uses its word, a missing notebook, a word said to be unused."""
    lesson = [
        _markdown("## A layer\n\nLayers hold weights."),
        _code("import torch\n\nx = torch.zeros(2).reshape(1, 2)"),
        _markdown("## Loops\n\nNothing about it here, and no hyperparameters either."),
    ]
    glossary = SYNTHETIC_GLOSSARY.replace("02_loop § Epochs", "01_model § Loops").replace(
        "| `nn.Linear` | 01_model § A layer", "| `nn.Linear` | 00_primer § Layers"
    )
    glossary += "| `torch.zeros` | 01_model § A lair | a tensor of zeros |\n"
    problems = find_violations({"01_model": lesson}, glossary)
    assert any("'nn.Linear'" in p and "00_primer.ipynb does not exist" in p for p in problems), problems
    assert any("'torch.zeros'" in p and "has no heading 'A lair'" in p for p in problems), problems
    assert any("'epoch'" in p and "never uses the word 'epoch'" in p for p in problems), problems
    assert any("cell 2: 'hyperparameter' is used" in p and NOT_USED in p for p in problems), problems
    assert len(problems) == 4, "\n".join(problems)


def test_code_uses_follow_the_imports():
    """Names resolve through each import style the lessons use; methods need a call, attributes must not have one."""
    aliases: dict[str, str] = {}
    first = code_uses(
        "%matplotlib inline\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
        "from torch.utils.data import DataLoader\n",
        aliases,
        {"reshape"},
        {"shape"},
    )
    assert [key for _, key in first] == ["torch.utils.data.DataLoader"]  # modules are not entries
    found = code_uses(
        "layer = nn.Linear(1, 1)\ny = F.pad(torch.zeros(2), (1, 1)).reshape(1, 4)\n"
        "n = y.shape[0]\nloader = DataLoader([], batch_size=1)\nsize = y.reshape\nshape = y.shape()\n",
        aliases,
        {"reshape"},
        {"shape"},
    )
    assert sorted(key for _, key in found) == sorted(
        [
            "torch.nn.Linear",
            "torch.nn.functional.pad",
            "torch.zeros",
            ".reshape",
            ".shape",
            "torch.utils.data.DataLoader",
        ]
    )
