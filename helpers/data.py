"""MNIST digits and EMNIST Letters, upright, framed alike and merged into 36 classes; EMNIST ByClass for 62.

The raw idx files live in `<root>/MNIST/raw/` and `<root>/EMNIST/raw/`, the layout of
`torchvision.datasets`. What is missing is downloaded through torchvision (`download=True`),
and if that fails, one sentence names every missing file. Everything is held in memory as
tensors, because per-item PIL transforms make a small CNN wait on Python.
"""

import contextlib
import errno
import io
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import HCRError
from .framing import frame_batch
from .labels import CASE_EITHER, CASE_NUM_CLASSES, EMNIST, MNIST, NUM_DIGITS
from .paths import DATA_ENV, PROJECT_DIR, data_root  # noqa: F401  (data.data_root is public)

MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
EMNIST_FILES = {
    True: ("emnist-letters-train-images-idx3-ubyte", "emnist-letters-train-labels-idx1-ubyte"),
    False: ("emnist-letters-test-images-idx3-ubyte", "emnist-letters-test-labels-idx1-ubyte"),
}
BYCLASS_FILES = {
    True: ("emnist-byclass-train-images-idx3-ubyte", "emnist-byclass-train-labels-idx1-ubyte"),
    False: ("emnist-byclass-test-images-idx3-ubyte", "emnist-byclass-test-labels-idx1-ubyte"),
}
WHERE_TO_GET = {
    "MNIST": "MNIST from https://ossci-datasets.s3.amazonaws.com/mnist/ (gunzip each file)",
    "EMNIST": "EMNIST from https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip "
              "(unzip, then gunzip the emnist-letters-* files)",
    "BYCLASS": "EMNIST from https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip "
               "(unzip, then gunzip the emnist-byclass-* files)",
}


# Items in the official files: a file that claims more is refused before it is read (a header
# that matches a huge file would otherwise make the loader read gigabytes).
OFFICIAL_COUNTS = {
    "train-images-idx3-ubyte": 60_000, "train-labels-idx1-ubyte": 60_000,
    "t10k-images-idx3-ubyte": 10_000, "t10k-labels-idx1-ubyte": 10_000,
    "emnist-letters-train-images-idx3-ubyte": 124_800, "emnist-letters-train-labels-idx1-ubyte": 124_800,
    "emnist-letters-test-images-idx3-ubyte": 20_800, "emnist-letters-test-labels-idx1-ubyte": 20_800,
    "emnist-byclass-train-images-idx3-ubyte": 697_932, "emnist-byclass-train-labels-idx1-ubyte": 697_932,
    "emnist-byclass-test-images-idx3-ubyte": 116_323, "emnist-byclass-test-labels-idx1-ubyte": 116_323,
}
MAX_ITEMS = 1_000_000  # for an idx file of another name: more than any file of these data sets

# The system calls the checks go through, one place each (tests make them refuse, as root cannot).
_stat = os.stat
_open = open


@dataclass(frozen=True)
class Kind:
    """One family of raw files: its folder under the data root, file names and torchvision split."""

    folder: str  # "MNIST" or "EMNIST": torchvision's <root>/<folder>/raw/
    files: dict  # train (True/False) -> (images file, labels file)
    split: str = None  # torchvision's EMNIST split, None for MNIST


