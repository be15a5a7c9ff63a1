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


def test_damaged_image_folder_is_rebuilt(tmp_path):
    root = write_digits_image_folder(tmp_path / "digits")
    (root / "manifest.json").write_text("{}")  # e.g. an interrupted manual edit
    next(root.glob("train/0/*.png")).unlink()
    write_digits_image_folder(root)
    assert len(list(root.glob("*/*/*.png"))) == 1797
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
