"""Honest numbers: accuracy per source, strict and look-alike tolerant, per class, and confusions."""

import numpy as np
import torch

from .labels import CLASS_NAMES, EMNIST, LOOKALIKE_KEY, MNIST, NUM_CLASSES, NUM_DIGITS

_KEY = torch.tensor(LOOKALIKE_KEY)


def _pct(mask):
    return round(100.0 * mask.float().mean().item(), 3) if mask.numel() else float("nan")


def with_digit_prior(logits, prior):
    """Shift the decision towards digits by `prior` (added to the digit logits).

    With every image framed alike, a lone stick or ring is as much "1"/"l" or "0"/"o" as the
    pen made it; the model's guess then follows the training counts. The prior states how we
    want such ties broken, without retraining (see the notebook's section on real input).
    """
    logits = torch.as_tensor(logits, dtype=torch.float32).clone()
    logits[:, :NUM_DIGITS] += prior
    return logits


def choose_digit_prior(digit_logits, digit_labels, target=98.0, grid=np.arange(0, 2.01, 0.1)):
    """The smallest digit prior at which `target` percent of digits are read as the right digit.

    Chosen on held-out digits framed another way (never on test files). Returns (prior, curve)
    with curve = [(prior, strict accuracy %), ...].
    """
    labels = torch.as_tensor(digit_labels)
    curve = []
    for prior in grid:
        pred = with_digit_prior(digit_logits, float(prior)).argmax(1)
        curve.append((round(float(prior), 2), 100.0 * (pred == labels).float().mean().item()))
    chosen = next((p for p, acc in curve if acc >= target), curve[-1][0])
    return chosen, curve


def summarise(logits, labels, sources):
    """Accuracy in percent, as a flat dict.

    - `digits_acc`, `letters_acc`, `overall_acc`: strict, the model choosing among all 36 classes.
    - `*_tolerant_acc`: counting look-alikes (0/O, 1/I/L, 2/Z, 5/S) as right.
    - `digits_10way_acc`, `letters_26way_acc`: the model restricted to the classes of the source,
      as a digits-only or letters-only model is measured (and as published EMNIST Letters
      results are), to see what merging costs.
    """
    logits = torch.as_tensor(logits)
    labels = torch.as_tensor(labels)
    sources = torch.as_tensor(sources)
    pred = logits.argmax(1)
    right = pred == labels
    tolerant = _KEY[pred] == _KEY[labels]
    digit_mask, letter_mask = sources == MNIST, sources == EMNIST
    out = {
        "digits_acc": _pct(right[digit_mask]),
        "letters_acc": _pct(right[letter_mask]),
        "overall_acc": _pct(right),
        "digits_tolerant_acc": _pct(tolerant[digit_mask]),
        "letters_tolerant_acc": _pct(tolerant[letter_mask]),
        "overall_tolerant_acc": _pct(tolerant),
    }
    if digit_mask.any():
        out["digits_10way_acc"] = _pct(logits[digit_mask, :NUM_DIGITS].argmax(1) == labels[digit_mask])
    if letter_mask.any():
        out["letters_26way_acc"] = _pct(
            logits[letter_mask, NUM_DIGITS:].argmax(1) + NUM_DIGITS == labels[letter_mask]
        )
    out["test_images"] = {"digits": int(digit_mask.sum()), "letters": int(letter_mask.sum())}
    return out


def per_class_report(labels, pred, as_dict=False):
    """scikit-learn's precision / recall / F1 table for the 36 classes."""
    from sklearn.metrics import classification_report

    return classification_report(
        np.asarray(labels), np.asarray(pred), labels=list(range(NUM_CLASSES)),
        target_names=list(CLASS_NAMES), digits=3, zero_division=0, output_dict=as_dict,
    )


def confusion_counts(labels, pred):
    """36x36 counts, rows = true class, columns = predicted class."""
    labels = np.asarray(labels)
    pred = np.asarray(pred)
    return np.bincount(labels * NUM_CLASSES + pred, minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def normalise_rows(counts):
    """Each row as a fraction of that true class, so rare classes are as readable as common ones."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts, dtype=float), where=totals > 0)


def most_confused(counts, k=8):
    """The k pairs (a, b) with the most mistakes in either direction, as dicts, worst first."""
    pairs = []
    for a in range(NUM_CLASSES):
        for b in range(a + 1, NUM_CLASSES):
            n = int(counts[a, b] + counts[b, a])
            if n:
                pairs.append({"a": CLASS_NAMES[a], "b": CLASS_NAMES[b], "a_as_b": int(counts[a, b]),
                              "b_as_a": int(counts[b, a]), "total": n})
    return sorted(pairs, key=lambda p: -p["total"])[:k]


def summary_table(summaries):
    """A pandas table comparing `summarise` results: {name: summary} -> rows digits/letters/overall."""
    import pandas as pd

    kinds = {"strict": ("digits_acc", "letters_acc", "overall_acc"),
             "look-alikes OK": ("digits_tolerant_acc", "letters_tolerant_acc", "overall_tolerant_acc"),
             "10-way / 26-way": ("digits_10way_acc", "letters_26way_acc", None)}
    columns = {(name, kind): [s.get(k, float("nan")) if k else float("nan") for k in keys]
               for name, s in summaries.items() for kind, keys in kinds.items()}
    return pd.DataFrame(columns, index=["digits (MNIST test)", "letters (EMNIST test)", "overall"]).round(2)
