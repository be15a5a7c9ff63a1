"""What a notebook stores for readers whose viewer runs no widgets (GitHub, an untrusted notebook, nbviewer)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("**/*.ipynb"))
BAR = re.compile(r"epochs: +(\d+)%\|[^|\n]*\| (\d+)/(\d+)")


def test_no_stored_progress_bar_is_left_unfinished():
    """fit(progress=True)'s bar is a widget whose stored text tqdm writes as the bar starts ("0/20") and never
    again; fit writes it again as the run ends, so a reader without widgets sees the finished bar."""
    bars, unfinished = 0, []
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            for output in cell.get("outputs", []):
                text = "".join(output.get("data", {}).get("text/plain", ""))
                for match in BAR.finditer(text):
                    bars += 1
                    if match[2] != match[3]:
                        unfinished.append(f"{path.relative_to(ROOT)} cell {cell.get('id')}: {match[0]}")
    assert bars >= 2, "04 and 07 show a progress bar"
    assert unfinished == []


def test_the_bar_prints_no_time_in_a_terminal(capsys):
    """Outside Jupyter the bar is tqdm's line on stderr, without elapsed time or rate."""
    from workflow_utils.engine import _with_progress_bar

    assert list(_with_progress_bar(range(3, 6))) == [3, 4, 5]
    last = capsys.readouterr().err.split("\r")[-1]
    assert re.fullmatch(r"epochs: 100%\|[^|]*\| 3/3\s*", last), last
