"""Auto-checked exercises: ``ex01.q1.check(answer)`` prints a verdict, ``hint()`` and ``solution()`` help.

Each notebook's exercises live in a module named after it (``ex01`` for ``01_data``). An answer
(the first argument of ``check``) left as ``None`` prints "not attempted yet", so Restart & Run All
never breaks. An exercise with graded hints (a tuple, a nudge first and the method last) reveals one
level per call of ``hint()``, and a wrong answer's verdict only points to ``hint()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@contextlib.contextmanager
def _left_as_found(answer: tuple[Any, ...]) -> Iterator[None]:
    """Run a check so that the student's session is as it was before: a check must change nothing.

    The global torch RNG is forked (so the student's next ``torch.rand`` is unchanged), and every
    ``nn.Module`` in the answer gets back its train/eval mode and its buffers (a forward pass in
    training mode updates BatchNorm's running statistics).
    """
    import torch
    from torch import nn

    modules = [a for a in answer if isinstance(a, nn.Module)]
    modes = [(m, m.training) for module in modules for m in module.modules()]
    buffers = [(b, b.detach().clone()) for module in modules for b in module.buffers()]
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        for m, training in modes:
            m.training = training
        with torch.no_grad():
            for b, saved in buffers:
                if b.shape == saved.shape:
                    b.copy_(saved)


NOT_ATTEMPTED, INCORRECT, CORRECT = "not attempted", "incorrect", "correct"  # a verdict's outcomes


@dataclass
class Exercise:
    """One exercise: ``problem(*answer)`` returns what is wrong (a string) or None when correct.

    ``hint_text`` is one hint, or a tuple of graded hints: a nudge first, the method last.
    """

    name: str
    problem: Callable[..., str | None]
    hint_text: str | tuple[str, ...]
    solution_code: str
    report: Callable[..., str] | None = None  # a line added after "correct!" (e.g. the one test score)
    # the names the lesson passes to check(), in order: the grader (workflow_utils.grade) reads them from the
    # student's notebook after running it, so a deleted or rewritten check cell changes nothing
    answers: tuple[str, ...] = ()
    _hints_shown: int = field(default=0, init=False, repr=False, compare=False)  # graded hints revealed so far

    @property
    def hints(self) -> tuple[str, ...]:
        """The hints in the order ``hint()`` reveals them."""
        return (self.hint_text,) if isinstance(self.hint_text, str) else tuple(self.hint_text)

    def check(self, *answer: Any) -> None:
        """Print a verdict for ``answer``: correct, not attempted yet, or what is wrong plus a hint."""
        outcome, message = self.verdict(*answer)
        print(message)
        if outcome == CORRECT and self.report is not None:
            with _left_as_found(answer):
                print(f"  {self.report(*answer)}")

    def verdict(self, *answer: Any) -> tuple[str, str]:
        """The outcome for ``answer`` (``NOT_ATTEMPTED``, ``INCORRECT`` or ``CORRECT``) and the line ``check``
        prints for it; the grader (``workflow_utils.grade``) records both."""
        if self._unattempted(answer):
            return NOT_ATTEMPTED, f"{self.name}: not attempted yet (replace the None above, then run the cell again)"
        problem = self._problem(answer)
        if problem is None:
            return CORRECT, f"{self.name}: correct!"
        return INCORRECT, f"{self.name}: not yet. {problem}\n  hint: {self._hint_pointer()}"

    def passes(self, *answer: Any) -> bool:
        """Whether ``answer`` is correct, without printing anything."""
        return not self._unattempted(answer) and self._problem(answer) is None

    @staticmethod
    def _unattempted(answer: tuple[Any, ...]) -> bool:
        # the answer comes first; later arguments (read_digit, say) are helpers from the notebook
        return not answer or answer[0] is None

    def _problem(self, answer: tuple[Any, ...]) -> str | None:
        try:
            with _left_as_found(answer):
                return self.problem(*answer)
        except Exception as exc:  # a broken answer gets a verdict, not a traceback
            return f"checking your answer raised {type(exc).__name__}: {exc}"

    def _hint_pointer(self) -> str:
        """What a wrong answer's verdict says about hints: the one hint, or where the graded ones are."""
        if len(self.hints) == 1:
            return self.hints[0]
        return f"{self.name}.hint() gives a nudge; call it again for more ({len(self.hints)} levels)."

    def hint(self) -> None:
        """Print a nudge in the right direction; with graded hints, each call reveals the next level."""
        hints = self.hints
        if len(hints) == 1:
            print(f"{self.name} hint: {hints[0]}")
            return
        level = min(self._hints_shown, len(hints) - 1)
        self._hints_shown = level + 1
        last = "" if level + 1 < len(hints) else f" (the last hint; {self.name}.solution() shows one answer)"
        print(f"{self.name} hint {level + 1} of {len(hints)}: {hints[level]}{last}")

    def solution(self) -> None:
        """Print one correct answer."""
        print(f"{self.name} solution:\n{self.solution_code}")
