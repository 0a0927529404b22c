"""Save and load trained models together with everything needed to use them correctly.

A checkpoint records the model's name, the class names, how inputs must be prepared and the
accuracy it reached, so a wrong file fails with a clear sentence instead of silent nonsense.
It also records a SHA-256 of its weights, and every byte of the file is checked on load (the
zip records' CRCs, their headers and the directory), so a damaged file is refused before it
can give an answer.
"""

import contextlib
import errno
import hashlib
import io
import json
import math
import numbers
import os
import re
import secrets
import stat
import struct
import time
import zipfile
from pathlib import Path

import torch

from .errors import HCRError
from .framing import BOX, CENTRE, SIZE
from .labels import CASE_CLASS_NAMES, CLASS_NAMES, NUM_DIGITS
from .model import MODELS, build_model
from .paths import CHECKPOINTS, RUNS

FORMAT = "hcr-checkpoint/1"
SHIPPED = CHECKPOINTS / "default.pt"  # 36 classes, trained by a full run, kept in git
TRAINED = RUNS / "default.pt"  # what the notebook trains on your machine
SHIPPED_CASE = CHECKPOINTS / "case.pt"  # 62 classes (upper and lower case), kept in git
TRAINED_CASE = RUNS / "case.pt"  # the case-sensitive model trained on your machine

PREPROCESSING = {
    "size": SIZE,
    "box": BOX,
    "centre_of_mass": CENTRE,
    "framing": "centred",
    "values": "float in [0, 1], bright ink on black, upright",
}

_KNOWN_CLASSES = {tuple(CLASS_NAMES): "0-9, A-Z", tuple(CASE_CLASS_NAMES): "0-9, A-Z, a-z"}

# Limits checked before anything big is built. The shipped files are 1-5 MB; the line reader
# has 64 classes, a character model at most 62, all of them characters of CASE_CLASS_NAMES.
MAX_FILE_BYTES = 512 * 2**20
MAX_TENSORS = 10_000
MAX_CLASSES = 1024
MAX_CLASS_NAME = 16  # characters in one class name ("<blank>" for the line reader)
MAX_SHIFT = 100.0  # a digit prior or a per-class logit shift beyond this is not a prior, it is damage
WEIGHTS_HASH = "weights_sha256"
_REAL_DTYPES = {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8,
                torch.int16, torch.int32, torch.int64, torch.bool}


def default_checkpoint(case_sensitive=False):
    """Your own trained model if the notebook has made one, else the one shipped in the repo."""
    trained, shipped = (TRAINED_CASE, SHIPPED_CASE) if case_sensitive else (TRAINED, SHIPPED)
    return trained if trained.is_file() else shipped


def describe_classes(class_names):
    """'36 classes (0-9, A-Z)', '62 classes (0-9, A-Z, a-z)' or '10 classes (0123456789)'."""
    names = tuple(class_names)
    spelled = _KNOWN_CLASSES.get(names) or "".join(map(str, names))
    return f"{len(names)} classes ({spelled})"


def _plain(values):
    """JSON-like values only, so the file loads with torch.load(weights_only=True)."""
    return json.loads(json.dumps(dict(values or {}), default=str))


def _stretched(state_dict):
    """The name of the first tensor that claims more elements than its stored bytes hold (an
    expanded view: torch saves the small storage and the large shape), or None."""
    for key, value in state_dict.items():
        if torch.is_tensor(value) and value.numel() * value.element_size() > value.untyped_storage().nbytes():
            return key
    return None


def _not_finite(state_dict):
    """The name of the first tensor holding NaN or infinity, or None when all are finite."""
    for key, value in state_dict.items():
        if not torch.is_tensor(value):
            continue
        if value.is_complex():
            value = torch.view_as_real(value)
        if value.is_floating_point() and not torch.isfinite(value).all():
            return key
    return None


