"""MNIST digits and EMNIST Letters, upright, framed alike and merged into 36 classes.

Both come through `torchvision.datasets` with `download=True`: when the raw idx files are
already in `<root>/MNIST/raw/` and `<root>/EMNIST/raw/`, nothing is downloaded. Everything is
held in memory as tensors, because per-item PIL transforms make a small CNN wait on Python.
"""

import contextlib
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import HCRError
from .framing import frame_batch
from .labels import EMNIST, MNIST, NUM_CLASSES, NUM_DIGITS
from .paths import DATA_ENV, data_root  # noqa: F401  (data.data_root is public)


MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EMNIST_FILES = {
    True: ("emnist-letters-train-images-idx3-ubyte", "emnist-letters-train-labels-idx1-ubyte"),
    False: ("emnist-letters-test-images-idx3-ubyte", "emnist-letters-test-labels-idx1-ubyte"),
}
WHERE_TO_GET = {
    "MNIST": "https://ossci-datasets.s3.amazonaws.com/mnist/ (gunzip each file)",
    "EMNIST": "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip (unzip, then gunzip the emnist-letters-* files)",
}


@dataclass
class CharacterSet:
    """Images (uint8, N x 28 x 28, upright, bright ink on black), labels 0-35 and sources."""

    images: torch.Tensor
    labels: torch.Tensor
    sources: torch.Tensor

    def __len__(self):
        return len(self.labels)

    def subset(self, index):
        index = torch.as_tensor(index, dtype=torch.long)
        return CharacterSet(self.images[index], self.labels[index], self.sources[index])

    def from_source(self, source):
        """Only the examples of one source (labels.MNIST or labels.EMNIST)."""
        return self.subset(torch.nonzero(self.sources == source).flatten())

    def to_float(self):
        """The images as float32 (N, 1, 28, 28) in [0, 1]: converted once, not per batch."""
        return self.images.unsqueeze(1).float().div_(255.0)

    @staticmethod
    def concat(*sets):
        return CharacterSet(
            torch.cat([s.images for s in sets]),
            torch.cat([s.labels for s in sets]),
            torch.cat([s.sources for s in sets]),
        )


# --- Reading and checking idx files ----------------------------------------------------------


