import json
import os
import shutil
import time
import warnings

import pytest
import torch

from workflow_utils.data import make_line_data, split_data


def test_make_line_data_shapes_and_values():
    X, y = make_line_data(weight=0.7, bias=0.3)
    assert X.shape == (50, 1) and y.shape == (50, 1)
    assert torch.allclose(y, 0.7 * X + 0.3)


def test_split_data_is_ordered_80_20():
    X, y = make_line_data()
    X_train, y_train, X_test, y_test = split_data(X, y, 0.8)
    assert (len(X_train), len(X_test)) == (40, 10)
    assert torch.equal(torch.cat([X_train, X_test]), X)
    assert torch.equal(torch.cat([y_train, y_test]), y)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_split_data_rejects_bad_fractions(fraction):
    X, y = make_line_data()
    with pytest.raises(ValueError, match="train_fraction"):
        split_data(X, y, fraction)


def test_split_data_rejects_unpaired_rows():
    X, y = make_line_data()
    with pytest.raises(ValueError, match="pair up"):
        split_data(X, y[:-1])


def test_make_line_data_rejects_non_positive_step():
    with pytest.raises(ValueError, match="step must be positive"):
        make_line_data(step=0)


# --- digits ------------------------------------------------------------------------------------

from workflow_utils.data import (  # noqa: E402
    ShuffledBatches,
    TensorImageDataset,
    digits_split_indices,
    load_digits_data,
    make_loader,
    read_image_folder,
    write_digits_image_folder,
)


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    return write_digits_image_folder(tmp_path_factory.mktemp("d") / "digits")


@pytest.fixture
def small_digits(monkeypatch):
    """Trees of 10 images per split instead of 1797 in all, for tests that write trees again and again."""
    import workflow_utils.data as data

    full = data.digits_split_indices
    monkeypatch.setattr(data, "digits_split_indices", lambda seed=42: {k: v[:10] for k, v in full(seed).items()})


def test_split_is_stratified_70_15_15_and_disjoint():
    splits = digits_split_indices()
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 1257, "val": 270, "test": 270}
    all_idx = torch.tensor(sorted(i for v in splits.values() for i in v))
    assert torch.equal(all_idx, torch.arange(1797))


def test_image_folder_has_every_file_in_its_class_folder(digits_root):
    from sklearn.datasets import load_digits

    target = load_digits().target
    files = sorted(digits_root.glob("*/*/*.png"))
    assert len(files) == 1797
    assert all(int(f.parent.name) == target[int(f.stem)] for f in files)


def test_image_folder_is_reused_not_rewritten(digits_root):
    stamp = (digits_root / "manifest.json").stat().st_mtime_ns
    assert write_digits_image_folder(digits_root) == digits_root
    assert (digits_root / "manifest.json").stat().st_mtime_ns == stamp


def test_damaged_tree_of_ours_is_rebuilt(tmp_path):
    root = write_digits_image_folder(tmp_path / "digits")
    legacy = {"seed": 42, "counts": {"train": 1257, "val": 270, "test": 270}}  # the manifest older versions wrote
    (root / "manifest.json").write_text(json.dumps(legacy))
    next(root.glob("train/0/*.png")).unlink()
    write_digits_image_folder(root)
    assert len(list(root.glob("*/*/*.png"))) == 1797
    assert json.loads((root / "manifest.json").read_text())["counts"]["train"]["0"] == 124
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".digits.")]  # no temp folders left


def test_read_image_folder_round_trips_pixels(digits_root):
    from sklearn.datasets import load_digits

    images, labels = read_image_folder(digits_root, "test")
    assert images.shape == (270, 1, 8, 8) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    original = torch.tensor(load_digits().images[sorted(digits_split_indices()["test"])], dtype=torch.float32) / 16
    # files are sorted by class folder then index, so compare as sets of (label, image) rows
    assert torch.allclose(images.flatten(1).sum(1).sort().values, original.flatten(1).sum(1).sort().values, atol=0.05)
    assert torch.bincount(labels).tolist() == [27, 28, 26, 28, 27, 27, 27, 27, 26, 27]


def test_tensor_dataset_serves_one_item_or_a_batch():
    images, labels = torch.rand(10, 1, 8, 8), torch.arange(10)
    ds = TensorImageDataset(images, labels, transform=lambda b: b * 2)
    x, y = ds[3]
    assert x.shape == (1, 8, 8) and y == 3 and torch.equal(x, images[3] * 2)
    xb, yb = ds[[1, 4, 5]]
    assert xb.shape == (3, 1, 8, 8) and yb.tolist() == [1, 4, 5]


