"""Every lesson notebook in JupyterLab, in headless Chromium, as a student meets it.

Each notebook opens unmodified, runs with Run All, and ends with no error output (except cells
tagged ``raises-exception``), no widget that failed to load and no SEVERE console message. The
widgets are then used with the mouse and keyboard: the learning-rate slider (03), the stepper
buttons (04), the live loss plot (04, 07). Screenshots go to build/ui/.
"""

from __future__ import annotations

import json
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


# Code cells JupyterLab does not trust in the open notebook: their widgets and HTML are not shown.
UNTRUSTED_JS = """
const cells = window.jupyterapp.shell.currentWidget.content.widgets;
return cells.filter(c => c.model.type === 'code' && !c.model.trusted).length;
"""
# Every picture in the notebook's outputs (cells scrolled out of view included), the live widgets' among them, and
# those without alt text, which axe's image-alt rule reports; and how many of them are live widget pictures.
UNNAMED_IMAGES_JS = """
const cells = window.jupyterapp.shell.currentWidget.content.widgets;
const images = cells.flatMap(c => [...c.node.querySelectorAll('.jp-OutputArea img')]);
return [images.length, images.filter(img => !(img.getAttribute('alt') || '').trim()).map(img => img.src.slice(0, 40)),
        images.filter(img => img.closest('.jupyter-widgets')).length];
"""
# The live widget pictures each lesson shows after Run All: 03's explorer, 04's and 07's live loss plots.
LIVE_PICTURES = {"03_loss_and_optimizer.ipynb": 1, "04_training_loop.ipynb": 1, "07_putting_it_all_together.ipynb": 1}
IMAGE_ALT_ONLY = {"runOnly": {"type": "rule", "values": ["image-alt"]}, "preload": False}
CODE_CELLS_JS = """
return window.jupyterapp.shell.currentWidget.content.widgets.filter(c => c.model.type === 'code').length;
"""


def cell_images(lab: uikit.LabPage, source: str) -> list[dict]:
    """The images in the outputs of the cell whose source contains ``source``."""
    index = lab.find_cell(source)
    found = uikit.wait_for(lambda: (images := lab.in_cell(index, IMAGES_JS)) is not None and [images], 10, source)
    return found[0]


@pytest.mark.parametrize("name", LESSONS)
def test_notebook_opens_clean_and_runs_all_without_errors(lab, name):
    lab.open(name)
    time.sleep(1)  # JupyterLab writes kernel details into the notebook as the kernel starts: give it time
    uikit.screenshot(lab.driver, f"lab-{_stem(name)}-1-opened")
    # The notebooks store each widget as its picture or table (scripts/store_outputs.py), with no widget models for
    # ipywidgets' manager to restore (restoring marks a notebook modified): one not yet changed is not modified,
    # so closing it asks nothing.
    assert not lab.state()["dirty"], f"{name} is marked modified right after opening, before any cell ran"
    assert broken_images(lab) == []
    assert [failure for failure in (*WIDGET_FAILURES, "model not found") if failure in lab.page_text()] == []
    assert "Jupyter news" not in lab.page_text(), (
        "JupyterLab asks about Jupyter news (lab-settings/overrides.json not applied)"
    )
    untrusted = lab.driver.execute_script(UNTRUSTED_JS)
    assert untrusted == 0, f"{name} opened with {untrusted} untrusted code cells: widgets would show Python text"
    state = lab.run_all()
    uikit.screenshot(lab.driver, f"lab-{_stem(name)}-2-ran")
    assert problems_after_run(state) == []
    text = lab.page_text()
    assert [failure for failure in WIDGET_FAILURES if failure in text] == []
    assert broken_images(lab) == []
    count, unnamed, live = lab.driver.execute_script(UNNAMED_IMAGES_JS)
    assert live == LIVE_PICTURES.get(name, 0), f"{name}: {live} live widget pictures after Run All"
    stored = json.loads((uikit.ROOT / "notebooks" / name).read_text(encoding="utf-8"))["cells"]
    figures = sum(
        "described-figure" in "".join(o.get("data", {}).get("text/html", "")) and "widget" not in o.get("metadata", {})
        for c in stored
        for o in c.get("outputs", [])
    )
    assert count >= figures, f"{name}: {count} pictures found after Run All, {figures} figures stored"
    assert unnamed == [], f"{name}: {len(unnamed)} of {count} pictures have no alt text for a screen reader"
    violations = [v for v in uikit.axe_violations(lab.driver, options=IMAGE_ALT_ONLY) if v["id"] == "image-alt"]
    assert violations == [], uikit.describe_violations(violations)
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


