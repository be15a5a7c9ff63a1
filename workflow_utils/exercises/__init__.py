"""Auto-checked exercises: ``ex01.q1.check(answer)`` prints a verdict, ``hint()`` and ``solution()`` help.

Each notebook's exercises live in a module named after it (``ex01`` for ``01_data``). An answer
(the first argument of ``check``) left as ``None`` prints "not attempted yet", so Restart & Run All
never breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Exercise:
    """One exercise: ``problem(*answer)`` returns what is wrong (a string) or None when correct."""

    name: str
    problem: Callable[..., str | None]
    hint_text: str
    solution_code: str

    def check(self, *answer: Any) -> None:
        """Print a verdict for ``answer``: correct, not attempted yet, or what is wrong plus a hint."""
        if self._unattempted(answer):
            print(f"{self.name}: not attempted yet (replace the None above, then run the cell again)")
            return
        problem = self._problem(answer)
        if problem is None:
            print(f"{self.name}: correct!")
        else:
            print(f"{self.name}: not yet. {problem}\n  hint: {self.hint_text}")

    def passes(self, *answer: Any) -> bool:
        """Whether ``answer`` is correct, without printing anything."""
        return not self._unattempted(answer) and self._problem(answer) is None

    @staticmethod
    def _unattempted(answer: tuple[Any, ...]) -> bool:
        # the answer comes first; later arguments (read_digit, say) are helpers from the notebook
        return not answer or answer[0] is None

    def _problem(self, answer: tuple[Any, ...]) -> str | None:
        try:
            return self.problem(*answer)
        except Exception as exc:  # a broken answer gets a verdict, not a traceback
            return f"checking your answer raised {type(exc).__name__}: {exc}"

    def hint(self) -> None:
        """Print a nudge in the right direction."""
        print(f"{self.name} hint: {self.hint_text}")

    def solution(self) -> None:
        """Print one correct answer."""
        print(f"{self.name} solution:\n{self.solution_code}")