def weights_sha256(state_dict):
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order (hex digits).

    The same weights give the same hash whatever the pickling or the zip layout, so the hash
    proves the numbers are the ones that were saved.
    """
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        raw = tensor.reshape(-1).view(torch.uint8).numpy() if tensor.numel() else b""
        for part in (str(name), str(tensor.dtype), ",".join(map(str, tensor.shape))):
            encoded = part.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()


# --- Saving ------------------------------------------------------------------------------------


def save_checkpoint(path, model, model_name, metrics=None, recipe=None, extra=None, class_names=CLASS_NAMES):
    """Write atomically: an interrupted save never destroys the previous file nor leaves a part behind.

    `class_names` are the model's outputs in order (CLASS_NAMES or CASE_CLASS_NAMES); they are
    recorded with how inputs are prepared, so `load_checkpoint` can refuse the wrong use. A
    digit prior in `extra` is folded into the one stored per-class shift, `extra["logit_bias"]`.
    """
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    bad = _not_finite(state)
    if bad is not None:
        raise HCRError(
            f"The model's weights are not all finite numbers (NaN or infinity in '{bad}'), so nothing was "
            f"saved to {path}: training went wrong; train again, for example with a lower learning rate."
        )
    payload = {
        "model": model_name,
        "class_names": list(class_names),
        "num_classes": len(class_names),
        "preprocessing": _plain(PREPROCESSING),
        "metrics": _plain(metrics),
        "recipe": _plain(recipe),
        "extra": _plain(extra),
        "state_dict": state,
    }
    return save_payload(path, payload)


def save_payload(path, payload):
    """Save a checkpoint dict of any model (`state_dict` and JSON-like fields) with the project's safe write.

    Adds the format marker, the torch version and the weights' SHA-256; a character model's
    digit prior is folded into its one stored logit bias.
    """
    path = Path(path)
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise HCRError(f"Not saving {path}: the payload's state_dict is not a dictionary of tensors; "
                       "pass model.state_dict().")
    state = {k: v.detach().cpu() for k, v in state.items()}
    odd = next((k for k, v in state.items() if v.dtype not in _REAL_DTYPES or v.layout != torch.strided), None)
    if odd is not None:
        raise HCRError(f"Not saving {path}: the weight '{odd}' is a {state[odd].dtype} tensor, not real numbers; "
                       "keep the model's weights real (float or integer).")
    bad = _not_finite(state)
    if bad is not None:
        raise HCRError(f"The model's weights are not all finite numbers (NaN or infinity in '{bad}'), so nothing "
                       f"was saved to {path}: training went wrong; train again, for example with a lower "
                       "learning rate.")
    payload = {key: (_plain(value) if isinstance(value, dict) and key != "state_dict" else value)
               for key, value in payload.items()}
    payload["state_dict"] = state
    if payload.get("model") in MODELS:
        payload["extra"] = _fold_digit_prior(payload.get("extra"), payload.get("class_names"), path)
    payload["format"] = FORMAT
    payload["torch_version"] = str(torch.__version__)
    payload[WEIGHTS_HASH] = weights_sha256(state)
    _prepare_target(path)
    _write_atomically(path, payload)
    return path


def _fold_digit_prior(extra, class_names, where):
    """extra with its digit prior added into one per-class `logit_bias` (the only shift stored)."""
    extra = dict(extra or {})
    count = len(class_names or ())
    prior = extra.pop("digit_prior", 0.0)
    bias = class_bias(extra.get("logit_bias"), prior, count, where)
    if bias is None:
        extra.pop("logit_bias", None)
    else:
        extra["logit_bias"] = [round(float(b), 6) for b in bias]
    return extra


def _target_problem(path):
    """Why `path` cannot be saved to (a sentence), or None."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _os_problem(path, exc)
    if stat.S_ISREG(info.st_mode):
        return None
    kind = _kind(info.st_mode)
    return (f"Not saving to {path}: it is {kind}, not a regular file, and a checkpoint never replaces one; "
            "choose a path that is a .pt file or does not exist yet.")


