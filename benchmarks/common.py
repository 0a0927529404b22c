"""What the benchmark scripts share: train a recipe, measure it on the test files and on
characters from elsewhere, and write the record the notebook and README quote."""

import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import data, evaluation, model, records, training  # noqa: E402



def machine():
    return {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": str(torch.__version__), "bf16": training.cpu_has_native_bf16()}


def train_and_measure(model_name, recipe, train_set, test_set, seed=0, num_classes=None, label_offset=0,
                      model_options=None):
    """Train one model; return it with its test metrics (strict, tolerant, 10-/26-way) and time."""
    net = model.build_model(model_name, num_classes=num_classes or 36, seed=seed, **(model_options or {}))
    if label_offset:  # a specialist: its own label range, 0-based
        train_set = data.CharacterSet(train_set.images, train_set.labels - label_offset, train_set.sources)
    history = training.train(net, train_set, None, recipe, seed=seed, progress=False, log=None)
    logits = training.predict_logits(net, test_set.to_float())
    if label_offset or (num_classes and num_classes != 36):
        # Put a specialist's logits into the 36-class layout (other classes impossible).
        full = torch.full((len(logits), 36), -1e9)
        full[:, label_offset : label_offset + logits.shape[1]] = logits
        logits = full
    metrics = evaluation.summarise(logits, test_set.labels, test_set.sources)
    metrics["train_seconds"] = history.train_seconds
    return net, logits, metrics


def generalisation_images(seed=0):
    """Characters from elsewhere, prepared as a user's files would be; cached under build/."""
    cache = ROOT / "build" / f"generalisation-{seed}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return z["images"], z["labels"], [str(n) for n in z["names"]], z["groups"]
    import generalisation  # noqa: E402  (benchmarks/ is on the path when scripts run)

    from helpers.labels import CLASS_NAMES
    from helpers.preprocess import prepare

    sets = generalisation.build_sets(ROOT / "build" / "generalisation", generalisation.install_fonts(ROOT / "build" / "fonts"), seed=seed)
    images, labels, groups = [], [], []
    names = list(sets)
    for g, (name, items) in enumerate(sets.items()):
        for path, label in items:
            images.append(prepare(path).image)
            labels.append(CLASS_NAMES.index(label))
            groups.append(g)
    np.savez(cache, images=np.stack(images), labels=np.array(labels), names=np.array(names), groups=np.array(groups))
    return np.stack(images), np.array(labels), names, np.array(groups)


def score_generalisation(logits, labels, names, groups):
    """Strict and look-alike tolerant accuracy per set and for all digits / all characters."""
    from helpers.labels import LOOKALIKE_KEY

    key = np.array(LOOKALIKE_KEY)
    pred = np.asarray(logits).argmax(1)
    out = {}

    def acc(mask):
        return {"images": int(mask.sum()), "strict_acc": round(100 * float((pred[mask] == labels[mask]).mean()), 2),
                "tolerant_acc": round(100 * float((key[pred[mask]] == key[labels[mask]]).mean()), 2)}

    for g, name in enumerate(names):
        out[name] = acc(groups == g)
    out["ALL digits from other sources"] = acc(np.isin(groups, [g for g, n in enumerate(names) if n.startswith("digits")]))
    out["ALL handwriting-style characters"] = acc(np.isin(groups, [g for g, n in enumerate(names) if n.startswith("characters")]))
    return out


def logits_of(net, images):
    return training.predict_logits(net, torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 28, 28))


def write(name, payload):
    print(f"wrote {records.write(name, {'machine': machine(), **payload})}")
