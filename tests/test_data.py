"""The real loaders on tiny idx files: orientation, labels, sources, checks and failures."""

import numpy as np
import pytest
import torch

from helpers import data, paths
from helpers.errors import HCRError
from helpers.labels import CLASS_NAMES, EMNIST, MNIST, NUM_CLASSES
from tests.conftest import write_idx


def test_data_root_argument_env_and_default(monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert data.data_root() == paths.PROJECT_DIR / "data"
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.data_root() == tmp_path.resolve()
    assert data.data_root(tmp_path / "x") == (tmp_path / "x").resolve()


def test_mnist_loads_with_labels_and_source(data_dir):
    train = data.load_mnist(train=True, root=data_dir)
    test = data.load_mnist(train=False, root=data_dir)
    assert train.images.shape == (40, 28, 28) and train.images.dtype == torch.uint8
    assert len(test) == 20
    assert train.labels.tolist() == [i % 10 for i in range(40)]
    assert (train.sources == MNIST).all()


def test_emnist_is_made_upright(tmp_path):
    """An image whose ink is a bar along the top must come back with the bar on top."""
    upright = np.zeros((26, 28, 28), np.uint8)
    upright[:, 2:5, 4:24] = 255  # horizontal bar near the top
    upright[:, 5:26, 4:7] = 255  # vertical bar on the left: an upside-down-proof "Γ"
    root = tmp_path / "d"
    for split in ("train", "test"):
        write_idx(root / "EMNIST/raw" / f"emnist-letters-{split}-images-idx3-ubyte", upright.transpose(0, 2, 1))
        write_idx(root / "EMNIST/raw" / f"emnist-letters-{split}-labels-idx1-ubyte", np.arange(26) + 1)
    letters = data.load_emnist_letters(train=True, root=root)
    assert torch.equal(letters.images, torch.from_numpy(upright))
    assert letters.images[0, 3, 4:24].min() == 255  # top row bright
    assert letters.images[0, 24, 10:24].max() == 0  # bottom right dark


def test_emnist_labels_map_to_letters(data_dir):
    letters = data.load_emnist_letters(train=True, root=data_dir)
    names = [CLASS_NAMES[i] for i in letters.labels[:26]]
    assert names == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert (letters.sources == EMNIST).all()


def test_merged_set_has_36_classes_and_keeps_sources(data_dir):
    merged = data.load_characters(train=True, root=data_dir)
    assert len(merged) == 40 + 52
    assert set(merged.labels.tolist()) == set(range(NUM_CLASSES))
    assert int((merged.sources == MNIST).sum()) == 40
    digits = merged.from_source(MNIST)
    assert digits.labels.max() < 10
    x = merged.to_float()
    assert x.shape == (92, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


def test_reframing_puts_every_character_in_a_20px_box_centred_by_mass(data_dir):
    framed = data.load_characters(train=True, root=data_dir, framing="centred")
    original = data.load_characters(train=True, root=data_dir, framing="original")
    assert not torch.equal(framed.images, original.images)
    for img in framed.images.numpy():
        ys, xs = np.nonzero(img >= 26)
        assert max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == 20
        w = img.astype(float)
        cy = (w.sum(1) * np.arange(28)).sum() / w.sum()
        cx = (w.sum(0) * np.arange(28)).sum() / w.sum()
        assert abs(cy - 14) <= 3.5 and abs(cx - 14) <= 3.5  # clamped when the box would leave the frame
    with pytest.raises(ValueError):
        data.load_characters(root=data_dir, framing="stretched")


def test_sample_per_class_is_balanced_and_seeded(data_dir):
    merged = data.load_characters(train=True, root=data_dir)
    a = data.sample_per_class(merged, 1, seed=3)
    b = data.sample_per_class(merged, 1, seed=3)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)
    assert sorted(a.labels.tolist()) == list(range(NUM_CLASSES))


def test_truncated_file_is_named(data_dir):
    path = data_dir / "MNIST/raw/train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(HCRError, match="train-images-idx3-ubyte is damaged") as info:
        data.load_mnist(root=data_dir)
    assert "delete it" in str(info.value)


def test_file_that_is_not_idx_is_named(data_dir):
    (data_dir / "EMNIST/raw/emnist-letters-test-labels-idx1-ubyte").write_bytes(b"<html>rate limited</html>")
    with pytest.raises(HCRError, match="emnist-letters-test-labels-idx1-ubyte is not a valid idx file"):
        data.load_emnist_letters(train=False, root=data_dir)


def test_images_and_labels_that_do_not_match(data_dir):
    write_idx(data_dir / "MNIST/raw/train-labels-idx1-ubyte", np.zeros(7, np.uint8))
    with pytest.raises(HCRError, match="do not belong together"):
        data.load_mnist(root=data_dir)


def test_labels_out_of_range(data_dir):
    write_idx(data_dir / "EMNIST/raw/emnist-letters-train-labels-idx1-ubyte", np.zeros(52, np.uint8))
    with pytest.raises(HCRError, match="outside 1-26"):
        data.load_emnist_letters(root=data_dir)


def test_offline_download_names_files_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import torchvision

    def no_internet(self, *args, **kwargs):
        # What torchvision does offline: create the folder, write part of a file, then fail.
        raw = self.raw_folder
        import os

        os.makedirs(raw, exist_ok=True)
        with open(os.path.join(raw, "train-images-idx3-ubyte.gz"), "wb") as f:
            f.write(b"partial")
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_internet)
    root = tmp_path / "empty"
    with pytest.raises(HCRError) as info:
        data.load_mnist(root=root)
    message = str(info.value)
    assert "Could not download MNIST" in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in message
    assert str(root / "MNIST" / "raw") in message
    assert "\n" not in message
    leftovers = [p for p in root.rglob("*") if p.is_file()]
    assert leftovers == [] and not list(root.glob(".download-*"))


def test_download_completes_into_place(tmp_path, monkeypatch):
    """A successful download lands in <root>/MNIST/raw and files already there are kept."""
    import torchvision

    from tests.conftest import make_dataset_root

    source = make_dataset_root(tmp_path / "mirror")

    def fake_download(self, *args, **kwargs):
        import os
        import shutil

        os.makedirs(self.raw_folder, exist_ok=True)
        for f in (source / "MNIST/raw").iterdir():
            shutil.copy(f, self.raw_folder)

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    root = tmp_path / "fresh"
    mine = root / "MNIST/raw/t10k-labels-idx1-ubyte"
    write_idx(mine, np.arange(20) % 10)
    before = mine.read_bytes()
    train = data.load_mnist(root=root)
    assert len(train) == 40
    assert mine.read_bytes() == before
    assert not list(root.glob(".download-*"))


def test_missing_files_lists_exactly_what_is_absent(data_dir):
    assert data.missing_files(data_dir) == []
    gone = data_dir / "EMNIST" / "raw" / data.EMNIST_FILES[False][0]
    gone.unlink()
    assert data.missing_files(data_dir) == [gone]
    assert data.missing_files(data_dir, train=True) == []
    assert data.missing_files(data_dir, kinds=("MNIST",)) == []
