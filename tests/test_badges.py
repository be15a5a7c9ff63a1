"""scripts/badges.py: the Open-in links and the install cell come from one setting, and the cell installs the
course package without touching torch.

The install cell is tried as a hosted runtime meets it, in a fresh virtual environment with a stand-in
torch and torchvision (small wheels this test builds, so nothing is downloaded) and a local stand-in for
the public source. The real package in a Colab-shaped environment is `make test-matrix MATRIX=newest`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import badges  # noqa: E402

LESSONS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
FORK = "https://github.com/a-fork/pytorch-workflow"


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def generated(path: Path, role: str) -> dict:
    (cell,) = [c for c in cells(path) if c["metadata"].get(badges.MARK) == role]
    return cell


def test_every_lesson_and_the_readme_are_what_make_badges_writes(capsys):
    assert badges.badges_cli(["--check"]) == 0, capsys.readouterr().err


def test_the_links_and_install_cells_follow_the_title_and_stay_out_of_the_decks():
    for path in LESSONS:
        roles = [c["metadata"].get(badges.MARK) for c in cells(path)[:3]]
        assert roles == [None, badges.LINKS, badges.INSTALL], path.name
        install = generated(path, badges.INSTALL)
        assert install["outputs"] == [], (
            f"{path.name}: the install cell printed something where the package is installed"
        )
        for role in (badges.LINKS, badges.INSTALL):
            assert generated(path, role)["metadata"]["slideshow"] == {"slide_type": "skip"}
        assert all(len(line) <= 88 for line in "".join(install["source"]).splitlines()), path.name


def project_copy(tmp_path: Path, source: str) -> Path:
    """The files the generator reads and writes, with ``source`` as [project.urls] Source."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    for path in LESSONS:
        shutil.copy(path, root / "notebooks" / path.name)
    shutil.copy(ROOT / "README.md", root / "README.md")
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    text = re.sub(r"\n\[project\.urls\]\n(?:[^\[\n].*\n)*", "\n", text)  # the repository's own setting, if any
    text = text.replace(
        "\n[project.optional-dependencies]", f'\n[project.urls]\nSource = "{source}"\n\n[project.optional-dependencies]'
    )
    (root / "pyproject.toml").write_text(text, encoding="utf-8")
    return root


def test_a_fork_that_sets_its_address_gets_its_own_links_and_source(tmp_path, capsys):
    root = project_copy(tmp_path, FORK)
    assert badges.badges_cli([], root=root) == 0
    names = [path.name for path in LESSONS]
    for name in names:
        links = "".join(generated(root / "notebooks" / name, badges.LINKS)["source"])
        for host in (
            "colab.research.google.com/github/",
            "kaggle.com/kernels/welcome?src=https://github.com/",
            "studiolab.sagemaker.aws/import/github/",
        ):
            assert f"{host}a-fork/pytorch-workflow/blob/main/notebooks/{name})" in links, (name, host)
        install = "".join(generated(root / "notebooks" / name, badges.INSTALL)["source"])
        assert 'SOURCE = "git+https://github.com/a-fork/pytorch-workflow@main"' in install
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme.partition(badges.START)[2].partition(badges.END)[0]
    assert [row.count("a-fork/pytorch-workflow") for row in table.strip().splitlines()[2:]] == [3] * len(names)
    capsys.readouterr()
    assert badges.badges_cli([], root=root) == 0 and capsys.readouterr().out == "", "a second run rewrote files"
    assert badges.badges_cli(["--check"], root=root) == 0

    moved = root / "pyproject.toml"
    moved.write_text(moved.read_text(encoding="utf-8").replace("a-fork", "another-fork"), encoding="utf-8")
    assert badges.badges_cli(["--check"], root=root) == 1
    drifted = capsys.readouterr().err.splitlines()
    assert len(drifted) == len(names) + 1 and all("run it" in line for line in drifted)


def test_without_an_address_no_link_is_invented_and_make_badges_says_which_setting(tmp_path, capsys):
    root = project_copy(tmp_path, FORK)
    assert badges.badges_cli([], root=root) == 0
    empty = root / "pyproject.toml"
    empty.write_text(empty.read_text(encoding="utf-8").replace(FORK, ""), encoding="utf-8")
    capsys.readouterr()
    assert badges.badges_cli([], root=root) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert "Source under [project.urls] in pyproject.toml is empty" in line
    for path in (root / "notebooks").glob("*.ipynb"):
        assert "](" not in "".join(generated(path, badges.LINKS)["source"]), "a link in the no-address form"
        assert 'SOURCE = ""' in "".join(generated(path, badges.INSTALL)["source"])
    block = (root / "README.md").read_text(encoding="utf-8").partition(badges.START)[2].partition(badges.END)[0]
    assert "](" not in block and "OWNER/NAME" in block, "the README says how to set it and links nowhere"


@pytest.mark.parametrize("url", ["https://gitlab.com/a/b", "github.com/a/b", "https://github.com/a"])
def test_an_address_hosted_runtimes_cannot_open_is_refused_in_one_line(url):
    with pytest.raises(SystemExit) as refused:
        badges.github_repo(url)
    assert "must read https://github.com/OWNER/NAME" in str(refused.value) and "\n" not in str(refused.value)


