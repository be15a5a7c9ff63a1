"""Read the lock (requirements.txt) for `make install TORCH=cpu`; standard library only.

    python scripts/lock_tools.py without-cuda requirements.txt   # the lock less PyTorch and its CUDA libraries
    python scripts/lock_tools.py pins requirements.txt torch torchvision   # "torch==2.15.0 torchvision==0.29.2"
    python scripts/lock_tools.py pinned requirements.txt   # every pin, no hashes: workflow_utils/locked.txt

The lock is written by `uv pip compile` (`make lock`): each requirement starts on an unindented line
(`name==version ; marker \\`), followed by indented `--hash=` and `# via` lines.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# PyPI's Linux build of torch brings these; PyTorch's CPU-only build needs none of them.
CUDA_BUILD = re.compile(r"^(torch|torchvision|triton|nvidia-[\w.-]+|cuda-[\w.-]+)$")
ENTRY = re.compile(r"^([A-Za-z0-9][\w.-]*)==([^\s;\\]+)")


def entries(text: str) -> list[tuple[str | None, str | None, list[str]]]:
    """Split the lock into (name, version, lines) blocks; header lines get name None."""
    blocks: list[tuple[str | None, str | None, list[str]]] = []
    for line in text.splitlines():
        match = ENTRY.match(line)
        if match:
            blocks.append((match.group(1).lower(), match.group(2), [line]))
        elif blocks and line.startswith((" ", "\t")):
            blocks[-1][2].append(line)
        else:
            blocks.append((None, None, [line]))
    return blocks


def without_cuda(text: str) -> str:
    kept = [lines for name, _, lines in entries(text) if name is None or not CUDA_BUILD.match(name)]
    return "\n".join(line for lines in kept for line in lines) + "\n"


def pins(text: str, names: list[str]) -> str:
    found = {name: version for name, version, _ in entries(text) if name is not None}
    missing = [name for name in names if name.lower() not in found]
    if missing:
        raise SystemExit(f"lock_tools: {', '.join(missing)} not pinned in the lock; run `make lock`")
    return " ".join(f"{name}=={found[name.lower()]}" for name in names)


def pinned(text: str) -> str:
    """The lock's pins with their markers and without hashes: the copy the package carries, so that
    `python -m workflow_utils.env_check` compares against the lock where only the package is installed."""
    header = "# The lock's pins (requirements.txt), for env_check; written by `make lock`, do not edit.\n"
    lines = [lines[0].rstrip(" \\") for name, _, lines in entries(text) if name is not None]
    return header + "\n".join(lines) + "\n"


def lock_tools_cli(argv: list[str]) -> None:
    commands = {"without-cuda": without_cuda, "pinned": pinned}
    if len(argv) < 2 or argv[0] not in (*commands, "pins"):
        raise SystemExit(__doc__)
    text = Path(argv[1]).read_text(encoding="utf-8")
    if argv[0] == "pins":
        print(pins(text, argv[2:]))
    else:
        print(commands[argv[0]](text), end="")


if __name__ == "__main__":
    lock_tools_cli(sys.argv[1:])
