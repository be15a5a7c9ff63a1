"""Refuse, in one line, a Python the series does not support: ``make install`` runs this first.

    python scripts/check_python.py          # the Python that would create .venv
    python scripts/check_python.py --venv   # an existing .venv's Python (make removes a wrong one)

Written to run on any Python from 3.6 (macOS's own python3 is 3.9), so it uses nothing newer.
"""

import sys

# The lock (requirements.txt, compiled for 3.11 up) needs 3.11: numpy 2.4 and IPython 9 have no release for 3.10.
# pyproject.toml still allows 3.10 for the package alone, which `make test-matrix`'s floors prove.
LOWEST, HIGHEST = (3, 11), (3, 13)


def check(argv):
    found = sys.version_info[:2]
    if LOWEST <= found <= HIGHEST:
        return 0
    where = "the existing .venv holds" if "--venv" in argv else "PYTHON is"
    print(
        f"make install: {where} Python {found[0]}.{found[1]} ({sys.executable}), but the course's install needs "
        "Python 3.11 to 3.13; install one (e.g. from python.org, or `pyenv install 3.11`) and run `make install PYTHON=python3.11`."
    )
    return 2


if __name__ == "__main__":
    sys.exit(check(sys.argv[1:]))
