"""Exercises for 00_tensors_and_autograd."""

from __future__ import annotations

from typing import Any

import torch

from workflow_utils.exercises import Exercise

# the scores the notebook's exercise 3 gives: one row per image, one column per class
EX00_SCORES = ((0.1, 0.7, 0.2), (0.8, 0.1, 0.1), (0.3, 0.2, 0.5), (0.2, 0.5, 0.3))


def _cpu_float64(value: torch.Tensor) -> torch.Tensor:
    """The numbers of ``value`` as a float64 CPU tensor, so int, float and GPU answers compare alike."""
    return value.detach().cpu().double()


def _not_a_tensor(name: str, value: Any, how: str) -> str | None:
    """What to say when ``value`` is not a tensor (None when it is one)."""
    if isinstance(value, torch.Tensor):
        return None
    return f"{name} should be a tensor, got {type(value).__name__}; {how}"


def _grid_and_column(grid: Any, column: Any) -> str | None:
    expected = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    if (problem := _not_a_tensor("ex_grid", grid, "torch.arange and reshape make one.")) is not None:
        return problem
    got = _cpu_float64(grid)
    if tuple(got.shape) == (4, 3):
        return "ex_grid has shape (4, 3), 4 rows of 3; the task asks for 3 rows of 4 numbers, shape (3, 4)."
    if tuple(got.shape) != (3, 4):
        return f"ex_grid should have shape (3, 4), 3 rows of 4 numbers; got {tuple(got.shape)}."
    if torch.equal(got, expected + 1):
        return "ex_grid holds 1 to 12; it should hold 0 to 11 (torch.arange(12) starts at 0 and stops before 12)."
    if torch.equal(got, expected.reshape(4, 3).T):
        return "ex_grid is filled column by column; the numbers should run along each row: 0, 1, 2, 3 in row 0."
    if not torch.equal(got, expected):
        return "ex_grid should hold the numbers 0 to 11 in order, row by row."
    if column is None:
        return "ex_column is still None: pick column 2 of ex_grid."
    if (problem := _not_a_tensor("ex_column", column, "index ex_grid to get one.")) is not None:
        return problem
    picked = _cpu_float64(column).flatten()
    for k in range(3):
        if torch.equal(picked, expected[k]):
            return f"that is row {k} of ex_grid (ex_grid[{k}]); a column takes one number from every row."
    for k in range(4):
        if k != 2 and torch.equal(picked, expected[:, k]):
            if k == 3:
                return "that is column 3, the fourth column: counting starts at 0, so the third column is column 2."
            return f"that is column {k}; the task asks for column 2."
    if not torch.equal(picked, expected[:, 2]):
        return "ex_column should hold column 2 of ex_grid: the numbers 2, 6 and 10."
    return None


def _areas_table(areas: Any) -> str | None:
    heights = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    widths = torch.tensor([10.0, 20.0, 30.0, 40.0], dtype=torch.float64)
    expected = heights.unsqueeze(1) * widths
    if (problem := _not_a_tensor("ex_areas", areas, "build it from the tensors heights and widths.")) is not None:
        return problem
    got = _cpu_float64(areas)
    if tuple(got.shape) == (4, 3) and torch.allclose(got, expected.T):
        return (
            "ex_areas has shape (4, 3), one row per width: the table lies on its side. Its rows should follow heights."
        )
    if tuple(got.shape) == (3, 4) and torch.allclose(got, heights.unsqueeze(1) + widths):
        return "ex_areas holds sums such as 1 + 10; the table should hold products, heights[i] * widths[j]."
    if tuple(got.shape) != (3, 4):
        return (
            f"ex_areas should have shape (3, 4), one row per height and one column per width; got {tuple(got.shape)}."
        )
    if not torch.allclose(got, expected):
        return "entry [i, j] of ex_areas should be heights[i] * widths[j], for heights [1, 2, 3] and widths [10, 20, 30, 40]."
    return None