def check_idx(path, ndim):
    """Raise a clear HCRError if an idx file is truncated, padded or not an idx file at all."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4 + 4 * ndim)
    if len(header) < 4 + 4 * ndim or header[:2] != b"\x00\x00" or header[2] != 0x08 or header[3] != ndim:
        raise HCRError(
            f"{path} is not a valid idx file (its header is wrong): delete it and run again to "
            "download a fresh copy, or replace it by hand."
        )
    dims = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if size != expected:
        raise HCRError(
            f"{path} is damaged ({size:,} bytes where its header promises {expected:,}): delete it "
            "and run again to download a fresh copy, or replace it by hand."
        )
    return dims


def _download(dataset, raw_dir, names, **kwargs):
    """Download through torchvision into a scratch folder; move files in only when complete."""
    root = raw_dir.parent.parent
    name = raw_dir.parent.name
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    except OSError:
        scratch = None
    try:
        if scratch is None:
            raise OSError("data folder not writable")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            dataset(scratch, download=True, **kwargs)
        raw_dir.mkdir(parents=True, exist_ok=True)
        for file in names:
            if not (raw_dir / file).is_file():  # never overwrite what the user placed
                os.replace(scratch / name / "raw" / file, raw_dir / file)
    except Exception:
        raise HCRError(
            f"Could not download {name} (no internet, or the server is down): place the "
            f"uncompressed files {', '.join(names)} in {raw_dir}/ (from {WHERE_TO_GET[name]}) "
            "and run again."
        ) from None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def missing_files(root=None, train=(True, False), kinds=("MNIST", "EMNIST")):
    """The raw files not yet in the data folder (what a download, or a person, must put there)."""
    root = data_root(root)
    table = {"MNIST": MNIST_FILES, "EMNIST": EMNIST_FILES}
    splits = train if isinstance(train, tuple) else (train,)
    return [root / kind / "raw" / name for kind in kinds for t in splits for name in table[kind][t]
            if not (root / kind / "raw" / name).is_file()]


def _load(kind, train, root):
    """Raw images (N, 28, 28) uint8 and labels from torchvision, after checking the files."""
    import torchvision  # imported here: `helpers.predict` should not pay for it

    root = data_root(root)
    if kind == "MNIST":
        dataset, names, kwargs = torchvision.datasets.MNIST, MNIST_FILES[train], {}
    else:
        dataset, names, kwargs = torchvision.datasets.EMNIST, EMNIST_FILES[train], {"split": "letters"}
    raw_dir = root / kind / "raw"
    if missing_files(root, kinds=(kind,)):
        all_names = [n for pair in (MNIST_FILES if kind == "MNIST" else EMNIST_FILES).values() for n in pair]
        _download(dataset, raw_dir, all_names, **kwargs)
    images_dims = check_idx(raw_dir / names[0], 3)
    labels_dims = check_idx(raw_dir / names[1], 1)
    if images_dims[0] != labels_dims[0] or images_dims[1:] != [28, 28]:
        raise HCRError(
            f"{raw_dir / names[0]} and {raw_dir / names[1]} do not belong together "
            f"({images_dims[0]:,} images of {images_dims[1:]} but {labels_dims[0]:,} labels): "
            "replace both with the official files."
        )
    ds = dataset(str(root), train=train, download=True, **kwargs)
    return ds.data, ds.targets.long()


def load_mnist(train=True, root=None):
    """MNIST as a CharacterSet in its original framing (labels 0-9)."""
    images, labels = _load("MNIST", train, root)
    if labels.numel() and (labels.min() < 0 or labels.max() >= NUM_DIGITS):
        raise HCRError("The MNIST label file holds labels outside 0-9: replace it with the official file.")
    return CharacterSet(images.contiguous(), labels, torch.full_like(labels, MNIST, dtype=torch.uint8))


def load_emnist_letters(train=True, root=None):
    """EMNIST Letters made upright (the files are stored transposed), labels 1..26 -> 10..35."""
    images, labels = _load("EMNIST", train, root)
    if labels.numel() and (labels.min() < 1 or labels.max() > 26):
        raise HCRError("The EMNIST letters label file holds labels outside 1-26: replace it with the official file.")
    upright = images.transpose(1, 2).contiguous()
    return CharacterSet(upright, labels + NUM_DIGITS - 1, torch.full_like(labels, EMNIST, dtype=torch.uint8))


def reframe(dataset):
    """The same characters, each cropped, scaled to 20 px and centred by mass like MNIST."""
    framed = torch.from_numpy(frame_batch(dataset.images.numpy()))
    return CharacterSet(framed, dataset.labels, dataset.sources)


def load_characters(train=True, root=None, framing="centred", per_class=None, seed=0):
    """MNIST + EMNIST Letters in one 36-class set.

    framing="centred" redraws every image the same way (the default; see `preprocess`);
    framing="original" keeps each dataset's own framing (only the orientation is fixed).
    per_class keeps a balanced random sample (quick runs and tests), drawn before framing.
    """
    if framing not in ("centred", "original"):
        raise ValueError("framing must be 'centred' or 'original'")
    merged = CharacterSet.concat(load_mnist(train, root), load_emnist_letters(train, root))
    if per_class is not None:
        merged = sample_per_class(merged, per_class, seed)
    return reframe(merged) if framing == "centred" else merged


def split_off(dataset, count, seed=0):
    """(rest, held_out): `count` random examples held out, e.g. a validation set for tuning."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return dataset.subset(torch.sort(order[count:]).values), dataset.subset(torch.sort(order[:count]).values)


def sample_per_class(dataset, per_class, seed=0):
    """A class-balanced random subset (at most `per_class` of each class): quick runs, smoke tests."""
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(NUM_CLASSES):
        idx = torch.nonzero(dataset.labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return dataset.subset(torch.sort(torch.cat(picks)).values)
