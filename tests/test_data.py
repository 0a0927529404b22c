"""The real loaders on tiny idx files: orientation, labels, sources, checks and failures."""

import numpy as np
import pytest
import torch

from helpers import data, paths
from helpers.errors import HCRError
from helpers.labels import CASE_CLASS_NAMES, CLASS_NAMES, EMNIST, MNIST, NUM_CLASSES
from tests.conftest import make_dataset_root, write_idx


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
    assert x.shape == (92, 1, 28, 28) and x.dtype == torch.float32 and x.min() >= 0 and x.max() <= 1


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
    with pytest.raises(HCRError, match="use .centred."):
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
    root.mkdir()  # a data folder that does not exist is refused before any download (issue 16)
    with pytest.raises(HCRError) as info:
        data.load_mnist(root=root)
    message = str(info.value)
    assert message.startswith(f"4 data files are missing from {root.resolve()}: MNIST/raw/")
    assert "downloading them failed" in message
    for name in data.MNIST_FILES[True] + data.MNIST_FILES[False]:
        assert f"MNIST/raw/{name}" in message
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



# --- Every missing file at once; only the split asked for; a read-only folder (issue 9) -----


def offline(monkeypatch):
    """Make every torchvision download fail, as it does without internet (tests never go online)."""
    import torchvision

    def no_internet(self, *args, **kwargs):
        raise RuntimeError("Error downloading: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_internet)
    monkeypatch.setattr(torchvision.datasets.EMNIST, "download", no_internet)


def test_without_data_one_error_names_every_missing_file(tmp_path, monkeypatch):
    offline(monkeypatch)
    root = tmp_path / "nothing"
    root.mkdir()
    with pytest.raises(HCRError) as info:
        data.load_characters(train=True, root=root)
    message = str(info.value)
    assert message.startswith(f"8 data files are missing from {root.resolve()}: ")
    for path in data.missing_files(root):
        assert str(path.relative_to(root.resolve())) in message
    assert "ossci-datasets" in message and "EMNIST/gzip.zip" in message and "\n" not in message


def test_only_the_files_of_the_split_asked_for_are_needed(data_dir, monkeypatch):
    offline(monkeypatch)
    (data_dir / "MNIST/raw/train-images-idx3-ubyte").unlink()
    (data_dir / "EMNIST/raw/emnist-letters-train-labels-idx1-ubyte").unlink()
    assert len(data.load_mnist(train=False, root=data_dir)) == 20
    assert len(data.load_emnist_letters(train=False, root=data_dir)) == 26
    assert len(data.load_characters(train=False, root=data_dir)) == 46
    with pytest.raises(HCRError, match="2 data files are missing"):
        data.load_characters(train=True, root=data_dir)


def test_a_read_only_data_folder_is_named_as_such(tmp_path, monkeypatch):
    import os
    import tempfile

    offline(monkeypatch)
    root = tmp_path / "read-only"
    root.mkdir()
    if os.geteuid() == 0:  # root writes everywhere: make the folder refuse the way it would for a user
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(root))

        monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    else:
        root.chmod(0o555)
    try:
        with pytest.raises(HCRError) as info:
            data.load_mnist(root=root)
    finally:
        root.chmod(0o755)
    message = str(info.value)
    assert "not writable" in message and "HCR_DATA_DIR" in message and "download" in message
    assert "no internet" not in message and message.startswith("4 data files are missing")


# --- EMNIST ByClass: 62 classes, upper and lower case (issue 7) -----------------------------


def write_byclass(root, per_split=(124, 62)):
    """Tiny ByClass files: each image holds a bar at the top (upright), stored transposed."""
    for split, n in zip(("train", "test"), per_split):
        upright = np.zeros((n, 28, 28), np.uint8)
        upright[:, 2:5, 4:24] = 255
        upright[:, 5:26, 4:7] = np.arange(n, dtype=np.uint8)[:, None, None] % 200 + 55
        write_idx(root / "EMNIST/raw" / f"emnist-byclass-{split}-images-idx3-ubyte", upright.transpose(0, 2, 1))
        write_idx(root / "EMNIST/raw" / f"emnist-byclass-{split}-labels-idx1-ubyte", np.arange(n) % 62)
    return root


