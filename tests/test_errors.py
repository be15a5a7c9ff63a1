"""workflow_utils.errors.show_error: the real message, then ours; the sanitizer compares only ours."""

import configparser
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from workflow_utils.errors import error_text, show_error

SANITIZE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"


def sanitized(text: str) -> str:
    """``text`` as nbval compares it under the [error-messages] section of tests/nbval_sanitize.cfg."""
    config = configparser.ConfigParser()
    config.read(SANITIZE)
    section = config["error-messages"]
    return re.sub(section["regex"], section["replace"], text)


def caught(action) -> BaseException:
    try:
        action()
    except Exception as err:  # noqa: BLE001 (the test wants whatever the library raises)
        return err
    raise AssertionError("expected an exception")


def test_shows_the_type_the_real_message_and_our_line(capsys):
    err = caught(lambda: nn.Linear(64, 10)(torch.zeros(4, 8)))
    show_error(err, "the layer expects 64 features per sample, the batch has 8")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "RuntimeError, in the library's own words:"
    assert " ".join(line.strip() for line in lines[1:-1]) == str(err)  # PyTorch's words, unchanged
    assert all(line.startswith("    ") and len(line) <= 78 for line in lines[1:-1])
    assert lines[-1] == "What it means: the layer expects 64 features per sample, the batch has 8"


def test_a_long_meaning_wraps_and_stays_compared():
    meaning = "at self.layer = ..., nn.Module.__init__() had not run, so the module had nowhere to register its layers"
    text = error_text(AttributeError("cannot assign module before Module.__init__() call"), meaning)
    ours = text.split("What it means: ")[1]
    assert max(len(line) for line in text.splitlines()) <= 78
    assert " ".join(ours.split()) == meaning
    assert meaning.split()[-1] in sanitized(text + "\n")


def test_a_long_message_with_paragraphs_and_terminal_codes_keeps_every_word():
    message = "Weights only load failed. \x1b[1mTrust the source\x1b[0m first.\n\n\t(1) " + "word " * 40
    text = error_text(RuntimeError(message), "the safe loader refused it")
    body = text.splitlines()[1:-1]
    assert "\x1b" not in text
    assert "" not in body and "    " in body  # the blank line stays, indented, so the sanitizer spans it
    assert " ".join(" ".join(body).split()) == " ".join(re.sub(r"\x1b\[[0-9;]*m", "", message).split())


def test_the_sanitizer_compares_type_and_our_line_only():
    """Two releases that word the message differently store the same comparison; a changed type or
    a changed explanation of ours does not."""
    old = error_text(RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x8 and 64x10)"), "expects 64")
    new = error_text(RuntimeError("addmm: shapes differ:\n\n  (4x8) vs (64x10)\n" + "x " * 60), "expects 64")
    assert sanitized(old + "\nfix: flatten\n") == sanitized(new + "\nfix: flatten\n")
    assert "fix: flatten" in sanitized(old + "\nfix: flatten\n")
    other_type = error_text(ValueError("mat1 and mat2 shapes cannot be multiplied"), "expects 64")
    other_line = error_text(RuntimeError("mat1 and mat2 shapes cannot be multiplied"), "expects 128")
    assert sanitized(old + "\n") != sanitized(other_type + "\n")
    assert sanitized(old + "\n") != sanitized(other_line + "\n")


def test_a_cell_that_prints_before_and_after_keeps_those_lines_compared():
    before = "scale + inference tensor, then backward: works\n"
    text = before + error_text(RuntimeError("Inference tensors cannot be saved"), "autograd cannot save it")
    assert sanitized(text + "\n").startswith(before)


@pytest.mark.parametrize(
    "err, meaning, expected",
    [
        ("not an exception", "x", "takes the exception you caught, got str"),
        (RuntimeError("x"), "  ", "needs a sentence"),
    ],
)
def test_bad_input_is_named(err, meaning, expected):
    with pytest.raises((TypeError, ValueError), match=expected):
        show_error(err, meaning)


NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("**/*.ipynb"))


def hidden_errors(source: str) -> list[str]:
    """The ``except ... as err`` handlers in ``source`` that never show ``err`` itself: they neither pass
    it to show_error nor print it whole, so the student would see only our sentence."""
    import ast

    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    found = []
    for node in ast.walk(ast.parse(code)):
        if not isinstance(node, ast.ExceptHandler) or node.name is None:
            continue
        shown = any(
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id in ("show_error", "print")
            and any(isinstance(arg, ast.Name) and arg.id == node.name for arg in call.args)
            for call in ast.walk(node)
        )
        if not shown:
            found.append(f"line {node.lineno}: except {ast.unparse(node.type)} as {node.name}")
    return found


def test_hidden_errors_finds_a_handler_that_prints_only_our_words():
    ours_only = "try:\n    f()\nexcept RuntimeError as err:\n    print(type(err).__name__, ': shapes differ')\n"
    assert hidden_errors(ours_only) == ["line 3: except RuntimeError as err"]
    assert hidden_errors(ours_only.replace("print(type(err).__name__, ", "show_error(err, ")) == []
    assert hidden_errors("try:\n    f()\nexcept ValueError as err:\n    print('ValueError:', err)\n") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_mistake_cell_shows_the_real_error(path):
    """A student practises reading the library's own message: every caught error is shown, never only
    described (show_error prints it, then our line)."""
    import nbformat

    cells = nbformat.read(path, as_version=4).cells
    found = [f"cell {i} {h}" for i, c in enumerate(cells) if c.cell_type == "code" for h in hidden_errors(c.source)]
    assert found == [], f"{path.name}: errors caught but not shown (use show_error(err, ...)): {found}"