def test_shuffled_batches_depend_only_on_seed_and_epoch():
    a, b = ShuffledBatches(10, 4, shuffle=True, seed=1), ShuffledBatches(10, 4, shuffle=True, seed=1)
    first_a, second_a = list(a), list(a)  # passes move to the next epoch
    b.set_epoch(1)
    assert list(b) == second_a and first_a != second_a
    assert sorted(i for batch in first_a for i in batch) == list(range(10))
    assert [len(batch) for batch in first_a] == [4, 4, 2]
    assert list(ShuffledBatches(5, 2, shuffle=False)) == [[0, 1], [2, 3], [4]]


def test_make_loader_yields_whole_batches():
    ds = TensorImageDataset(torch.rand(130, 1, 8, 8), torch.arange(130) % 10)
    loader = make_loader(ds, batch_size=64, shuffle=False)
    shapes = [tuple(X.shape) for X, _ in loader]
    assert shapes == [(64, 1, 8, 8), (64, 1, 8, 8), (2, 1, 8, 8)] and len(loader) == 3


def test_load_digits_data_normalises_with_training_statistics(digits_root):
    data = load_digits_data(digits_root)
    train = data.train.dataset.images
    assert abs(train.mean().item()) < 1e-5 and abs(train.std().item() - 1) < 1e-4
    raw_train, _ = read_image_folder(digits_root, "train")
    assert torch.allclose(data.normalize(raw_train), train)
    assert isinstance(data.train.sampler, ShuffledBatches) and data.train.sampler.shuffle
    assert not data.val.sampler.shuffle and not data.test.sampler.shuffle


# --- never delete what the package did not write (issue 10, item 1) -----------------------------


def _user_folder(path):
    """A folder holding a user's own work."""
    (path / "results").mkdir(parents=True)
    (path / "notes.txt").write_text("my notes")
    (path / "results" / "run1.csv").write_text("epoch,loss\n0,1.0\n")
    return path


def _files(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def test_load_digits_data_refuses_a_folder_of_user_files(tmp_path):
    project = _user_folder(tmp_path / "my_project")
    with pytest.raises(FileExistsError, match=r"did not write .*pass an empty or new folder such as 'data/digits'"):
        load_digits_data(project)
    assert _files(project) == ["notes.txt", "results", "results/run1.csv"]
    assert (project / "notes.txt").read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_project"]  # no temp folder left beside it


def test_the_current_folder_is_refused_and_kept(tmp_path, monkeypatch):
    _user_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    for root in (".", "..", tmp_path):
        with pytest.raises(ValueError, match=r"must name a folder for the data itself.*try root='data/digits'"):
            write_digits_image_folder(root)
    assert _files(tmp_path) == ["notes.txt", "results", "results/run1.csv"]


def test_a_foreign_manifest_is_not_ours(tmp_path):
    folder = _user_folder(tmp_path / "experiment")
    (folder / "manifest.json").write_text(json.dumps({"run": 3, "seed": 42}))
    with pytest.raises(FileExistsError, match=r"no digits manifest\.json"):
        write_digits_image_folder(folder)
    assert "results/run1.csv" in _files(folder)


def test_a_tree_of_ours_with_a_user_file_inside_is_not_replaced(small_digits, tmp_path):
    root = write_digits_image_folder(tmp_path / "digits")
    (root / "train" / "my_drawing.png").write_bytes(b"mine")
    with pytest.raises(
        FileExistsError, match=r"holds train/my_drawing\.png, which write_digits_image_folder did not write"
    ):
        write_digits_image_folder(root, seed=1)  # another seed would replace the tree
    assert (root / "train" / "my_drawing.png").read_bytes() == b"mine"
    assert json.loads((root / "manifest.json").read_text())["seed"] == 42


def test_a_tree_of_another_seed_is_replaced(small_digits, tmp_path):
    root = write_digits_image_folder(tmp_path / "digits")
    (root / ".DS_Store").write_bytes(b"")  # what a file browser leaves behind does not block it
    write_digits_image_folder(root, seed=1)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["seed"] == 1 and sum(manifest["counts"]["test"].values()) == 10
    assert len(list(root.glob("*/*/*.png"))) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]


def test_an_empty_folder_is_filled(small_digits, tmp_path):
    (tmp_path / "digits").mkdir()
    root = write_digits_image_folder(tmp_path / "digits")
    assert len(list(root.glob("*/*/*.png"))) == 30


