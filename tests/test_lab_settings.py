"""scripts/install_lab_settings.py: the JupyterLab defaults land where JupyterLab reads them, on any platform."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install_lab_settings.py"
OVERRIDES = ROOT / "lab-settings" / "overrides.json"
WIDGETS_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"


def test_overrides_save_widget_state_and_skip_the_news():
    settings = json.loads(OVERRIDES.read_text(encoding="utf-8"))
    assert settings[WIDGETS_PLUGIN] == {"saveState": True}  # reopened notebooks show their widgets
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    # long code lines wrap instead of scrolling sideways on a 1280 x 720 projector (tests/ui/test_lab.py)
    assert settings["@jupyterlab/notebook-extension:tracker"]["codeCellConfig"] == {
        "lineNumbers": False,
        "lineWrap": True,
    }


def test_the_widget_setting_exists_in_the_installed_extension():
    """A misspelt plugin id or setting would be ignored by JupyterLab without a word."""
    schema = Path(sys.prefix, "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager/schemas")
    schema = schema / "@jupyter-widgets/jupyterlab-manager/plugin.json"
    if not schema.is_file():
        pytest.skip(f"{schema} not found: jupyterlab_widgets is not installed here")
    properties = json.loads(schema.read_text(encoding="utf-8"))["properties"]
    assert properties["saveState"]["type"] == "boolean"
    notebook = Path(sys.prefix, "share/jupyter/lab/schemas/@jupyterlab/notebook-extension/tracker.json")
    default = json.loads(notebook.read_text(encoding="utf-8"))["properties"]["codeCellConfig"]["default"]
    assert set(default) == {"lineNumbers", "lineWrap"}  # ours replaces this whole object: keep every key


def test_the_script_copies_the_file_into_a_new_prefix(tmp_path):
    prefix = tmp_path / "env with space"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--prefix", str(prefix)], capture_output=True, text=True, check=True
    )
    installed = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert installed.read_bytes() == OVERRIDES.read_bytes()
    assert result.stdout.strip() == f"JupyterLab settings installed: {installed}"


def test_the_script_replaces_an_older_copy(tmp_path):
    installed = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    installed.parent.mkdir(parents=True)
    installed.write_text("{}")
    subprocess.run([sys.executable, str(SCRIPT), "--prefix", str(tmp_path)], capture_output=True, check=True)
    assert json.loads(installed.read_text(encoding="utf-8"))[WIDGETS_PLUGIN] == {"saveState": True}


def test_invalid_json_is_refused_in_one_line(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import install_lab_settings
    finally:
        sys.path.remove(str(SCRIPT.parent))
    broken = tmp_path / "overrides.json"
    broken.write_text('{"a": 1,}')
    with pytest.raises(ValueError, match="is not valid JSON"):
        install_lab_settings.install_overrides(tmp_path / "env", source=broken)
    assert not (tmp_path / "env").exists()
