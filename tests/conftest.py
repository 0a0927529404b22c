"""Fixtures: tiny MNIST/EMNIST idx files in torchvision's layout, and small trained models."""

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def write_idx(path, array):
    """Write a uint8 array as an idx file, the format of the MNIST and EMNIST files."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())


def blob(rng, top_heavy=False):
    """A 28x28 character-like image: a bright blob of random size and place."""
    img = np.zeros((28, 28), np.uint8)
    h, w = rng.integers(8, 22), rng.integers(4, 22)
    y, x = rng.integers(0, 28 - h), rng.integers(0, 28 - w)
    img[y : y + h, x : x + w] = 255
    if top_heavy:
        img[y : y + 2, x : x + w] = 255
    return img


def make_dataset_root(root, n_mnist=40, n_emnist=52, seed=0):
    """A data root holding small but valid MNIST and EMNIST Letters idx files."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_mnist), ("t10k", n_mnist // 2)):
        write_idx(root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte", np.stack([blob(rng) for _ in range(n)]))
        write_idx(root / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    for split, n in (("train", n_emnist), ("test", n_emnist // 2)):
        upright = np.stack([blob(rng) for _ in range(n)])
        # Stored transposed, exactly like the real EMNIST files.
        write_idx(root / "EMNIST" / "raw" / f"emnist-letters-{split}-images-idx3-ubyte", upright.transpose(0, 2, 1))
        write_idx(root / "EMNIST" / "raw" / f"emnist-letters-{split}-labels-idx1-ubyte", np.arange(n) % 26 + 1)
    return root


@pytest.fixture
def data_dir(tmp_path):
    return make_dataset_root(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """An untrained baseline saved as a checkpoint: enough to test plumbing, not accuracy."""
    from helpers.checkpoint import save_checkpoint
    from helpers.model import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_model("baseline"), "baseline", metrics={"overall_acc": 0.0})
    return path