def test_a_file_at_the_root_path_gives_a_clear_error(tmp_path):
    (tmp_path / "digits").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=r"is a file, not a folder, so the digits cannot go there"):
        write_digits_image_folder(tmp_path / "digits")
    assert (tmp_path / "digits").read_text() == "not a folder"


def _symlink(link, target):
    try:
        link.symlink_to(target, target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("this system cannot create symbolic links")


def test_a_linked_root_is_written_through_the_link(small_digits, tmp_path):
    (tmp_path / "disk" / "digits").mkdir(parents=True)
    _symlink(tmp_path / "digits", tmp_path / "disk" / "digits")
    root = write_digits_image_folder(tmp_path / "digits")
    assert root == tmp_path / "digits" and root.is_symlink()
    assert len(list((tmp_path / "disk" / "digits").glob("*/*/*.png"))) == 30
    images, labels = read_image_folder(root, "val")
    assert images.shape == (10, 1, 8, 8) and len(labels) == 10


def test_a_link_to_nowhere_gives_a_clear_error(tmp_path):
    _symlink(tmp_path / "digits", tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match=r"is a link to .*gone, which does not exist"):
        write_digits_image_folder(tmp_path / "digits")


def _stale(folder, age_s=3600):
    past = time.time() - age_s
    os.utime(folder, (past, past))
    return folder


def test_temp_folders_of_killed_runs_are_removed_and_live_or_foreign_ones_kept(small_digits, tmp_path):
    # a tree renamed aside, then the run was killed; and a run killed half-way (some PNGs, no manifest)
    old_aside = write_digits_image_folder(tmp_path / ".digits.0123abcd-old")
    orphan = tmp_path / ".digits.k1ll3d00"
    shutil.copytree(old_aside / "test", orphan / "test")
    _stale(orphan), _stale(old_aside)
    live = tmp_path / ".digits.5ca1ab1e"  # another notebook writing right now
    (live / "train" / "0").mkdir(parents=True)
    foreign = _stale(_user_folder(tmp_path / ".digits.notes123"))  # looks like ours by name only
    write_digits_image_folder(tmp_path / "digits")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".digits.5ca1ab1e", ".digits.notes123", "digits"]
    assert "notes.txt" in _files(foreign)


def test_two_writers_at_once_both_get_the_tree(small_digits, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        roots = list(pool.map(write_digits_image_folder, [tmp_path / "digits"] * 2))
    assert roots == [tmp_path / "digits"] * 2
    assert len(list(roots[0].glob("*/*/*.png"))) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits"]


# --- untrusted images (issue 10, item 5) ----------------------------------------------------------


@pytest.fixture
def tree_copy(small_digits, tmp_path):
    return write_digits_image_folder(tmp_path / "digits")


def _one_file_of(root, split):
    """A PNG of ``split`` and how many files the manifest says its class folder holds."""
    victim = next(root.glob(f"{split}/*/*.png"))
    return victim, json.loads((root / "manifest.json").read_text())["counts"][split][victim.parent.name]


def _png(path, size=(8, 8), value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)
    return path


def test_an_eps_file_named_png_is_refused_without_running_ghostscript(tree_copy, monkeypatch):
    from PIL import EpsImagePlugin

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: pytest.fail("Ghostscript was started"))
    victim, _ = _one_file_of(tree_copy, "train")
    victim.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    with pytest.raises(
        ValueError, match=rf"{victim.name} is not a valid PNG image .*replace it with a PNG or remove it"
    ):
        read_image_folder(tree_copy, "train")


def test_a_truncated_png_is_refused(tree_copy):
    victim, _ = _one_file_of(tree_copy, "val")
    victim.write_bytes(victim.read_bytes()[:45])
    with pytest.raises(ValueError, match=r"not a valid PNG image \(another format, truncated or corrupt\)"):
        read_image_folder(tree_copy, "val")


def test_a_png_of_another_size_is_refused_before_decoding(tree_copy):
    victim, _ = _one_file_of(tree_copy, "test")
    _png(victim, size=(4000, 4000))
    with pytest.raises(ValueError, match=rf"{victim.name} is 4000x4000 pixels but the other images are 8x8"):
        read_image_folder(tree_copy, "test")


def test_a_deleted_image_is_named(tree_copy):
    victim, wrote = _one_file_of(tree_copy, "train")
    victim.unlink()
    cls = victim.parent.name
    with pytest.raises(
        ValueError,
        match=rf"train[/\\]{cls} holds {wrote - 1} PNG files but write_digits_image_folder wrote {wrote} \(a file is missing\); delete",
    ):
        read_image_folder(tree_copy, "train")
    with pytest.raises(ValueError, match=r"a file is missing"):
        load_digits_data(tree_copy)  # the manifest still matches, so the tree is reused and checked