def contrast(first: str, second: str) -> float:
    """WCAG's contrast ratio of two CSS colours given as ``rgb(r, g, b)`` or ``rgba(r, g, b, a)``."""

    def luminance(css: str) -> float:
        channels = [int(v) / 255 for v in re.findall(r"[\d.]+", css)[:3]]
        r, g, b = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.notebook(EXPLORER)
def test_moving_the_learning_rate_slider_redraws_the_picture(lab):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    lab.ran(EXPLORER)
    node = lab.cell_node(lab.find_cell("LearningRateExplorer(X_train"))
    readout = node.find_element(By.CSS_SELECTOR, ".widget-readout")

    def picture():  # each redraw puts a new <img> (with its own alt text) in the widget: find it again
        return node.find_element(By.CSS_SELECTOR, "img.widget-picture")

    before_src, before_pixels = picture().get_attribute("src"), picture().screenshot_as_png
    assert "L1 loss, lr=0.0100" in picture().get_attribute("alt")
    assert readout.text == "0.0100"
    handle = node.find_element(By.CSS_SELECTOR, ".noUi-handle")
    idle = contrast(handle.value_of_css_property("background-color"), "rgb(255, 255, 255)")
    assert idle >= 3, f"the slider's idle handle is {idle:.1f}:1 against the white page (WCAG asks 3:1 for controls)"
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)  # one step of 0.25 on the log10 scale
    uikit.wait_for(
        lambda: picture().get_attribute("src") != before_src, 60, "the explorer to redraw after the slider moved"
    )
    uikit.screenshot(lab.driver, "lab-03-explorer-after-slider", show=node)
    assert readout.text == "0.0178"
    assert picture().screenshot_as_png != before_pixels, "the slider moved but the picture stayed the same"
    assert "L1 loss, lr=0.0178" in picture().get_attribute("alt"), "the alt text did not follow the picture"
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


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
def test_stored_widgets_show_their_pictures_before_any_cell_runs(lab, trusted):
    """Opened fresh, 04 shows its stored live plot and stepper table as pictures, not "LiveLossPlot(every=4)".
    Untrusted (a copy the project's set-up never trusted, as trust does not apply on Colab or Kaggle), the
    picture and the table still show: JupyterLab shows a PNG, and HTML with its scripts and styles removed,
    without trust."""
    # a fresh copy of the lesson as shipped: the server's own 04 may have been run and autosaved by other tests
    name = f"{'trusted' if trusted else 'untrusted'}_copy_of_04.ipynb"
    copy = nbformat.read(uikit.ROOT / "notebooks" / TRAINING, as_version=4)
    if not trusted:
        copy.metadata["copied_by"] = "test_lab"  # trust goes by content: an identical copy is trusted
    nbformat.write(copy, lab.server.root / name)
    lab.open(name)
    assert lab.driver.execute_script(UNTRUSTED_JS) == (0 if trusted else lab.driver.execute_script(CODE_CELLS_JS))
    images = cell_images(lab, "live_plot = LiveLossPlot(every=4)")
    uikit.screenshot(lab.driver, f"lab-04-stored-live-plot-{'trusted' if trusted else 'untrusted'}")
    assert len(images) == 1
    assert_shown_at_drawn_size(images[0], "04's stored live plot")
    stepper = lab.in_cell(
        lab.find_cell("TrainingStepper(stepper_model"),
        "return arguments[0].querySelector('.jp-Cell-outputWrapper').innerText",
    )
    assert "Run the cell for the buttons" in stepper and "TrainingStepper(steps=" not in stepper
    assert [failure for failure in (*WIDGET_FAILURES, "model not found") if failure in lab.page_text()] == []
    assert not lab.state()["dirty"]


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


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.mark.notebook(EXPLORER)
def test_reopened_notebook_shows_its_widgets_not_model_not_found(lab):
    """Saved, closed and reopened (a new kernel): the explorer shows its last picture, not an error.

    JupyterLab saves widget state only with lab-settings/overrides.json's ``saveState``; without it
    the reopened notebook says "Error displaying widget: model not found".
    """
    state = lab.ran(EXPLORER)
    shown = lab.find_cell("LearningRateExplorer(X_train")
    (view,) = [
        output["data"][WIDGET_VIEW]
        for output in state["cells"][shown]["outputs"]
        if WIDGET_VIEW in output.get("data", {})
    ]
    lab.menu("File", "Save Notebook")
    uikit.wait_for(lambda: not lab.state()["dirty"], 30, f"{EXPLORER} to be saved")
    saved = nbformat.read(lab.server.root / EXPLORER, as_version=4)
    models = saved.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    lab.menu("File", "Close Tab")
    uikit.wait_for(lambda: lab.state() is None, 30, f"the {EXPLORER} tab to close")
    lab.open(EXPLORER)  # a fresh page and a new kernel, as the next morning

    def settled():  # a widget view that renders shows its picture; a failed one says so in text
        text = lab.page_text()
        failed = [failure for failure in ("Error displaying widget", "model not found") if failure in text]
        images = lab.in_cell(shown, IMAGES_JS)
        return failed or [image for image in images or [] if image["loaded"]]

    uikit.wait_for(settled, 60, "the reopened explorer to show its picture or an error")
    time.sleep(1)
    node = lab.cell_node(shown)
    uikit.screenshot(lab.driver, "lab-03-reopened-explorer", show=node)
    text = lab.page_text()
    assert [failure for failure in (*WIDGET_FAILURES, "model not found") if failure in text] == []
    (image,) = lab.driver.execute_script(IMAGES_JS, node)
    assert_shown_at_drawn_size(image, "the reopened explorer's last picture")
    assert broken_images(lab) == []
    assert view["model_id"] in models, "the saved notebook lacks the state of the explorer this run showed"