def _kind(mode):
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _os_problem(path, exc):
    """An OSError while saving to `path`, as one sentence saying what to do."""
    code = getattr(exc, "errno", None)
    if code in (errno.ENOTDIR, errno.EEXIST):
        return (f"Not saving to {path}: part of its folder path is a file, not a folder; "
                "choose a path inside a folder.")
    if code in (errno.EACCES, errno.EPERM):
        return f"Not saving to {path}: its folder cannot be written (permission denied); choose a folder you can write."
    if code == errno.EROFS:
        return f"Not saving to {path}: its folder is on a read-only disk; choose a folder you can write."
    if code == errno.ENAMETOOLONG:
        return (f"Not saving to {str(path)[:80]}...: the name is too long for this system (a save also needs "
                "18 more characters for its scratch file); choose a shorter name.")
    if code == errno.ELOOP:
        return f"Not saving to {path}: its path holds a symbolic link that loops; fix or remove the link."
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"Not saving to {path}: the disk is full; free some space and save again."
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return f"Not saving to {path}: the system refused ({reason}); choose another path."


def _prepare_target(path):
    """Refuse special files and bad folders in one sentence; make the folder; clean old scratch files."""
    problem = _target_problem(path)
    if problem:
        raise HCRError(problem)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HCRError(_os_problem(path, exc)) from None
    if not path.parent.is_dir():
        raise HCRError(_os_problem(path, OSError(errno.ENOTDIR, "Not a directory")))
    clean_scratch_files(path)


def _scratch_pattern(path):
    return re.compile(re.escape(Path(path).name) + r"\.[0-9a-f]{12}\.tmp")


def clean_scratch_files(path, stale_after=3600):
    """Remove the `<name>.<12 hex>.tmp` files that a killed save of `path` left next to it.

    A save holds a lock on its scratch file while it writes, and a killed process holds none,
    so a scratch file whose lock can be taken is left over. Where there are no such locks
    (Windows), scratch files older than `stale_after` seconds count as left over. Returns the
    names removed.
    """
    path = Path(path)
    pattern = _scratch_pattern(path)
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if not pattern.fullmatch(name):
            continue
        scratch = path.parent / name
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(os.lstat(scratch).st_mode):
                continue
            if _left_over(scratch, stale_after):
                os.remove(scratch)
                removed.append(name)
    return removed