def test_an_extra_image_is_named(tree_copy):
    victim, wrote = _one_file_of(tree_copy, "val")
    _png(victim.parent / "9999.png")
    with pytest.raises(
        ValueError,
        match=rf"val[/\\]{victim.parent.name} holds {wrote + 1} PNG files but write_digits_image_folder wrote {wrote} \(a file was added\)",
    ):
        read_image_folder(tree_copy, "val")
    empty_class = next(
        c for c, n in json.loads((tree_copy / "manifest.json").read_text())["counts"]["val"].items() if n == 0
    )
    (victim.parent / "9999.png").rename(tree_copy / "val" / empty_class / "9999.png")
    with pytest.raises(
        ValueError, match=rf"val[/\\]{empty_class} holds 1 PNG files but write_digits_image_folder wrote 0"
    ):
        read_image_folder(tree_copy, "val")


def test_a_plain_image_folder_without_manifest_is_read(tmp_path):
    for i, (cls, value) in enumerate([("0", 0), ("0", 51), ("2", 255)]):
        _png(tmp_path / "own" / "train" / cls / f"img{i}.png", size=(5, 3), value=value)
    images, labels = read_image_folder(tmp_path / "own", "train")
    assert images.shape == (3, 1, 3, 5) and labels.tolist() == [0, 0, 2]
    assert images.flatten(1).mean(1).tolist() == pytest.approx([0.0, 0.2, 1.0])


def test_a_plain_image_folder_still_needs_one_size(tmp_path):
    _png(tmp_path / "own" / "train" / "0" / "a.png", size=(8, 8))
    _png(tmp_path / "own" / "train" / "1" / "b.png", size=(8, 9))
    with pytest.raises(ValueError, match=r"b\.png is 8x9 pixels but the other images are 8x8"):
        read_image_folder(tmp_path / "own", "train")


# --- the student's own data (issue 10, item 6) ----------------------------------------------------


def _sorted_by_class():
    """Rows ordered by class, as scikit-learn's wine data: 59, 71 and 48 rows of classes 0, 1, 2."""
    y = torch.tensor([0] * 59 + [1] * 71 + [2] * 48)
    return torch.arange(len(y), dtype=torch.float32).unsqueeze(1), y


def test_split_data_warns_when_labels_look_sorted():
    X, y = _sorted_by_class()
    with pytest.warns(
        UserWarning,
        match=r"the test split holds only class 2: the rows look sorted by class; pass shuffle=True or stratify=True",
    ) as record:
        split_data(X, y)
    assert len(record) == 1 and record[0].filename == __file__  # points at the caller's line
    with pytest.warns(UserWarning, match=r"class 1\.0 is only in the test split"):
        split_data(torch.zeros(10, 1), torch.tensor([0.0] * 8 + [1.0] * 2))  # whole-number floats count as classes
    descending = torch.tensor([2] * 5 + [1] * 10 + [0] * 5)
    with pytest.warns(UserWarning, match=r"class 0 is only in the test split"):
        split_data(torch.zeros(20, 1), descending, 0.75)


