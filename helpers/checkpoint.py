"""Save and load trained models together with everything needed to use them correctly.

A checkpoint records the model's name, the class names, how inputs must be prepared and the
accuracy it reached, so a wrong file fails with a clear sentence instead of silent nonsense.
"""

import contextlib
import json
import os
import secrets
from pathlib import Path

import torch

from .errors import HCRError
from .framing import BOX, CENTRE, SIZE
from .labels import CASE_CLASS_NAMES, CLASS_NAMES
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


def _not_finite(state_dict):
    """The name of the first tensor holding NaN or infinity, or None when all are finite."""
    for key, value in state_dict.items():
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
            return key
    return None


def save_checkpoint(path, model, model_name, metrics=None, recipe=None, extra=None, class_names=CLASS_NAMES):
    """Write atomically: an interrupted save never destroys the previous file nor leaves a part behind.

    `class_names` are the model's outputs in order (CLASS_NAMES or CASE_CLASS_NAMES); they are
    recorded with how inputs are prepared, so `load_checkpoint` can refuse the wrong use.
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
        "format": FORMAT,
        "model": model_name,
        "class_names": list(class_names),
        "num_classes": len(class_names),
        "preprocessing": _plain(PREPROCESSING),
        "metrics": _plain(metrics),
        "recipe": _plain(recipe),
        "torch_version": str(torch.__version__),
        "extra": _plain(extra),
        "state_dict": state,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, payload)
    return path


def save_payload(path, payload):
    """Save a checkpoint dict of any model (`state_dict` and JSON-like fields) with the project's safe write."""
    path = Path(path)
    state = payload.get("state_dict") or {}
    bad = _not_finite(state)
    if bad is not None:
        raise HCRError(f"Not saving {path}: the weight '{bad}' holds NaN or infinity; training diverged, train again.")
    payload = {key: (_plain(value) if isinstance(value, dict) and key != "state_dict" else value)
               for key, value in payload.items()}
    payload["format"] = FORMAT
    payload["torch_version"] = str(torch.__version__)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, payload)
    return path


def _write_atomically(path, payload):
    """torch.save to a temporary file next to `path`, fsync it, then rename it into place.

    The temporary file is created with mode 0666 minus the umask (0644 usually), like any
    file the user saves; on every failure, Ctrl-C included, it is removed.
    """
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
    created = False
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        created = True
        with os.fdopen(fd, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                os.remove(tmp)
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


def read_checkpoint(path):
    """The checkpoint's contents (a dict), checked to come from this project."""
    path = Path(path)
    if not path.is_file():
        raise HCRError(
            f"No checkpoint at {path}: train a model in the notebook first, or pass the path of "
            "a .pt file saved by this project."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
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
    return payload


def refuse_non_finite(path, state):
    """Weights holding NaN or infinity give meaningless answers: refuse them when loading (any model)."""
    bad = _not_finite(state) if isinstance(state, dict) else None
    if bad is not None:
        raise HCRError(
            f"{path} holds weights that are not finite numbers (NaN or infinity in '{bad}'), so its answers "
            "would be meaningless: retrain the model or use the shipped checkpoint."
        )


def load_checkpoint(path=None, model_name=None, class_names=None, device="cpu"):
    """Rebuild the model stored in a checkpoint; returns (model in eval mode, checkpoint dict).

    `model_name` and `class_names` state what the caller expects (None: whatever the file
    holds): a checkpoint for another model or another set of classes is refused with a clear
    sentence. Weights that are not finite numbers are refused too.
    """
    path = Path(path) if path is not None else default_checkpoint()
    payload = read_checkpoint(path)
    stored = payload.get("model")
    if model_name is not None and stored != model_name:
        raise HCRError(f"{path} holds a '{stored}' model, not '{model_name}': load it with model_name='{stored}'.")
    if stored == "crnn":
        raise HCRError(f"{path} holds a line reader (a CRNN), not a character model: read lines with it "
                       "(`python -m helpers.predict --text`, or Predictor(text=True)).")
    if stored not in MODELS:
        raise HCRError(f"{path} holds an unknown model '{stored}': use a checkpoint of one of {', '.join(MODELS)}.")
    names = payload.get("class_names")
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise HCRError(f"{path} does not say which classes its model predicts: retrain or use the shipped checkpoint.")
    if class_names is not None and list(names) != list(class_names):
        raise HCRError(
            f"{path} was trained for {describe_classes(names)}, not the {describe_classes(class_names)} "
            "asked for: use a checkpoint trained for those classes."
        )
    state = payload.get("state_dict")
    refuse_non_finite(path, state)
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