def _predicted_classes(best: Any) -> str | None:
    scores = torch.tensor(EX00_SCORES, dtype=torch.float64)
    if not isinstance(best, torch.Tensor) and hasattr(best, "values") and hasattr(best, "indices"):
        return "that is the (values, indices) pair that max(dim=...) returns; the positions are its .indices."
    if (problem := _not_a_tensor("ex_best", best, "ask ex_scores for it.")) is not None:
        return problem
    got = _cpu_float64(best).flatten()
    if got.numel() == 4 and torch.allclose(got, scores.max(dim=1).values):
        return "those are the highest scores themselves; ex_best should hold their positions, the class numbers."
    if got.numel() == 1 and got.item() == 3:
        return (
            "ex_best is one number, 3: argmax() without dim= counts positions through all 12 scores as one flat "
            "list. Ask for one result per row (image)."
        )
    if got.numel() == 3 and torch.equal(got, scores.argmax(dim=0).double()):
        return (
            "ex_best holds 3 numbers, one per class column: dim=0 runs down the columns. You want one per image, "
            "that is one per row."
        )
    if got.numel() != 4:
        return f"ex_best should hold one class number per image, 4 in all; got {got.numel()}."
    if torch.equal(got, scores.argmax(dim=1).double() + 1):
        return "each number in ex_best is one too high: counting starts at 0: the classes are 0, 1 and 2."
    if not torch.equal(got, scores.argmax(dim=1).double()):
        return "ex_best should hold, for each image (row), the position of its highest score: 0, 1 or 2."
    return None


def _slope_at_two(a: Any, by_hand: Any) -> str | None:
    slope, value = 7.0, -2.0  # f(a) = a**3 - 5a at a = 2: f'(2) = 3 * 4 - 5, f(2) = 8 - 10
    if not isinstance(a, torch.Tensor):
        return f"ex_a should be the tensor you called backward() through, got {type(a).__name__}; the check reads ex_a.grad."
    if a.numel() == 1 and not a.requires_grad and abs(_cpu_float64(a).item() - slope) < 1e-4:
        return "that looks like the gradient itself; pass ex_a, the tensor whose .grad autograd filled."
    if not (a.is_floating_point() or a.is_complex()):
        return "ex_a holds a whole number; only float tensors can require gradients: write 2.0, not 2."
    if not a.requires_grad:
        return "ex_a does not require a gradient: create it with requires_grad=True, so autograd records what is computed from it."
    if a.numel() != 1:
        return f"ex_a should hold one number, 2.0; got shape {tuple(a.shape)}."
    if not a.is_leaf and abs(_cpu_float64(a).item() - value) < 1e-4:
        return "that is f, the result; pass ex_a, the tensor you made and computed f from."
    if not a.is_leaf and not a.retains_grad:  # its .grad stays None (and reading it warns); retain_grad() fills it
        return (
            "ex_a was computed from another tensor, so autograd fills that tensor's .grad, not ex_a's. Create ex_a "
            "directly, holding 2.0, with requires_grad=True."
        )
    if abs(_cpu_float64(a).item() - 2.0) > 1e-6:
        return f"ex_a should hold 2.0, got {_cpu_float64(a).item():g}."
    if a.grad is None:
        return "ex_a.grad is None: autograd has not run yet. Call backward() on f, the result, then check again."
    grad = _cpu_float64(a.grad).sum().item()
    times = round(grad / slope)
    if times >= 2 and abs(grad - times * slope) < 1e-4:
        return (
            f"ex_a.grad is {grad:g}, {times} times the slope: backward() ran {times} times, and gradients add up. "
            "Create ex_a again (or zero ex_a.grad), then call backward() once."
        )
    if abs(grad - slope) > 1e-4:
        return f"ex_a.grad is {grad:g}: compute f from ex_a exactly as f(a) = a³ − 5·a, then call backward() on it."
    if by_hand is None:
        return "autograd's part is right; ex_by_hand is still None: work out df/da at a = 2 on paper."
    if isinstance(by_hand, (str, bytes)):
        return f"ex_by_hand is the text {by_hand!r}; store the number itself, without quotes."
    try:
        hand = float(by_hand.detach()) if isinstance(by_hand, torch.Tensor) else float(by_hand)
    except (TypeError, ValueError):
        return f"ex_by_hand should be a number, got {type(by_hand).__name__}."
    if abs(hand - value) < 1e-4:
        return "ex_by_hand is f(2) = -2, the value of the function; df/da is its slope at a = 2."
    if abs(hand - 12) < 1e-4:
        return "ex_by_hand is 12, the slope of a³ alone; the −5·a term changes the slope too."
    if abs(hand - 2) < 1e-4:
        return "ex_by_hand is 2: the slope of −5·a is −5 at every a, not −5·a = −10."
    if abs(hand - slope) > 1e-4:
        return f"ex_by_hand is {hand:g}, which is not df/da at a = 2; autograd's ex_a.grad shows the number to aim for."
    return None