KINDS = {
    "MNIST": Kind("MNIST", MNIST_FILES),
    "EMNIST": Kind("EMNIST", EMNIST_FILES, "letters"),  # EMNIST Letters, the 36-class story
    "BYCLASS": Kind("EMNIST", BYCLASS_FILES, "byclass"),  # EMNIST ByClass, 62 classes
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


def _what_is_there(path):
    """None for a regular file; else why `path` is not a usable data file, in words ("absent" if nothing is)."""
    try:
        info = _stat(path)
    except FileNotFoundError:
        return "a symbolic link to something that does not exist" if os.path.islink(path) else "absent"
    except PermissionError:
        return "unreadable: permission denied"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that loops back on itself"
        if exc.errno == errno.ENOTDIR:
            return "inside a path where a file stands in place of a folder"
        return f"unreadable: {exc.strerror or type(exc).__name__}"
    if stat.S_ISREG(info.st_mode):
        return None
    if stat.S_ISDIR(info.st_mode):
        return "a folder"
    if stat.S_ISFIFO(info.st_mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        return "a device"
    return "a special file"


def _not_a_data_file(path, what):
    """One sentence for a path that holds something, but not a readable data file."""
    if what.startswith("unreadable"):
        return HCRError(f"{path} cannot be read ({what.split(': ', 1)[1]}): make it and its folders readable "
                        f"(chmod a+rX), or set {DATA_ENV} to a folder you can read.")
    return HCRError(f"{path} is {what}, not a data file: remove it and run again to download the file, or put "
                    "the official file there by hand.")


def check_idx(path, ndim):
    """Raise a clear HCRError if an idx file is unusable: not a readable regular file, truncated,
    padded, not an idx file at all, empty (0 items) or far larger than the official file."""
    path = Path(path)
    what = _what_is_there(path)
    if what == "absent":
        raise HCRError(f"{path} is missing: run again to download it, or place the official file there by hand.")
    if what is not None:
        raise _not_a_data_file(path, what)
    try:
        with _open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            header = f.read(4 + 4 * ndim)
    except OSError as exc:
        what = "unreadable: permission denied" if isinstance(exc, PermissionError) else \
            f"unreadable: {exc.strerror or type(exc).__name__}"
        raise _not_a_data_file(path, what) from None
    if len(header) < 4 + 4 * ndim or header[:2] != b"\x00\x00" or header[2] != 0x08 or header[3] != ndim:
        raise HCRError(
            f"{path} is not a valid idx file (its header is wrong): delete it and run again to "
            "download a fresh copy, or replace it by hand."
        )
    dims = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    if dims[0] == 0:
        raise HCRError(f"{path} holds 0 {'images' if ndim == 3 else 'items'}: delete it and run again to download "
                       "a fresh copy, or replace it by hand.")
    limit = OFFICIAL_COUNTS.get(path.name, MAX_ITEMS)
    if dims[0] > limit:
        raise HCRError(f"{path} claims {dims[0]:,} items, more than the official file's {limit:,}, so it was not "
                       "read: delete it and run again to download a fresh copy, or replace it by hand.")
    if ndim == 3 and dims[1:] != [28, 28]:
        raise HCRError(f"{path} holds images of {dims[1]}x{dims[2]} pixels, not the 28x28 of MNIST and EMNIST: "
                       "replace it with the official file.")
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if size != expected:
        raise HCRError(
            f"{path} is damaged ({size:,} bytes where its header promises {expected:,}): delete it "
            "and run again to download a fresh copy, or replace it by hand."
        )
    return dims


ALL_KINDS = ("MNIST", "EMNIST", "BYCLASS")  # what the whole notebook reads (ByClass: the case section)


def missing_files(root=None, train=(True, False), kinds=("MNIST", "EMNIST")):
    """The raw files not yet in the data folder (what a download, or a person, must put there).

    kinds: any of "MNIST", "EMNIST" (Letters) and "BYCLASS"; train: True, False or both.
    """
    root = _resolved(root)
    splits = train if isinstance(train, (tuple, list)) else (train,)
    paths = [root / KINDS[kind].folder / "raw" / name
             for kind in kinds for t in splits for name in KINDS[kind].files[t]]
    return [path for path in paths if _what_is_there(path) is not None]


def _resolved(root):
    """data_root, with a path that cannot be resolved (a symlink loop) said in one sentence."""
    try:
        return data_root(root)
    except (OSError, RuntimeError):
        where = f"{DATA_ENV} ({os.environ.get(DATA_ENV)})" if root is None else f"the data folder {root}"
        raise HCRError(f"The path of {where} holds a symbolic link that loops back on itself: fix the link "
                       f"or set {DATA_ENV} to the real folder.") from None


def _data_folder(root):
    """The data folder, which must exist: only the default data/ folder is created (by a download).

    A mistyped HCR_DATA_DIR or root must not turn into a new, empty folder tree.
    """
    folder = _resolved(root)
    default = (PROJECT_DIR / "data").resolve()
    what = _what_is_there(folder)
    if what is None or what == "a folder":
        if what is None:
            raise HCRError(f"The data folder {folder} is a file, not a folder: set {DATA_ENV} to the folder that "
                           "holds MNIST/ and EMNIST/.")
        return folder
    if what == "absent" and folder == default:
        return folder
    if what == "absent":
        told = f"{DATA_ENV} is set to" if root is None else "the data folder asked for is"
        raise HCRError(f"The data folder {folder} does not exist ({told} a folder that is not there): fix the path, "
                       "or create the folder first if the data should go there.")
    raise _not_a_data_file(folder, what)


class _NotWritable(Exception):
    pass


def _torchvision_dataset(kind):
    import torchvision  # imported here: `helpers.predict` should not pay for it

    if KINDS[kind].split is None:
        return torchvision.datasets.MNIST, {}
    return torchvision.datasets.EMNIST, {"split": KINDS[kind].split}


def _download(kind, root):
    """Download through torchvision into a scratch folder; move files in only when complete.

    Every known file the download brought (both splits) is moved in; files already in place
    are never overwritten. Raises _NotWritable when the data folder cannot take files.
    """
    folder = KINDS[kind].folder
    raw_dir = root / folder / "raw"
    made = [d for d in (root, root / folder, raw_dir) if not d.exists()]  # removed again if nothing lands
    try:
        raw_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    except OSError as exc:
        _remove_empty(made)
        raise _NotWritable() from exc
    try:
        dataset, kwargs = _torchvision_dataset(kind)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            dataset(scratch, download=True, **kwargs)
        known = {name for k in KINDS.values() if k.folder == folder for pair in k.files.values() for name in pair}
        for name in sorted(known):
            fetched = scratch / folder / "raw" / name
            if fetched.is_file() and not (raw_dir / name).is_file():
                try:
                    os.replace(fetched, raw_dir / name)
                except PermissionError as exc:
                    raise _NotWritable() from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _remove_empty(made)


def _remove_empty(folders):
    """The folders a failed download made, deepest first, if nothing was put in them."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def require_files(kinds=("MNIST", "EMNIST"), train=(True, False), root=None):
    """Download what is missing, or stop with ONE sentence naming every missing file of `kinds`.

    Only the files of the splits in `train` are required; when a download fails, the message
    still names every missing file of those kinds, so one look tells the whole fix.
    """
    root = _data_folder(root)
    for kind in dict.fromkeys(kinds):  # in order, each once
        missing = missing_files(root, train, (kind,))
        if not missing:
            continue  # present, or brought by the download of a kind that shares its archive
        for path in missing:  # something is there, but not a data file: say so, do not download over it
            what = _what_is_there(path)
            if what != "absent":
                raise _not_a_data_file(path, what)
        try:
            _download(kind, root)
        except _NotWritable:
            raise _missing_error(root, kinds, "they cannot be downloaded there because the folder is not writable",
                                 "or set HCR_DATA_DIR to a folder you can write") from None
        except Exception:
            raise _missing_error(root, kinds, "downloading them failed (no internet, or the server is down)",
                                 "and run again") from None
    still = missing_files(root, train, kinds)
    if still:  # the download ran but did not bring them (an unexpected archive)
        raise _missing_error(root, kinds, "the download did not contain them", "and run again")


def _names(kind):
    return {name for pair in KINDS[kind].files.values() for name in pair}


def _missing_error(root, kinds, why, then):
    """One sentence: the missing files first, then why they are not there, then what to do."""
    missing = missing_files(root, (True, False), kinds)
    listed = ", ".join(str(path.relative_to(root)) for path in missing)
    sources = "; ".join(dict.fromkeys(WHERE_TO_GET[k] for k in kinds if any(p.name in _names(k) for p in missing)))
    return HCRError(
        f"{len(missing)} data file{'s are' if len(missing) != 1 else ' is'} missing from {root}: {listed}; "
        f"{why}, so place the uncompressed files there yourself ({sources}) {then}."
    )


def _load(kind, train, root):
    """Raw images (N, 28, 28) uint8 and labels, after checking the files of this split.

    Read with torchvision's own idx readers: its dataset classes would also demand the files
    of the other split.
    """
    from torchvision.datasets.mnist import read_image_file, read_label_file

    root = _data_folder(root)
    require_files((kind,), train, root)
    raw_dir = root / KINDS[kind].folder / "raw"
    images_file, labels_file = (raw_dir / name for name in KINDS[kind].files[train])
    images_dims = check_idx(images_file, 3)
    labels_dims = check_idx(labels_file, 1)
    if images_dims[0] != labels_dims[0] or images_dims[1:] != [28, 28]:
        raise HCRError(
            f"{images_file} and {labels_file} do not belong together "
            f"({images_dims[0]:,} images of {images_dims[1:]} but {labels_dims[0]:,} labels): "
            "replace both with the official files."
        )
    return read_image_file(str(images_file)), read_label_file(str(labels_file)).long()


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


def load_emnist_byclass(train=True, root=None):
    """EMNIST ByClass made upright, labels 0..61 = 0-9, A-Z, a-z (labels.CASE_CLASS_NAMES order)."""
    images, labels = _load("BYCLASS", train, root)
    if labels.numel() and (labels.min() < 0 or labels.max() >= CASE_NUM_CLASSES):
        raise HCRError(
            f"The EMNIST ByClass label file holds labels outside 0-{CASE_NUM_CLASSES - 1}: "
            "replace it with the official file."
        )
    upright = images.transpose(1, 2).contiguous()
    return CharacterSet(upright, labels, torch.full_like(labels, EMNIST, dtype=torch.uint8))


def reframe(dataset):
    """The same characters, each cropped, scaled to 20 px and centred by mass like MNIST."""
    framed = torch.from_numpy(frame_batch(dataset.images.numpy()))
    return CharacterSet(framed, dataset.labels, dataset.sources)


def load_characters(train=True, root=None, framing="centred", per_class=None, seed=0):
    """MNIST + EMNIST Letters in one 36-class set.

    framing="centred" redraws every image the same way (the default; see `framing.frame_ink`);
    framing="original" keeps each dataset's own framing (only the orientation is fixed).
    per_class keeps a balanced random sample (quick runs and tests), drawn before framing.
    """
    if framing not in ("centred", "original"):
        raise HCRError(f"framing={framing!r} is not a framing: use 'centred' (the default) or 'original'.")
    require_files(("MNIST", "EMNIST"), train, root)  # one message naming every missing file
    merged = CharacterSet.concat(load_mnist(train, root), load_emnist_letters(train, root))
    if per_class is not None:
        merged = sample_per_class(merged, per_class, seed)
    return reframe(merged) if framing == "centred" else merged


def load_case_characters(train=True, root=None, per_class=None, seed=0, extra=True):
    """The case-sensitive set: EMNIST ByClass (labels 0..61), framed like everything else.

    For training (`extra=True`) it adds every image that can help: MNIST digits (labels 0-9)
    and EMNIST Letters, whose case is unknown, under labels CASE_EITHER + k ("letter k in either
    case"; train with `training.target_set_loss(labels.CASE_TARGET_SETS)`). The test side is
    ByClass alone. per_class keeps a balanced random sample of each label (quick runs, tests).
    """
    kinds = ("BYCLASS", "MNIST", "EMNIST") if train and extra else ("BYCLASS",)
    require_files(kinds, train, root)  # one message naming every missing file
    parts = [load_emnist_byclass(train, root)]
    if train and extra:
        letters = load_emnist_letters(train, root)
        either = letters.labels - NUM_DIGITS + CASE_EITHER
        parts += [load_mnist(train, root), CharacterSet(letters.images, either, letters.sources)]
    merged = CharacterSet.concat(*parts)
    if per_class is not None:
        merged = sample_per_class(merged, per_class, seed)
    return reframe(merged)


def split_off(dataset, count, seed=0):
    """(rest, held_out): `count` random examples held out, e.g. a validation set for tuning."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return dataset.subset(torch.sort(order[count:]).values), dataset.subset(torch.sort(order[:count]).values)


def sample_per_class(dataset, per_class, seed=0):
    """A class-balanced random subset (at most `per_class` of each class): quick runs, smoke tests.

    Works for any label scheme (36 or 62 classes): the classes are the labels present.
    """
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(dataset.labels).tolist():
        idx = torch.nonzero(dataset.labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    if not picks:
        return dataset.subset([])
    return dataset.subset(torch.sort(torch.cat(picks)).values)
