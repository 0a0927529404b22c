"""Save and load trained models together with everything needed to use them correctly.

A checkpoint records the model's name, the class names, how inputs must be prepared and the
accuracy it reached, so a wrong file fails with a clear sentence instead of silent nonsense.
"""

import json
import os
import tempfile
from pathlib import Path

import torch

from .errors import HCRError
from .labels import CLASS_NAMES
from .model import MODELS, build_model
from .framing import BOX, CENTRE, SIZE
from .paths import CHECKPOINTS, RUNS

FORMAT = "hcr-checkpoint/1"
SHIPPED = CHECKPOINTS / "default.pt"  # trained by a full run, kept in git
TRAINED = RUNS / "default.pt"  # what the notebook trains on your machine

PREPROCESSING = {
    "size": SIZE,
    "box": BOX,
    "centre_of_mass": CENTRE,
    "framing": "centred",
    "values": "float in [0, 1], bright ink on black, upright",
}


def default_checkpoint():
    """Your own trained model if the notebook has made one, else the one shipped in the repo."""
    return TRAINED if TRAINED.is_file() else SHIPPED


def _plain(values):
    """JSON-like values only, so the file loads with torch.load(weights_only=True)."""
    return json.loads(json.dumps(dict(values or {}), default=str))


def save_checkpoint(path, model, model_name, metrics=None, recipe=None, preprocessing=None, extra=None):
    """Write atomically: an interrupted save never destroys the previous file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model": model_name,
        "class_names": list(CLASS_NAMES),
        "num_classes": len(CLASS_NAMES),
        "preprocessing": _plain(preprocessing or PREPROCESSING),
        "metrics": _plain(metrics),
        "recipe": _plain(recipe),
        "torch_version": str(torch.__version__),
        "extra": _plain(extra),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


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


def load_checkpoint(path=None, model_name=None, class_names=CLASS_NAMES, device="cpu"):
    """Rebuild the model stored in a checkpoint; returns (model in eval mode, checkpoint dict).

    `model_name` and `class_names` state what the caller expects: a checkpoint for another
    model or another set of classes is refused with a clear sentence.
    """
    path = Path(path) if path is not None else default_checkpoint()
    payload = read_checkpoint(path)
    stored = payload.get("model")
    if model_name is not None and stored != model_name:
        raise HCRError(f"{path} holds a '{stored}' model, not '{model_name}': load it with model_name='{stored}'.")
    if stored not in MODELS:
        raise HCRError(f"{path} holds an unknown model '{stored}': use a checkpoint of one of {', '.join(MODELS)}.")
    if class_names is not None and list(payload.get("class_names", [])) != list(class_names):
        got = "".join(payload.get("class_names", []))
        raise HCRError(
            f"{path} was trained for the classes '{got}', not the 36 classes 0-9, A-Z that this "
            "project predicts: use a checkpoint trained on the merged set."
        )
    model = build_model(stored, num_classes=len(payload["class_names"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError):
        raise HCRError(
            f"{path} says it holds a '{stored}' model, but its weights do not fit that model: "
            "the file was edited or saved by another version; retrain or use the shipped checkpoint."
        ) from None
    model.to(device).eval()
    return model, payload