@pytest.fixture
def small_screen(lab):
    """The shared Chromium as a 1280 x 720 projector for one test (``lab.zoom``: the page zoom), then back."""
    size = lab.driver.execute_script("return [window.innerWidth, window.innerHeight]")

    def zoom(factor: float) -> None:  # Ctrl + in a 1280 x 720 window: fewer, larger CSS pixels
        lab.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": round(1280 / factor),
                "height": round(720 / factor),
                "deviceScaleFactor": factor,
                "mobile": False,
            },
        )

    lab.zoom = zoom
    zoom(1)
    yield lab
    lab.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False},
    )
    lab.driver.execute_script("window.jupyterapp.shell.presentationMode = false")


# What a projector shows of one cell: its code box (needed vs shown width) and the notebook's visible height.
CELL_FIT_JS = """
const nb = window.jupyterapp.shell.currentWidget.content, cell = nb.widgets[arguments[0]].node;
const code = cell.querySelector('.jp-InputArea-editor .cm-scroller');
const wide = [...cell.querySelectorAll('.jp-OutputArea *')].filter(
  e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible');
return {code: [code.scrollWidth, code.clientWidth], wideOutputs: wide.map(e => e.className.toString()),
        visible: nb.node.clientHeight, window: window.innerHeight};
"""


@pytest.mark.notebook(TRAINING)
@pytest.mark.parametrize(
    ("presenting", "zoom"), [(False, 1), (True, 1), (True, 1.25)], ids=["plain", "presenting", "presenting-zoom125"]
)
def test_at_1280x720_the_stepper_fits_and_the_live_plot_fits(small_screen, presenting, zoom):
    """A 1280 x 720 projector, file browser open: no sideways scrolling in the stepper, and the live
    plot (with its progress bar) fits the notebook's visible height, in Presentation Mode and at 125 %
    zoom (two presses of Ctrl +) too. Long code lines wrap (lab-settings/overrides.json)."""
    lab = small_screen
    lab.ran(TRAINING)
    lab.zoom(zoom)
    lab.driver.execute_script("window.jupyterapp.shell.presentationMode = arguments[0]", presenting)
    mode = ("presenting" if presenting else "plain") + f"-zoom{round(zoom * 100)}"
    stepper = lab.find_cell("TrainingStepper(stepper_model")
    time.sleep(1)  # Presentation Mode changes font sizes: let the editor measure itself again
    fit = lab.driver.execute_script(CELL_FIT_JS, stepper)
    uikit.screenshot(lab.driver, f"lab-04-1280x720-{mode}-stepper", show=lab.cell_node(stepper))
    problems = []  # every misfit at once, so one run shows them all
    needed, shown = fit["code"]
    if needed > shown:
        problems.append(f"the stepper's code needs {needed} px but its box is {shown} px: it scrolls sideways")
    if fit["wideOutputs"]:
        problems.append(f"the stepper's buttons or table scroll sideways: {fit['wideOutputs']}")
    live = lab.find_cell("live_plot = LiveLossPlot(every=4)")
    node = lab.cell_node(live)
    (image,) = lab.driver.execute_script(IMAGES_JS, node)
    heights = lab.driver.execute_script(
        "const bar = arguments[0].querySelector('.widget-hprogress, progress');"
        "return [bar && bar.getBoundingClientRect().height,"
        "        arguments[0].querySelector('.jp-Cell-outputArea').getBoundingClientRect().height]",
        node,
    )
    fit = lab.driver.execute_script(CELL_FIT_JS, live)
    uikit.screenshot(lab.driver, f"lab-04-1280x720-{mode}-live-plot", show=node)
    height, (bar, outputs), visible = image["shown"][1], heights, fit["visible"]
    assert bar, "no progress bar under the live plot"
    if height > fit["window"]:
        problems.append(f"the live plot is {height:.0f} px tall, the window {fit['window']} px")
    if height + bar > visible:  # the plot and the progress bar, watched together as it trains
        problems.append(
            f"the live plot ({height:.0f} px) and its progress bar ({bar:.0f} px) need more than the "
            f"{visible} px of notebook the screen shows (all outputs: {outputs:.0f} px)"
        )
    assert problems == []