def test_byclass_loads_upright_with_62_labels(tmp_path):
    root = write_byclass(tmp_path / "d")
    train = data.load_emnist_byclass(train=True, root=root)
    test = data.load_emnist_byclass(train=False, root=root)
    assert train.images.shape == (124, 28, 28) and len(test) == 62
    assert train.images[0, 3, 4:24].min() == 255 and train.images[0, 24, 10:24].max() == 0  # bar on top
    assert train.labels.tolist() == [i % 62 for i in range(124)] and train.labels.dtype == torch.long
    assert [CASE_CLASS_NAMES[i] for i in test.labels[[0, 9, 10, 35, 36, 61]]] == list("09AZaz")
    assert (train.sources == EMNIST).all()
    framed = data.reframe(train)
    assert framed.images.shape == train.images.shape and torch.equal(framed.labels, train.labels)


def test_byclass_needs_only_its_own_files(tmp_path, monkeypatch):
    offline(monkeypatch)
    root = write_byclass(tmp_path / "d")
    assert data.missing_files(root, kinds=("BYCLASS",)) == []
    assert len(data.missing_files(root)) == 8  # the default kinds (the 36-class story) do not include ByClass
    (root / "EMNIST/raw/emnist-byclass-test-images-idx3-ubyte").unlink()
    assert [p.name for p in data.missing_files(root, kinds=("BYCLASS",))] == ["emnist-byclass-test-images-idx3-ubyte"]
    assert len(data.load_emnist_byclass(train=True, root=root)) == 124
    with pytest.raises(HCRError, match="^1 data file is missing .*EMNIST/raw/emnist-byclass-test-images-idx3-ubyte;"):
        data.load_emnist_byclass(train=False, root=root)