def test_split_data_on_the_line_and_on_mixed_labels_does_not_warn():
    mixed = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1, 0, 1])
    line = make_line_data()
    whole_number_line = make_line_data(weight=1.0, bias=0.0, start=0.0, end=10.0, step=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        split_data(*line)
        split_data(*whole_number_line)
        split_data(torch.zeros(10, 1), mixed)
        split_data(*_sorted_by_class(), shuffle=True)
        split_data(*_sorted_by_class(), stratify=True)


def test_split_data_shuffle_is_seeded_and_keeps_pairs():
    X, y = _sorted_by_class()
    X_train, y_train, X_test, y_test = split_data(X, y, shuffle=True, seed=0)
    assert (len(X_train), len(X_test)) == (142, 36)
    assert torch.equal(y[X_train.long().flatten()], y_train) and torch.equal(y[X_test.long().flatten()], y_test)
    assert sorted(torch.cat([X_train, X_test]).flatten().tolist()) == X.flatten().tolist()
    assert set(y_test.tolist()) == {0, 1, 2}
    assert torch.equal(split_data(X, y, shuffle=True, seed=0)[2], X_test)
    assert not torch.equal(split_data(X, y, shuffle=True, seed=1)[2], X_test)


def test_split_data_stratify_keeps_class_proportions():
    X, y = _sorted_by_class()
    X_train, y_train, X_test, y_test = split_data(X, y, stratify=True)
    assert torch.bincount(y_train).tolist() == [47, 57, 38]
    assert torch.bincount(y_test).tolist() == [12, 14, 10]
    assert torch.equal(y[X_train.long().flatten()], y_train) and torch.equal(y[X_test.long().flatten()], y_test)
    assert y_test.tolist() != sorted(y_test.tolist())  # shuffled, not class by class


def test_split_data_stratify_needs_class_labels():
    with pytest.raises(
        ValueError, match=r"stratify=True needs class labels .*use shuffle=True for a regression target"
    ):
        split_data(*make_line_data(), stratify=True)


def test_tabular_rows_get_a_hint_that_works():
    from torch.utils.data import TensorDataset

    X, y = torch.rand(10, 13), torch.arange(10) % 3
    with pytest.raises(
        ValueError,
        match=r"rows of features, not images; for tabular data use torch\.utils\.data\.TensorDataset\(X, y\)",
    ):
        TensorImageDataset(X, y)
    batches = list(make_loader(TensorDataset(X, y), batch_size=4))  # the hint, followed
    assert [tuple(xb.shape) for xb, _ in batches] == [(4, 13), (4, 13), (2, 13)]
    assert torch.equal(torch.cat([yb for _, yb in batches]), y)


class _OneAtATime(torch.utils.data.Dataset):
    """A per-sample Dataset as students write them: ``__getitem__`` takes one int."""

    def __init__(self, n=10):
        self.rows = [(torch.tensor([float(i), 1.0]), i % 3) for i in range(n)]
        self.calls = 0

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        if not isinstance(i, int):
            raise TypeError(f"one index at a time, got {type(i).__name__}")
        self.calls += 1
        return self.rows[i]


def test_make_loader_serves_a_per_sample_dataset():
    ds = _OneAtATime()
    loader = make_loader(ds, batch_size=4)
    batches = list(loader)
    assert [tuple(xb.shape) for xb, _ in batches] == [(4, 2), (4, 2), (2, 2)] and len(loader) == 3
    assert torch.cat([yb for _, yb in batches]).tolist() == [i % 3 for i in range(10)]
    assert ds.calls == 10


def test_per_sample_shuffle_follows_seed_and_epoch_like_the_batched_loader():
    loader = make_loader(_OneAtATime(), batch_size=4, shuffle=True, seed=7)
    first = [int(v) for xb, _ in loader for v in xb[:, 0]]
    second = [int(v) for xb, _ in loader for v in xb[:, 0]]
    batched = list(ShuffledBatches(10, 4, shuffle=True, seed=7))
    assert first == [i for b in batched for i in b] and first != second and sorted(first) == list(range(10))
    loader.sampler.set_epoch(1)  # what fit does when resuming at epoch 1
    assert [int(v) for xb, _ in loader for v in xb[:, 0]] == second


def test_fit_trains_on_a_per_sample_loader():
    from torch import nn

    from workflow_utils.engine import fit

    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    history = fit(
        model,
        make_loader(_OneAtATime(30), batch_size=8, shuffle=True),
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        2,
    )
    assert history.epochs == [0, 1] and all(v > 0 for v in history.train_loss)


def test_make_loader_takes_whole_batches_from_a_subset_of_tensors():
    from torch.utils.data import Subset, TensorDataset

    subset = Subset(TensorDataset(torch.arange(20.0).unsqueeze(1), torch.arange(20)), list(range(5, 15)))
    loader = make_loader(subset, batch_size=4)
    assert isinstance(loader.sampler, ShuffledBatches)
    assert [yb.tolist() for _, yb in loader] == [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14]]


def test_an_existing_tree_is_reused_without_loading_scikit_learn(tmp_path, monkeypatch):
    import workflow_utils.data as data

    root = write_digits_image_folder(tmp_path / "digits")
    before = (root / "manifest.json").stat().st_mtime_ns

    def no_sklearn():
        raise AssertionError("scikit-learn was loaded to reuse a complete tree")

    monkeypatch.setattr(data, "_sklearn_digits", no_sklearn)
    monkeypatch.setattr(data, "digits_split_indices", lambda seed=42: no_sklearn())
    assert write_digits_image_folder(root) == root
    assert (root / "manifest.json").stat().st_mtime_ns == before


def test_stratify_warns_when_a_class_is_too_small_for_both_splits():
    X = torch.arange(9.0).unsqueeze(1)
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2])  # class 2 has one sample
    with pytest.warns(UserWarning, match=r"class 2 has only 1 row, so the test split holds none of it"):
        _, _, _, y_test = split_data(X, y, stratify=True)
    assert 2 not in y_test.tolist()