q1 = Exercise(
    "ex00.q1",
    _grid_and_column,
    (
        "two steps: make the numbers 0 to 11, then arrange them in rows. The section 'Indexing and slicing' "
        "shows how to pick a column.",
        "torch.arange(12) gives 0 to 11 in a line, and .reshape(3, 4) arranges them in 3 rows of 4.",
        "in ex_grid[rows, columns], ':' in the rows place means every row, so ex_grid[:, 2] is column 2.",
    ),
    "ex_grid = torch.arange(12).reshape(3, 4)\nex_column = ex_grid[:, 2]",
    answers=("ex_grid", "ex_column"),
)
q2 = Exercise(
    "ex00.q2",
    _areas_table,
    (
        "heights has shape (3,) and widths (4,): as they are, broadcasting cannot pair them. Which shape would "
        "make heights run down the rows?",
        "give heights a second dimension of size 1, shape (3, 1); broadcasting then repeats it across the 4 widths.",
        "call unsqueeze on heights with dim=1 to make it a column, shape (3, 1), then multiply it by widths: "
        "(3, 1) times (4,) broadcasts to (3, 4).",
    ),
    "ex_areas = heights.unsqueeze(dim=1) * widths  # (3, 1) * (4,) -> (3, 4)",
    answers=("ex_areas",),
)
q3 = Exercise(
    "ex00.q3",
    _predicted_classes,
    (
        "which reduction gives the position of the largest value, rather than the value itself?",
        "argmax with dim=...: the dimension you name is the one that disappears. One result per row means the "
        "columns, dimension 1, disappear.",
        "call argmax on ex_scores with dim=1: dimension 1, the classes, disappears, so one position per row "
        "(image) remains.",
    ),
    "ex_best = ex_scores.argmax(dim=1)",
    answers=("ex_best",),
)
q4 = Exercise(
    "ex00.q4",
    _slope_at_two,
    (
        "two jobs: a derivative on paper, term by term, and the three autograd steps of the section 'Autograd' "
        "(requires_grad, compute, backward).",
        "differentiate term by term: the power rule for a³; −5·a is a straight line. Make ex_a with torch.tensor, "
        "holding 2.0 (a float) and with requires_grad=True.",
        "add the two derivatives and put in a = 2 for ex_by_hand. Then compute f from ex_a with ** and *, as it is "
        "written, and call backward() on f: ex_a.grad holds the same number.",
    ),
    "ex_by_hand = 3 * 2**2 - 5  # the slope of a**3 - 5*a is 3*a**2 - 5\n"
    "ex_a = torch.tensor(2.0, requires_grad=True)\nf = ex_a**3 - 5 * ex_a\nf.backward()",
    answers=("ex_a", "ex_by_hand"),
)