def test_view_appearance_menu_has_the_presenting_entries_the_readme_names(lab):
    """README's "Presenting live in JupyterLab" names these entries: they must be where it says."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    lab.open(EXPLORER)
    lab.menu("View", "Appearance")
    items = "//ul[contains(@class,'lm-Menu-content')]/li[contains(@class,'lm-Menu-item')]"

    def entries():
        found = {}
        for item in lab.driver.find_elements(By.XPATH, items):
            label = item.find_element(By.CSS_SELECTOR, ".lm-Menu-itemLabel").text
            if label:
                shortcut = item.find_element(By.CSS_SELECTOR, ".lm-Menu-itemShortcut").text
                found[label] = (shortcut, item.get_attribute("aria-checked"))
        return found if "Presentation Mode" in found else None

    found = uikit.wait_for(entries, 10, "the View > Appearance submenu")
    uikit.screenshot(lab.driver, "lab-view-appearance-menu")
    ActionChains(lab.driver).send_keys(Keys.ESCAPE).send_keys(Keys.ESCAPE).perform()
    uikit.wait_for(lambda: not lab.driver.find_elements(By.CSS_SELECTOR, ".lm-Menu"), 10, "the menus to close")
    left_collapsed = "return window.jupyterapp.shell.leftCollapsed"
    assert lab.driver.execute_script(left_collapsed) is False  # the file browser is open
    lab.driver.find_element(By.CSS_SELECTOR, ".jp-Notebook").click()
    ActionChains(lab.driver).key_down(Keys.CONTROL).send_keys("b").key_up(Keys.CONTROL).perform()
    uikit.wait_for(lambda: lab.driver.execute_script(left_collapsed), 10, "Ctrl+B to hide the file browser")
    uikit.screenshot(lab.driver, "lab-ctrl-b-hides-the-file-browser")
    assert found["Presentation Mode"][0] == ""
    assert found["Simple Interface"][0] == "Ctrl+Shift+D"
    assert found["Show Left Sidebar"] == ("Ctrl+B", "true")  # the file browser is open until toggled off
    readme = (uikit.ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**Presenting live in JupyterLab.**") :].split("\n\n")[0]
    for entry in (
        "View → Appearance",
        "Presentation",
        "Simple Interface",
        "Ctrl+Shift+D",
        "Show Left Sidebar",
        "Ctrl+B",
    ):
        assert entry in section, f"README's presenting steps do not name {entry!r}"


# One rendered notes cell: whether its <details> is there and open, and what of it is on screen.
NOTES_CELL_JS = """
const box = arguments[0].querySelector('.jp-RenderedMarkdown details.instructor-notes');
if (!box) return null;
const shown = el => el.checkVisibility();
return {open: box.open, summary: shown(box.querySelector('summary')),
        body: [...box.children].filter(c => c.tagName !== 'SUMMARY').some(shown)};
"""


def test_instructor_notes_stay_folded_until_a_student_opens_one(lab):
    """A student reading top to bottom meets no instructor note unless they open it: every notes cell
    renders as a closed box showing only its summary, and clicking the summary opens that box."""
    name = "01_data.ipynb"
    cells = nbformat.read(uikit.ROOT / "notebooks" / name, as_version=4).cells
    notes = [i for i, c in enumerate(cells) if c.metadata.get("slideshow", {}).get("slide_type") == "notes"]
    assert len(notes) >= 5
    lab.open(name)
    for index in notes:
        seen = uikit.wait_for(lambda i=index: lab.in_cell(i, NOTES_CELL_JS), 20, f"notes cell {index}")
        assert seen == {"open": False, "summary": True, "body": False}, f"cell {index}: {seen}"
    lab.click_in_cell(notes[0], "details.instructor-notes > summary")
    opened = uikit.wait_for(
        lambda: (s := lab.in_cell(notes[0], NOTES_CELL_JS)) and s["open"] and s, 10, "the box to open"
    )
    assert opened == {"open": True, "summary": True, "body": True}
    uikit.screenshot(lab.driver, "lab-01_data-notes-opened")