# --- the install cell, run as a hosted runtime runs it ---------------------------------------------------------


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel holding one module ``name`` that records its version."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}".format(
            name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)
        ),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test_badges\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }

    def digest(text: str) -> str:
        raw = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        return f"sha256={raw},{len(text.encode())}"

    record = "".join(f"{path},{digest(text)}\n" for path, text in files.items()) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, text in {**files, f"{info}/RECORD": record}.items():
            zf.writestr(member, text)
    return path


@pytest.fixture
def runtime(tmp_path):
    """A fresh environment shaped like a hosted runtime: pip, a stand-in torch 2.9.0 and torchvision 0.24.0,
    no workflow_utils; pip may read only a local folder of wheels."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    env_dir = tmp_path / "runtime"
    venv.create(env_dir, with_pip=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHON"))}
    environ.update(
        PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), PIP_DISABLE_PIP_VERSION_CHECK="1"
    )

    def pip(*args: str) -> None:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True, env=environ)

    def run_cell(source: str, before: str = "") -> subprocess.CompletedProcess:
        code = before + "\n" + badges.install_cell_text(None)  # every lesson's cell, as stored (drift test above)
        return subprocess.run(
            [str(python), "-c", code],
            env={**environ, "WORKFLOW_UTILS_SOURCE": source},
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )

    def version(name: str) -> str:
        probe = f"from importlib import metadata\ntry: print(metadata.version({name!r}))\nexcept Exception: print('missing')"
        found = subprocess.run([str(python), "-c", probe], env=environ, capture_output=True, text=True, cwd=tmp_path)
        return found.stdout.strip()

    return {"wheels": wheels, "pip": pip, "run_cell": run_cell, "version": version}


def test_the_install_cell_installs_the_package_once_and_leaves_torch_alone(runtime):
    wheels, pip, run_cell, version = (runtime[k] for k in ("wheels", "pip", "run_cell", "version"))
    for name, old, new in (("torch", "2.9.0", "2.99.0"), ("torchvision", "0.24.0", "0.99.0")):
        wheel(wheels, name, old)
        wheel(wheels, name, new)  # a newer release on the index: pip must not take it
    pip("torch==2.9.0", "torchvision==0.24.0")
    stand_in = wheel(wheels.parent, "workflow_utils", "0.1.0", ("torch>=2.8", "torchvision>=0.23"))
    first = run_cell(str(stand_in))
    assert (first.returncode, first.stdout, first.stderr) == (0, "", "")
    assert version("workflow_utils") == "0.1.0"
    assert (version("torch"), version("torchvision")) == ("2.9.0", "0.24.0")
    again = run_cell("/nowhere/else")  # installed now: the cell does nothing, not even look at the source
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_a_package_that_would_change_torch_is_refused_and_torch_stays(runtime):
    wheels, pip, run_cell, version = (runtime[k] for k in ("wheels", "pip", "run_cell", "version"))
    wheel(wheels, "torch", "2.9.0")
    wheel(wheels, "torch", "3.0.0")
    wheel(wheels, "torchvision", "0.24.0")
    pip("torch==2.9.0", "torchvision==0.24.0")
    stand_in = wheel(wheels.parent, "workflow_utils", "0.1.0", ("torch>=3",))
    result = run_cell(str(stand_in))
    assert result.returncode == 1 and "pip could not install workflow_utils beside torch==2.9.0;" in result.stderr
    assert "Internet" not in result.stderr, "a conflict is not a lost connection"
    assert "torch" in result.stderr.partition("\n")[2], "pip's own reason, naming torch, follows"
    assert (version("torch"), version("workflow_utils")) == ("2.9.0", "missing")


def test_without_torch_the_cell_says_to_install_pytorch_first(runtime):
    stand_in = wheel(runtime["wheels"].parent, "workflow_utils", "0.1.0", ("torch>=2.8",))
    result = runtime["run_cell"](str(stand_in))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "this runtime lacks torch and torchvision: install PyTorch first (pytorch.org), then run this cell again"
    )
    assert runtime["version"]("workflow_utils") == "missing"


def test_without_a_source_the_cell_says_how_to_get_one(runtime):
    result = runtime["run_cell"]("")
    assert result.returncode == 1
    assert "names no source for it: install it as the README says" in result.stderr


def test_the_cell_asks_for_a_restart_when_pip_changed_a_loaded_package(runtime):
    wheels, pip, run_cell, version = (runtime[k] for k in ("wheels", "pip", "run_cell", "version"))
    for name, number in (("torch", "2.9.0"), ("torchvision", "0.24.0"), ("chatty", "1.0"), ("chatty", "2.0")):
        wheel(wheels, name, number)
    pip("torch==2.9.0", "torchvision==0.24.0", "chatty==1.0")
    stand_in = wheel(wheels.parent, "workflow_utils", "0.1.0", ("torch", "chatty>=2"))
    result = run_cell(str(stand_in), before="import chatty")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Installed; pip also changed chatty, which this kernel had loaded: restart")
    assert (version("chatty"), version("torch")) == ("2.0", "2.9.0")