def _left_over(scratch, stale_after):
    try:
        import fcntl
    except ImportError:
        return time.time() - os.stat(scratch).st_mtime > stale_after
    fd = os.open(scratch, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a save is writing it right now
    finally:
        os.close(fd)
    return True


def _lock(fd):
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _write_atomically(path, payload):
    """torch.save to a temporary file next to `path`, fsync it, then rename it into place.

    The temporary file is created with mode 0666 minus the umask (0644 usually), like any
    file the user saves, and locked while it is written (see `clean_scratch_files`); on every
    failure, Ctrl-C included, it is removed. Errors of the system become one sentence.
    """
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
    created = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        created = True
        _lock(fd)
        with os.fdopen(fd, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        problem = _target_problem(path)  # something else may have appeared there meanwhile
        if problem:
            raise HCRError(problem)
        os.replace(tmp, path)
    except BaseException as exc:
        if created:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        if isinstance(exc, OSError):
            raise HCRError(_os_problem(path, exc)) from None
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder):
    """Make the rename itself durable, where the system allows opening a folder (not Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- Reading -----------------------------------------------------------------------------------


def _damaged(path, what):
    return HCRError(f"{path} is damaged ({what}), so its answers cannot be trusted: download or copy it again, "
                    "or retrain the model.")


def _read_bytes(path):
    """The file's bytes, after refusing what is not a regular file of a sane size."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise HCRError(f"No checkpoint at {path}: train a model in the notebook first, or pass the path of "
                       "a .pt file saved by this project.") from None
    except OSError as exc:
        raise HCRError(_read_problem(path, exc)) from None
    if not stat.S_ISREG(info.st_mode):
        raise HCRError(f"{path} is {_kind(info.st_mode)}, not a checkpoint file: pass the path of a .pt file "
                       "saved by this project.")
    if info.st_size > MAX_FILE_BYTES:
        raise HCRError(f"{path} is {info.st_size / 2**20:,.0f} MB, far more than any checkpoint of this project "
                       f"({MAX_FILE_BYTES // 2**20} MB at most): pass a .pt file saved by this project.")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise HCRError(_read_problem(path, exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise HCRError(f"{path} grew past {MAX_FILE_BYTES // 2**20} MB while it was read: pass a .pt file "
                       "saved by this project.")
    return data


def _read_problem(path, exc):
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return f"{path} cannot be read (permission denied): make it readable, or pass another checkpoint."
    if code == errno.ELOOP:
        return f"{path} is a symbolic link that loops back on itself: fix the link, or pass the checkpoint's real path."
    if code == errno.ENOTDIR:
        return f"No checkpoint at {path} (part of that path is a file, not a folder): fix the path."
    if code == errno.ENAMETOOLONG:
        return "The checkpoint's path is too long for this system: pass a shorter path."
    return f"{path} cannot be read ({getattr(exc, 'strerror', None) or type(exc).__name__}): pass another checkpoint."


_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_EOCD = struct.Struct("<4sHHHHIIH")
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")


def check_zip(data, path="The checkpoint"):
    """Every byte of a torch zip file accounted for: headers, padding, data (by CRC) and directory.

    torch writes stored (uncompressed) records one after the other, each with a local header,
    'Z' padding, its data and a data descriptor, then the central directory and its end
    records. Anything else, or any disagreement between two copies of a field, is damage.
    """
    def broken(exc):
        if isinstance(exc, zipfile.BadZipFile) and data[:2] != b"PK":
            return HCRError(f"{path} is not a checkpoint this project can read (damaged or another kind of file): "
                            "pass a .pt file saved by helpers.checkpoint.save_checkpoint.")
        return _damaged(path, f"its zip structure is broken: {exc}")

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = sorted(archive.infolist(), key=lambda info: info.header_offset)
    except Exception as exc:  # whatever zipfile trips over in a damaged file
        raise broken(exc) from None
    for info in members:  # before any CRC check inflates it: a small file may inflate to gigabytes
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise _damaged(path, f"the record {info.filename} is compressed, which torch never does")
    try:
        bad = archive.testzip()
    except Exception as exc:
        raise broken(exc) from None
    if bad is not None:
        raise _damaged(path, f"the record {bad} fails its CRC check")
    if not members:
        raise _damaged(path, "it holds no records")
    position = 0
    shared = {(i.create_version, i.create_system, i.extract_version, i.reserved, i.flag_bits, i.volume,
               i.internal_attr, i.external_attr, i.date_time, i.compress_type) for i in members}
    if len(shared) != 1:
        raise _damaged(path, "its zip records disagree on their attributes")
    directory_size = 0
    for info in members:
        name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        if info.header_offset != position or info.compress_type != zipfile.ZIP_STORED or info.comment:
            raise _damaged(path, f"the record {info.filename} is not where or what it should be")
        header = data[position : position + _LOCAL.size]
        if len(header) < _LOCAL.size:
            raise _damaged(path, "it is cut short")
        sig, version, flags, method, mtime, mdate, crc, csize, usize, name_len, extra_len = _LOCAL.unpack(header)
        date_time = ((mdate >> 9) + 1980, (mdate >> 5) & 0xF, mdate & 0x1F, mtime >> 11, (mtime >> 5) & 0x3F,
                     (mtime & 0x1F) * 2)
        start = position + _LOCAL.size
        if (sig != b"PK\x03\x04" or version != info.extract_version or flags != info.flag_bits or method != 0
                or date_time != info.date_time or data[start : start + name_len] != name):
            raise _damaged(path, f"the header of {info.filename} does not match the directory")
        sizes = (crc, csize, usize)
        if flags & 0x8:
            if sizes != (0, 0, 0):
                raise _damaged(path, f"the header of {info.filename} does not match the directory")
        elif sizes != (info.CRC, info.compress_size, info.file_size):
            raise _damaged(path, f"the header of {info.filename} does not match the directory")
        _check_padding(data[start + name_len : start + name_len + extra_len], info, path)
        position = start + name_len + extra_len + info.compress_size
        if flags & 0x8:
            position = _check_descriptor(data, position, info, path)
        directory_size += 46 + len(name) + len(info.extra) + len(info.comment)
        if info.extra and not _only_zip64(info.extra):
            raise _damaged(path, f"the directory entry of {info.filename} holds unknown fields")
    if position != archive.start_dir:
        raise _damaged(path, "there are bytes between its records and its directory")
    _check_end(data, archive.start_dir, directory_size, len(members), path)


def _check_padding(extra, info, path):
    """torch's local extra field: 'FB' blocks of 'Z' padding (and zip64 sizes), nothing else."""
    offset = 0
    while offset < len(extra):
        if offset + 4 > len(extra):
            raise _damaged(path, f"the padding of {info.filename} is broken")
        block, size = struct.unpack("<HH", extra[offset : offset + 4])
        body = extra[offset + 4 : offset + 4 + size]
        if len(body) != size or not ((block == 0x4246 and body == b"Z" * size) or block == 0x0001):
            raise _damaged(path, f"the padding of {info.filename} is broken")
        offset += 4 + size


def _only_zip64(extra):
    offset = 0
    while offset < len(extra):
        block, size = struct.unpack("<HH", extra[offset : offset + 4])
        if block != 0x0001:
            return False
        offset += 4 + size
    return offset == len(extra)


def _check_descriptor(data, position, info, path):
    """The data descriptor after a record: CRC and sizes, equal to the directory's."""
    if data[position : position + 4] == b"PK\x07\x08":
        position += 4
    for width in (4, 8):
        end = position + 4 + 2 * width
        fields = data[position:end]
        if len(fields) == end - position:
            values = struct.unpack("<I" + ("I" if width == 4 else "Q") * 2, fields)
            if values == (info.CRC, info.compress_size, info.file_size):
                return end
    raise _damaged(path, f"the data descriptor of {info.filename} does not match the directory")


def _check_end(data, start, size, count, path):
    """The end records: zip64 record and locator when present, then the end of the directory, then nothing."""
    end = start + size
    tail = data[end:]
    if tail[:4] == b"PK\x06\x06":
        if len(tail) < _ZIP64_EOCD.size + _ZIP64_LOCATOR.size + _EOCD.size:
            raise _damaged(path, "its end records are cut short")
        sig, rec_size, made, needed, disk, cd_disk, on_disk, total, cd_size, cd_start = _ZIP64_EOCD.unpack(
            tail[: _ZIP64_EOCD.size])
        if (rec_size != _ZIP64_EOCD.size - 12 or made & 0xFF > 63 or not 45 <= needed <= 63 or disk or cd_disk
                or on_disk != count or total != count or cd_size != size or cd_start != start):
            raise _damaged(path, "its zip64 end record does not match its directory")
        locator = tail[_ZIP64_EOCD.size : _ZIP64_EOCD.size + _ZIP64_LOCATOR.size]
        sig, disk, offset, disks = _ZIP64_LOCATOR.unpack(locator)
        if sig != b"PK\x06\x07" or disk or offset != end or disks != 1:
            raise _damaged(path, "its zip64 locator does not match its directory")
        tail = tail[_ZIP64_EOCD.size + _ZIP64_LOCATOR.size :]
        wide = True
    else:
        wide = False
    if len(tail) != _EOCD.size:
        raise _damaged(path, "it has extra bytes after its directory")
    sig, disk, cd_disk, on_disk, total, cd_size, cd_start, comment = _EOCD.unpack(tail)

    def agrees(value, expected, full):
        return value == expected or (wide and value == full)

    if (sig != b"PK\x05\x06" or disk or cd_disk or comment or not agrees(on_disk, count, 0xFFFF)
            or not agrees(total, count, 0xFFFF) or not agrees(cd_size, size, 0xFFFFFFFF)
            or not agrees(cd_start, start, 0xFFFFFFFF)):
        raise _damaged(path, "its end record does not match its directory")


def read_checkpoint(path):
    """The checkpoint's contents (a dict), checked to come from this project and to be intact.

    Before anything is built: the file is a regular file of a sane size, every byte of its
    zip is intact, the fields have the right types and sizes, the weights are real numbers,
    and their SHA-256 matches the one stored (files saved before hashes have only the CRCs).
    """
    path = Path(path)
    data = _read_bytes(path)
    check_zip(data, path)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except MemoryError:
        raise HCRError(f"{path} needs more memory than is free to load: free some memory, or pass another "
                       "checkpoint.") from None
    except Exception:
        raise HCRError(
            f"{path} is not a checkpoint this project can read (damaged or another kind of file): "
            "pass a .pt file saved by helpers.checkpoint.save_checkpoint."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise HCRError(
            f"{path} was not saved by this project (no '{FORMAT}' marker): pass a .pt file "
            "saved by helpers.checkpoint.save_checkpoint."
        )
    _check_fields(path, payload)
    return payload


def _check_fields(path, payload):
    """Types and sizes of every field any model needs, and the weights' hash."""
    def refuse(what):
        raise HCRError(f"{path} {what}, so it cannot be used: retrain the model or use the shipped checkpoint.")

    model = payload.get("model")
    if not isinstance(model, str) or not 0 < len(model) <= 64:
        refuse("does not name its model")
    names = payload.get("class_names")
    if not isinstance(names, (list, tuple)) or not 0 < len(names) <= MAX_CLASSES:
        refuse(f"does not list between 1 and {MAX_CLASSES} class names")
    if not all(isinstance(n, str) and 0 < len(n) <= MAX_CLASS_NAME for n in names) or len(set(names)) != len(names):
        refuse("has class names that are not distinct short strings")
    count = payload.get("num_classes", len(names))
    if isinstance(count, bool) or count != len(names):
        refuse(f"says it has {count!r} classes but names {len(names)}")
    for key in ("extra", "metrics", "recipe", "preprocessing"):
        if key in payload and not isinstance(payload[key], dict) and not (key != "extra" and payload[key] is None):
            refuse(f"holds a {type(payload[key]).__name__} where its '{key}' dictionary should be")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not 0 < len(state) <= MAX_TENSORS:
        refuse("holds no usable weights")
    for key, value in state.items():
        if not isinstance(key, str) or not torch.is_tensor(value):
            refuse("holds weights that are not named tensors")
        if value.dtype not in _REAL_DTYPES or value.layout != torch.strided or value.is_quantized:
            refuse(f"holds the weight '{key}' as {value.dtype}, not real numbers")
    expected = payload.get(WEIGHTS_HASH)
    if expected is not None and (not isinstance(expected, str) or weights_sha256(state) != expected):
        raise _damaged(path, "its weights do not match the SHA-256 stored with them")
    refuse_non_finite(path, state)
    for key, value in state.items():
        if key.endswith("running_var") and value.is_floating_point() and (value < 0).any():
            refuse(f"holds a negative variance in '{key}'")


def refuse_non_finite(path, state):
    """Weights holding NaN or infinity give meaningless answers: refuse them when loading (any model)."""
    stretched = _stretched(state) if isinstance(state, dict) else None
    if stretched is not None:  # checking it would touch every claimed element (gigabytes from a small file)
        raise HCRError(f"{path} is damaged: its tensor '{stretched}' claims more numbers than the file stores; "
                       "retrain the model or use the shipped checkpoint.")
    bad = _not_finite(state) if isinstance(state, dict) else None
    if bad is not None:
        raise HCRError(
            f"{path} holds weights that are not finite numbers (NaN or infinity in '{bad}'), so its answers "
            "would be meaningless: retrain the model or use the shipped checkpoint."
        )


def class_bias(logit_bias, digit_prior, count, where):
    """The one per-class shift of the logits: `logit_bias` plus `digit_prior` on the digits (or None).

    Both come from files: each must be finite and at most MAX_SHIFT in size, the bias exactly
    `count` long. Files saved before this version stored the prior apart; it is added here.
    """
    if not _number(digit_prior) or abs(digit_prior) > MAX_SHIFT:
        raise HCRError(f"The digit prior stored with {where} is {digit_prior!r}, not a finite number from "
                       f"-{MAX_SHIFT:g} to {MAX_SHIFT:g}: retrain or use the shipped checkpoint.")
    if logit_bias is None and not digit_prior:
        return None
    if logit_bias is None:
        values = [0.0] * count
    else:
        if hasattr(logit_bias, "tolist") and not isinstance(logit_bias, (list, tuple)):  # a tensor or an array
            logit_bias = logit_bias.tolist()
        if not isinstance(logit_bias, (list, tuple)) or len(logit_bias) != count or not all(
                _number(v) and abs(v) <= MAX_SHIFT for v in logit_bias):
            raise HCRError(f"The class-prior correction stored with {where} is not {count} finite numbers from "
                           f"-{MAX_SHIFT:g} to {MAX_SHIFT:g}: retrain or use the shipped checkpoint.")
        values = [float(v) for v in logit_bias]
    bias = torch.tensor(values, dtype=torch.float32)
    bias[: min(NUM_DIGITS, count)] += float(digit_prior)
    return bias


def _number(value):
    """A finite real number (int, float or numpy scalar), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def stored_bias(payload, where="the checkpoint"):
    """The per-class logit shift a character checkpoint stores (old files: with its separate digit prior)."""
    extra = payload.get("extra") or {}
    if not isinstance(extra, dict):
        raise HCRError(f"{where} holds a {type(extra).__name__} where its 'extra' dictionary should be: retrain "
                       "the model or use the shipped checkpoint.")
    return class_bias(extra.get("logit_bias"), extra.get("digit_prior", 0.0), len(payload["class_names"]), where)


def _check_character_classes(path, names):
    """A character model predicts characters of this project: 0-9, A-Z and a-z, each once."""
    known = set(CASE_CLASS_NAMES)
    if len(names) > len(known) or not all(n in known for n in names):
        raise HCRError(f"{path} predicts classes that are not this project's characters (0-9, A-Z, a-z): "
                       "retrain the model or use the shipped checkpoint.")


def load_checkpoint(path=None, model_name=None, class_names=None, device="cpu"):
    """Rebuild the model stored in a checkpoint; returns (model in eval mode, checkpoint dict).

    `model_name` and `class_names` state what the caller expects (None: whatever the file
    holds): a checkpoint for another model or another set of classes is refused with a clear
    sentence. Every field is checked before the model is built; weights that are not finite
    numbers are refused too.
    """
    path = Path(path) if path is not None else default_checkpoint()
    payload = read_checkpoint(path)
    stored = payload.get("model")
    if model_name is not None and stored != model_name:
        raise HCRError(f"{path} holds a '{stored}' model, not '{model_name}': load it with model_name='{stored}'.")
    if stored not in MODELS:
        raise HCRError(f"{path} holds a '{str(stored)[:64]}' model, not a character model ({', '.join(MODELS)}): "
                       "if it reads lines, use `python -m helpers.predict --text` or Predictor(text=True).")
    names = payload["class_names"]
    _check_character_classes(path, names)
    if class_names is not None and list(names) != list(class_names):
        raise HCRError(
            f"{path} was trained for {describe_classes(names)}, not the {describe_classes(class_names)} "
            "asked for: use a checkpoint trained for those classes."
        )
    stored_bias(payload, path)
    state = payload["state_dict"]
    model = build_model(stored, num_classes=len(names))
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError):
        raise HCRError(
            f"{path} says it holds a '{stored}' model, but its weights do not fit that model: "
            "the file was edited or saved by another version; retrain or use the shipped checkpoint."
        ) from None
    model.to(device).eval()
    return model, payload
