"""The notebooks under real use, each checked against the text outputs stored in notebooks/*.ipynb.

- a fresh clone, run in reverse order (07 first ... 00 last), so no notebook relies on files an
  earlier one wrote, with the network blocked for every kernel;
- the whole set again in the same folder (generated data and models now exist and are reused),
  giving outputs identical to the first run (determinism);
- two notebooks that both build the digits data, run at the same time in one fresh folder;
- 08 in the environment `make lab` gives a kernel (no OMP_NUM_THREADS: every core's thread).

The series runs about 2.3 times in all (a few minutes on a 2-core laptop).
"""

from __future__ import annotations

import asyncio
import textwrap

import nbformat
import nbrun
import pytest

REVERSED = list(reversed(nbrun.NOTEBOOKS))


def _report(problems: list[str]) -> str:
    return "\n".join(problems)


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    return nbrun.offline_env(tmp_path_factory.mktemp("offline"))


def test_network_block_is_active(offline, tmp_path):
    """A kernel started with the offline environment refuses the internet at once, but not loopback."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            textwrap.dedent("""\
        import socket, time, urllib.request
        start = time.monotonic()
        for attempt in (lambda: socket.create_connection(("203.0.113.1", 80), timeout=10),
                        lambda: socket.socket().connect(("203.0.113.1", 80)),
                        lambda: socket.socket().connect_ex(("203.0.113.1", 80)),
                        lambda: urllib.request.urlopen("http://example.com", timeout=10)):
            try:
                attempt()
                print("CONNECTED")
            except OSError as err:
                print("refused:", "network access blocked" in str(err))
        print("fast:", time.monotonic() - start < 2)
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        socket.create_connection(server.getsockname(), timeout=5).close()
        print("loopback open")
        """)
        )
    )
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    executed, _ = nbrun.run(path.name, tmp_path, offline)
    assert executed.cells[0].outputs[0].text == "refused: True\n" * 4 + "fast: True\nloopback open\n"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, offline):
    """Every notebook once, newest first, in one fresh folder, offline."""
    folder = nbrun.fresh_folder(tmp_path_factory.mktemp("series"))
    assert not (folder / "data").exists() and not (folder / "models").exists()
    results, problems = nbrun.run_series(REVERSED, folder, offline)
    print("first run:", {name: round(seconds, 1) for name, (_, seconds) in results.items()})
    return folder, results, problems


def test_fresh_clone_in_reverse_order_offline_matches_stored_outputs(first_run):
    _, results, problems = first_run
    assert not problems, _report(problems)
    assert list(results) == REVERSED


def test_second_run_reuses_files_and_repeats_every_output(first_run, offline):
    folder, first, first_problems = first_run
    if first_problems:
        pytest.skip("the first run failed; see the test above")
    manifest = folder / "data" / "digits" / "manifest.json"
    assert manifest.is_file(), "the first run should have written the digits data"
    written = manifest.stat().st_mtime_ns
    second, problems = nbrun.run_series(REVERSED, folder, offline)
    print("second run:", {name: round(seconds, 1) for name, (_, seconds) in second.items()})
    assert not problems, _report(problems)
    assert manifest.stat().st_mtime_ns == written, "the digits data should be reused, not rebuilt"
    for name in REVERSED:  # determinism: unsanitized text identical between the two runs
        assert nbrun.text_outputs(second[name][0], sanitize=False) == nbrun.text_outputs(
            first[name][0], sanitize=False
        ), name


def test_two_notebooks_at_once_share_a_fresh_folder(tmp_path):
    """01_data and 07 both build data/digits from nothing at the same time, and both must come out right."""
    pair = ["01_data.ipynb", "07_putting_it_all_together.ipynb"]
    assert all(name in nbrun.NOTEBOOKS for name in pair)
    folder = nbrun.fresh_folder(tmp_path)

    async def both():
        return await asyncio.gather(*(nbrun.run_async(name, folder) for name in pair))

    results = asyncio.run(both())
    print("two at once:", {name: round(seconds, 1) for name, (_, seconds) in zip(pair, results)})
    problems = [p for name, (nb, _) in zip(pair, results) for p in nbrun.differences(name, nb, folder)]
    assert not problems, _report(problems)
    leftovers = [p.name for p in (folder / "data").iterdir() if p.name != "digits"]
    assert not leftovers, f"temporary folders left behind: {leftovers}"


# 08 under JupyterLab's environment (no OMP_NUM_THREADS: every thread) is `make test-kernels every-core`, which
# runs every notebook that way; a copy here ran 08 a second time for nothing.
