"""Showing an error the way a student will meet it: ``show_error`` (first used in 00_tensors_and_autograd,
"Arithmetic and broadcasting").

When PyTorch refuses something it raises an exception, and the last line of the traceback reads
``TypeName: message``. The mistake cells of the series catch the exception (so the notebook can go on)
and print it with this function: the type, the library's own message word for word (rewrapped to fit), then one
line of ours saying what it means here. Students practise reading the real message; the tests compare
the type and our line, not the library's wording, which a new release may change
(``tests/nbval_sanitize.cfg``, section ``[error-messages]``).
"""

from __future__ import annotations

import re
import textwrap

__all__ = ["show_error"]

WIDTH = 78  # the decks show outputs at about 80 characters
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # bold and colour codes some messages carry for terminals


def error_text(err: BaseException, meaning: str) -> str:
    """The three parts ``show_error`` prints, as one string (see ``show_error``)."""
    if not isinstance(err, BaseException):
        raise TypeError(
            f"error_text() takes the exception you caught, got {type(err).__name__}; use `except ... as err`"
        )
    if not isinstance(meaning, str) or not meaning.strip():
        raise ValueError("error_text() needs a sentence saying what the error means here")
    message = _ANSI.sub("", str(err)).strip() or "(no message)"
    lines = []
    for line in message.splitlines():
        wrapped = textwrap.wrap(line.strip(), WIDTH - 4, break_on_hyphens=False, break_long_words=False)
        lines.extend(f"    {part}" for part in wrapped or [""])
    ours = textwrap.fill(" ".join(meaning.split()), WIDTH, initial_indent="What it means: ", subsequent_indent="  ")
    return "\n".join([f"{type(err).__name__}, in the library's own words:", *lines, ours])


def show_error(err: BaseException, meaning: str) -> None:
    """Print a caught exception as a student meets it, then what it means.

    ``err`` is the exception from ``except SomeError as err``; ``meaning`` is one sentence of ours.
    The output has three parts::

        RuntimeError, in the library's own words:
            <the message word for word, rewrapped at 78 characters>
        What it means: <meaning, wrapped at 78 characters>
    """
    print(error_text(err, meaning))
