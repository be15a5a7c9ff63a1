"""Every lesson notebook in JupyterLab, in headless Chromium, as a student meets it.

Each notebook opens unmodified, runs with Run All, and ends with no error output (except cells
tagged ``raises-exception``), no widget that failed to load and no SEVERE console message. The
widgets are then used with the mouse and keyboard: the learning-rate slider (03), the stepper
buttons (04), the live loss plot (04, 07). Screenshots go to build/ui/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
import uikit

LESSONS = sorted(p.name for p in (uikit.ROOT / "notebooks").glob("0*.ipynb"))
EXPLORER, TRAINING = "03_loss_and_optimizer.ipynb", "04_training_loop.ipynb"
CAPSTONE = "07_putting_it_all_together.ipynb"
WIDGET_FAILURES = ("Error displaying widget", "Loading widget")

# Every <img> in a node: its pixel size, the size it is shown at, and whether it loaded.
IMAGES_JS = """
return [...arguments[0].querySelectorAll('img')].map(img => {
  const box = img.getBoundingClientRect();
  return {natural: [img.naturalWidth, img.naturalHeight], shown: [box.width, box.height],
          loaded: img.complete && img.naturalWidth > 0, src: img.src};
});
"""


def _stem(name: str) -> str:
    return Path(name).stem


def problems_after_run(state: dict) -> list[str]:
    """Error outputs outside cells tagged raises-exception, and code cells that never ran."""
    problems = []
    for number, cell in enumerate(state["cells"]):
        if cell["type"] != "code":
            continue
        if cell["count"] is None:
            problems.append(f"cell {number} did not run")
        for output in cell["outputs"]:
            if output["output_type"] == "error" and "raises-exception" not in cell["tags"]:
                problems.append(f"cell {number}: {output['ename']}: {output['evalue']}")
    return problems


def broken_images(lab: uikit.LabPage) -> list[str]:
    """Images in the notebook that failed to load (the browser's broken-image icon)."""
    notebook = lab.driver.execute_script("return window.jupyterapp.shell.currentWidget.content.node")
    return [image["src"][:60] for image in lab.driver.execute_script(IMAGES_JS, notebook) if not image["loaded"]]


def assert_shown_at_drawn_size(image: dict, what: str) -> None:
    """A PNG is shown at the size it was drawn, within 10 %: not blown up (blurry) or squeezed."""
    (width, height), (shown_width, shown_height) = image["natural"], image["shown"]
    assert image["loaded"] and width > 0, f"{what}: the image did not load (broken-image icon)"
    assert abs(shown_width / width - 1) <= 0.1 and abs(shown_height / height - 1) <= 0.1, (
        f"{what}: drawn at {width}x{height} px but shown at {shown_width:.0f}x{shown_height:.0f} px"
    )


def cell_images(lab: uikit.LabPage, source: str) -> list[dict]:
    """The images in the outputs of the cell whose source contains ``source``."""
    node = lab.cell_node(lab.find_cell(source))
    return lab.driver.execute_script(IMAGES_JS, node)


@pytest.mark.parametrize("name", LESSONS)
def test_notebook_opens_clean_and_runs_all_without_errors(lab, name):
    lab.open(name)
    time.sleep(1)  # JupyterLab writes kernel details into the notebook as the kernel starts: give it time
    uikit.screenshot(lab.driver, f"lab-{_stem(name)}-1-opened")
    assert not lab.state()["dirty"], f"{name} is marked modified right after opening, before any cell ran"
    assert "Jupyter news" not in lab.page_text(), (
        "JupyterLab asks about Jupyter news (lab-settings/overrides.json not applied)"
    )
    state = lab.run_all()
    uikit.screenshot(lab.driver, f"lab-{_stem(name)}-2-ran")
    assert problems_after_run(state) == []
    text = lab.page_text()
    assert [failure for failure in WIDGET_FAILURES if failure in text] == []
    assert broken_images(lab) == []
    assert uikit.severe_console_messages(lab.driver) == []


@pytest.mark.notebook(EXPLORER)
def test_explorer_label_is_whole_and_picture_at_drawn_size(lab):
    lab.ran(EXPLORER)
    node = lab.cell_node(lab.find_cell("LearningRateExplorer(X_train"))
    labels = lab.driver.execute_script(
        "return [...arguments[0].querySelectorAll('.widget-label')].map(l => [l.textContent, l.scrollWidth, l.clientWidth])",
        node,
    )
    uikit.screenshot(lab.driver, "lab-03-explorer", show=node)
    assert ["learning rate", "optimizer"] == [text for text, _, _ in labels if text]
    assert [text for text, needed, shown in labels if needed > shown] == [], "a label is cut off (ends in …)"
    (image,) = lab.driver.execute_script(IMAGES_JS, node)
    assert_shown_at_drawn_size(image, "learning-rate explorer")


@pytest.mark.notebook(EXPLORER)
def test_moving_the_learning_rate_slider_redraws_the_picture(lab):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    lab.ran(EXPLORER)
    node = lab.cell_node(lab.find_cell("LearningRateExplorer(X_train"))
    readout = node.find_element(By.CSS_SELECTOR, ".widget-readout")
    image = node.find_element(By.CSS_SELECTOR, "img")
    before_src, before_pixels = image.get_attribute("src"), image.screenshot_as_png
    assert readout.text == "0.0100"
    handle = node.find_element(By.CSS_SELECTOR, ".noUi-handle")
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)  # one step of 0.25 on the log10 scale
    uikit.wait_for(
        lambda: image.get_attribute("src") != before_src, 60, "the explorer to redraw after the slider moved"
    )
    uikit.screenshot(lab.driver, "lab-03-explorer-after-slider", show=node)
    assert readout.text == "0.0178"
    assert image.screenshot_as_png != before_pixels, "the slider moved but the picture stayed the same"
    assert uikit.severe_console_messages(lab.driver) == []