def test_byclass_checks(tmp_path):
    root = write_byclass(tmp_path / "d")
    write_idx(root / "EMNIST/raw/emnist-byclass-train-labels-idx1-ubyte", np.full(124, 62, np.uint8))
    with pytest.raises(HCRError, match="outside 0-61"):
        data.load_emnist_byclass(train=True, root=root)
    write_idx(root / "EMNIST/raw/emnist-byclass-train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(HCRError, match="do not belong together"):
        data.load_emnist_byclass(train=True, root=root)
    path = root / "EMNIST/raw/emnist-byclass-test-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(HCRError, match="emnist-byclass-test-images-idx3-ubyte is damaged"):
        data.load_emnist_byclass(train=False, root=root)


def test_byclass_download_lands_in_place(tmp_path, monkeypatch):
    """torchvision's EMNIST download brings every split: ByClass and Letters files are moved in."""
    import torchvision

    mirror = make_dataset_root(write_byclass(tmp_path / "mirror"))

    def fake_download(self, *args, **kwargs):
        import os
        import shutil

        os.makedirs(self.raw_folder, exist_ok=True)
        for f in (mirror / "EMNIST/raw").iterdir():
            shutil.copy(f, self.raw_folder)

    monkeypatch.setattr(torchvision.datasets.EMNIST, "download", fake_download)
    root = tmp_path / "fresh"
    root.mkdir()  # the folder must exist: only the default data/ folder is made (issue 16)
    assert len(data.load_emnist_byclass(train=True, root=root)) == 124
    assert data.missing_files(root, kinds=("EMNIST", "BYCLASS")) == []
    assert not list(root.glob(".download-*"))


def test_sample_per_class_works_for_62_classes(tmp_path):
    byclass = data.load_emnist_byclass(train=True, root=write_byclass(tmp_path / "d"))
    sample = data.sample_per_class(byclass, 1, seed=0)
    assert sorted(sample.labels.tolist()) == list(range(62))
    assert len(data.sample_per_class(byclass, 5, seed=0)) == 124  # at most what each class has


# --- Hardening (issue 16): what stands where a data file should be, huge and empty files ---------


def test_a_mistyped_data_folder_is_named_and_never_created(tmp_path, monkeypatch):
    offline(monkeypatch)
    typo = tmp_path / "datasest" / "deeper"
    monkeypatch.setenv(data.DATA_ENV, str(typo))
    for load in (data.load_mnist, lambda: data.load_characters(train=False), lambda: data.require_files()):
        with pytest.raises(HCRError) as info:
            load()
        message = str(info.value)
        assert message.startswith(f"The data folder {typo} does not exist (HCR_DATA_DIR is set to")
        assert "\n" not in message
    assert not (tmp_path / "datasest").exists()
    with pytest.raises(HCRError, match="the data folder asked for is a folder that is not there"):
        data.load_mnist(root=tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()
    assert len(data.missing_files()) == 8  # listing what is missing never fails, nor creates anything
    assert not (tmp_path / "datasest").exists()


def test_only_the_default_data_folder_may_be_created(tmp_path, monkeypatch):
    offline(monkeypatch)
    default = tmp_path / "project" / "data"
    monkeypatch.setattr(data, "PROJECT_DIR", tmp_path / "project")
    monkeypatch.setattr(paths, "PROJECT_DIR", tmp_path / "project")
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    with pytest.raises(HCRError, match="downloading them failed"):  # a download was tried: offline here
        data.load_mnist()
    assert not default.exists()  # and the folders it made are gone again, since nothing landed


def test_a_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch):
    offline(monkeypatch)
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(HCRError, match="downloading them failed"):
        data.load_emnist_letters(root=root)
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("kind, expected", [
    ("folder", "is a folder, not a data file"),
    ("fifo", "is a named pipe (FIFO), not a data file"),
    ("device", "is a device, not a data file"),
    ("loop", "is a symbolic link that loops back on itself, not a data file"),
    ("dangling", "is a symbolic link to something that does not exist"),
])
def test_what_stands_in_place_of_a_data_file_is_named(data_dir, monkeypatch, kind, expected):
    import os

    offline(monkeypatch)
    path = data_dir / "MNIST/raw/train-images-idx3-ubyte"
    path.unlink()
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "loop":
        path.symlink_to(path)
    else:
        path.symlink_to(data_dir / "nowhere")
    with pytest.raises(HCRError) as info:
        data.load_mnist(root=data_dir)
    message = str(info.value)
    assert message.startswith(f"{path} {expected}") and "\n" not in message, message
    assert "missing" not in message and "download failed" not in message
    with pytest.raises(HCRError, match=expected.replace("(", "\\(").replace(")", "\\)")):
        data.check_idx(path, 3)


def test_an_unreadable_file_is_named(data_dir, monkeypatch):
    path = data_dir / "MNIST/raw/train-labels-idx1-ubyte"
    real_open = data._open

    def refuse(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(data, "_open", refuse)  # root reads everything: refuse as the system would for a user
    with pytest.raises(HCRError) as info:
        data.load_mnist(root=data_dir)
    assert str(info.value).startswith(f"{path} cannot be read (permission denied): make it")


def test_an_unreadable_folder_is_named(data_dir, monkeypatch):
    import os

    raw = data_dir / "EMNIST" / "raw"
    real_stat = data._stat

    def refuse(file, *args, **kwargs):  # what stat says inside a folder without the x permission
        if str(file).startswith(str(raw) + os.sep):
            raise PermissionError(13, "Permission denied", str(file))
        return real_stat(file, *args, **kwargs)

    monkeypatch.setattr(data, "_stat", refuse)
    offline(monkeypatch)
    with pytest.raises(HCRError) as info:
        data.load_emnist_letters(root=data_dir)
    message = str(info.value)
    assert "cannot be read (permission denied)" in message and str(raw) in message and "missing" not in message
    assert len(data.missing_files(data_dir)) == 4  # listing still works: those files cannot be used


@pytest.mark.parametrize("ndim, name", [(3, "train-images-idx3-ubyte"), (1, "train-labels-idx1-ubyte")])
def test_an_idx_file_with_0_items_is_named(data_dir, ndim, name):
    write_idx(data_dir / "MNIST/raw" / name, np.zeros((0, 28, 28) if ndim == 3 else (0,), np.uint8))
    with pytest.raises(HCRError, match=f"{name} holds 0 (images|items): delete it"):
        data.load_mnist(root=data_dir)


def test_a_huge_file_with_a_matching_header_is_refused_before_it_is_read(data_dir, monkeypatch):
    path = data_dir / "MNIST/raw/train-images-idx3-ubyte"
    count = 5_000_000  # 3.9 GB, as the header says: a sparse file that costs no disk
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(int(d).to_bytes(4, "big") for d in (count, 28, 28)))
        f.truncate(16 + count * 784)
    read = []
    import torchvision.datasets.mnist as tv

    monkeypatch.setattr(tv, "read_image_file", lambda *a: read.append(a))
    with pytest.raises(HCRError, match="claims 5,000,000 items, more than the official file's 60,000"):
        data.load_mnist(root=data_dir)
    assert read == []


def test_images_that_are_not_28x28_are_refused_before_they_are_read(data_dir):
    write_idx(data_dir / "MNIST/raw/train-images-idx3-ubyte", np.zeros((40, 280, 280), np.uint8))
    with pytest.raises(HCRError, match="holds images of 280x280 pixels, not the 28x28"):
        data.load_mnist(root=data_dir)


def test_a_data_folder_that_is_a_file_is_named(tmp_path):
    a_file = tmp_path / "data"
    a_file.write_text("x")
    with pytest.raises(HCRError, match="is a file, not a folder"):
        data.load_mnist(root=a_file)