@pytest.mark.notebook(TRAINING)
def test_stepper_buttons_in_order_and_out_of_order(lab):
    from selenium.webdriver.common.by import By

    lab.ran(TRAINING)
    node = lab.cell_node(lab.find_cell("TrainingStepper(stepper_model"))

    table = node.find_element(By.CSS_SELECTOR, ".widget-html")

    def press(name: str) -> str:  # every press in this sequence changes the message line
        before = table.text
        node.find_element(By.XPATH, f".//button[normalize-space()='{name}']").click()
        return uikit.wait_for(lambda: table.text != before and table.text, 30, f"the stepper table after {name}")

    for name in ("forward", "loss", "zero_grad", "backward"):
        press(name)
    text = press("step")
    uikit.screenshot(lab.driver, "lab-04-stepper-in-order", show=table)
    assert (
        "did step" in text and re.search(r"weights\s*0\.3406", text) and re.search(r"weights\.grad\s*-0\.3900", text)
    ), text
    text = press("loss")  # out of order: the step made the old predictions stale
    assert "no predictions yet: press forward first" in text, text
    text = press("backward")
    uikit.screenshot(lab.driver, "lab-04-stepper-out-of-order", show=table)
    assert "no loss to backpropagate" in text and re.search(r"weights\s*0\.3406", text), text


@pytest.mark.notebook(TRAINING)
def test_live_plot_in_04_is_shown_at_its_drawn_size(lab):
    lab.ran(TRAINING)
    images = cell_images(lab, "live_plot = LiveLossPlot(every=4)")
    uikit.screenshot(lab.driver, "lab-04-live-plot")
    assert len(images) == 1
    assert_shown_at_drawn_size(images[0], "04 live loss plot")


@pytest.mark.notebook(CAPSTONE)
def test_capstone_shows_its_live_plot_and_test_accuracy(lab):
    state = lab.ran(CAPSTONE)
    images = cell_images(lab, "live_plot = LiveLossPlot()")
    uikit.screenshot(lab.driver, "lab-07-live-plot")
    assert_shown_at_drawn_size(images[0], "07 live loss plot")
    node = lab.cell_node(lab.find_cell("test_accuracy = accuracy("))
    uikit.screenshot(lab.driver, "lab-07-test-accuracy", show=node)
    printed = "".join(_text_of(cell) for cell in state["cells"])
    assert re.search(r"test accuracy: 0\.9\d{3} \(\d+/270\)", printed), "no 'test accuracy' line was printed"
    assert re.search(r"test accuracy: 0\.9\d{3}", lab.page_text()), "the test accuracy line is not on the page"


def test_live_plot_before_its_first_epoch_shows_a_blank_plot_not_a_broken_image(lab):
    scratch = lab.server.root / "scratch_live_plot.ipynb"
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    )
    nb.cells.append(nbformat.v4.new_code_cell("from workflow_utils.widgets import LiveLossPlot\nLiveLossPlot()"))
    nbformat.write(nb, scratch)
    lab.open(scratch.name)
    lab.run_all()
    images = cell_images(lab, "LiveLossPlot()")
    uikit.screenshot(lab.driver, "lab-live-plot-before-first-epoch")
    assert len(images) == 1
    assert_shown_at_drawn_size(images[0], "a live plot before its first epoch")


@pytest.mark.notebook(TRAINING)
def test_restart_and_run_all_twice_gives_the_same_text(lab):
    lab.open(TRAINING)
    texts = []
    for attempt in (1, 2):
        state = lab.run_all(menu=("Kernel", "Restart Kernel and Run All Cells…"))
        uikit.screenshot(lab.driver, f"lab-04-restart-run-all-{attempt}")
        assert problems_after_run(state) == []
        texts.append([_text_of(cell) for cell in state["cells"] if cell["type"] == "code"])
    differing = [number for number, (first, second) in enumerate(zip(*texts)) if first != second]
    assert differing == [], f"code cells (by position) whose text changed between two runs: {differing}"


def _text_of(cell: dict) -> str:
    """The text a cell printed or returned (widget pictures and progress bars left out)."""
    return "".join(
        _joined(output.get("text", "")) + _joined(output.get("data", {}).get("text/plain", ""))
        for output in cell["outputs"]
    )


def _joined(text: str | list[str]) -> str:
    return text if isinstance(text, str) else "".join(text)
