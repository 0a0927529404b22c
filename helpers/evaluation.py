"""Honest numbers: accuracy per source, strict and look-alike tolerant, per class, and confusions.

`summarise` is the one scorer: the notebook, the training loop, the tests and the benchmarks
all measure through it, so a number means the same thing wherever it is quoted.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .labels import (
    CASE_CLASS_NAMES,
    CASE_NUM_CLASSES,
    CLASS_NAMES,
    EMNIST,
    LOOKALIKE_KEY,
    MNIST,
    NUM_CLASSES,
    NUM_DIGITS,
    TO_36,
    TO_47,
)

_KEY = torch.tensor(LOOKALIKE_KEY)


def _pct(mask):
    return round(100.0 * mask.float().mean().item(), 3) if mask.numel() else float("nan")


# --- Running a model ---------------------------------------------------------------------------


@torch.no_grad()
def predict_logits(model, images, device=None, batch_size=1024):
    """Logits for float images (N, 1, 28, 28), computed in batches, returned on the CPU."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [model(images[start : start + batch_size].to(device)).float().cpu()
           for start in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, NUM_CLASSES)


def evaluate(model, dataset, device=None, images=None, loss_fn=None):
    """Mean loss and accuracy in percent of a model on a CharacterSet, as a flat dict.

    A 36-class model gets everything `summarise` measures. A model with another number of
    classes gets `overall_acc` (prediction == label), and `digits_acc` / `letters_acc` for the
    sources its set holds. `images` may hold `dataset.to_float()` already (saves converting
    the same test set at every evaluation); `loss_fn(logits, labels)` defaults to cross-entropy.
    """
    images = dataset.to_float() if images is None else images
    logits = predict_logits(model, images, device)
    loss = (loss_fn or F.cross_entropy)(logits, dataset.labels).item()
    if logits.shape[1] == NUM_CLASSES:
        scores = summarise(logits, dataset.labels, dataset.sources)
        scores.pop("test_images")
        return {"loss": loss, **scores}
    right = hits(logits, dataset.labels, loss_fn)
    out = {"loss": loss, "overall_acc": _pct(right)}
    for key, source in (("digits_acc", MNIST), ("letters_acc", EMNIST)):
        mask = dataset.sources == source
        if mask.any():
            out[key] = _pct(right[mask])
    return out


def hits(logits, labels, loss_fn=None):
    """Which predictions are right: the label's class, or any class of its set when `loss_fn`
    was made by `training.target_set_loss` (a label that stands for several classes)."""
    pred = logits.argmax(1)
    table = getattr(loss_fn, "target_sets", None)
    return pred == labels if table is None else table.to(pred.device)[labels, pred]


# --- Scoring -----------------------------------------------------------------------------------


def summarise(scores, labels, sources):
    """Accuracy in percent, as a flat dict, for the 36 classes.

    `scores` are logits (N, 36), or predicted class indices (N,) when only the answers are
    known (for example from the command line's JSON output; -1 for no answer, counted wrong).
    - `digits_acc`, `letters_acc`, `overall_acc`: strict, the model choosing among all 36 classes.
    - `*_tolerant_acc`: counting look-alikes (0/O, 1/I/L, 2/Z, 5/S) as right.
    - `digits_10way_acc`, `letters_26way_acc` (logits only): the model restricted to the classes
      of the source, as a digits-only or letters-only model is measured (and as published
      EMNIST Letters results are), to see what merging costs.
    """
    scores = torch.as_tensor(scores)
    labels = torch.as_tensor(labels)
    sources = torch.as_tensor(sources)
    pred = scores if scores.ndim == 1 else scores.argmax(1)
    right = pred == labels
    tolerant = (pred >= 0) & (_KEY[pred.clamp(min=0)] == _KEY[labels])
    digit_mask, letter_mask = sources == MNIST, sources == EMNIST
    out = {
        "digits_acc": _pct(right[digit_mask]),
        "letters_acc": _pct(right[letter_mask]),
        "overall_acc": _pct(right),
        "digits_tolerant_acc": _pct(tolerant[digit_mask]),
        "letters_tolerant_acc": _pct(tolerant[letter_mask]),
        "overall_tolerant_acc": _pct(tolerant),
    }
    if scores.ndim == 2 and digit_mask.any():
        out["digits_10way_acc"] = _pct(scores[digit_mask, :NUM_DIGITS].argmax(1) == labels[digit_mask])
    if scores.ndim == 2 and letter_mask.any():
        restricted = scores[letter_mask, NUM_DIGITS:].argmax(1) + NUM_DIGITS
        out["letters_26way_acc"] = _pct(restricted == labels[letter_mask])
    out["test_images"] = {"digits": int(digit_mask.sum()), "letters": int(letter_mask.sum())}
    return out


def summarise_case(scores, labels):
    """Accuracy in percent of a case-sensitive (62-class) model, as a flat dict.

    - `case_acc`: 62-way, the right character in the right case;
    - `bymerge_acc`: 47-way, as EMNIST's ByMerge split counts (the case of c i j k l m o p s u v
      w x y z is not asked for, since the shape alone cannot tell it);
    - `nocase_acc`: the right character in any case (the 36-class question);
    - `macro_*`: the mean over classes of each class's accuracy, because ByClass is very
      unbalanced (a model that never says "f" loses little overall, but a lot here);
    - `digits_acc`, `upper_acc`, `lower_acc`: per kind of character, 62-way.
    `scores` are logits (N, 62) or predicted indices (N,); `labels` are 0..61.
    """
    scores, labels = torch.as_tensor(scores), torch.as_tensor(labels)
    pred = scores if scores.ndim == 1 else scores.argmax(1)
    to36, to47 = torch.tensor(TO_36), torch.tensor(TO_47)
    out = {}
    for key, fold in (("case", None), ("bymerge", to47), ("nocase", to36)):
        right = pred == labels if fold is None else fold[pred.clamp(min=0)] == fold[labels]
        right &= pred >= 0
        out[f"{key}_acc"] = _pct(right)
        present = [c for c in range(CASE_NUM_CLASSES) if (labels == c).any()]
        out[f"macro_{key}_acc"] = round(float(np.mean([_pct(right[labels == c]) for c in present])), 3)
    right = pred == labels
    for key, lo, hi in (("digits", 0, NUM_DIGITS), ("upper", NUM_DIGITS, NUM_CLASSES), ("lower", NUM_CLASSES, 62)):
        out[f"{key}_acc"] = _pct(right[(labels >= lo) & (labels < hi)])
    out["test_images"] = len(labels)
    return out


def per_class_case(labels, pred):
    """A table of each of the 62 classes: test images, accuracy (62-way) and accuracy in any case."""
    import pandas as pd

    labels, pred = np.asarray(labels), np.asarray(pred)
    to36 = np.asarray(TO_36)
    rows = []
    for c, name in enumerate(CASE_CLASS_NAMES):
        mask = labels == c
        n = int(mask.sum())
        rows.append({"class": name, "test images": n,
                     "accuracy %": 100 * float((pred[mask] == c).mean()) if n else float("nan"),
                     "any case %": 100 * float((to36[pred[mask]] == to36[c]).mean()) if n else float("nan")})
    return pd.DataFrame(rows).set_index("class").round(2)


def case_swaps(labels, pred):
    """For each letter a-z: the share of its capitals read as its small letter, and the reverse.

    Returns a (2, 26) array in percent: row 0 capital -> small, row 1 small -> capital. Letters
    whose two rates are high have one shape for both cases; that is what ByMerge merges.
    """
    labels, pred = np.asarray(labels), np.asarray(pred)
    out = np.full((2, 26), np.nan)
    for k in range(26):
        upper, lower = NUM_DIGITS + k, NUM_CLASSES + k
        for row, (true, other) in enumerate(((upper, lower), (lower, upper))):
            mask = labels == true
            if mask.any():
                out[row, k] = 100.0 * float((pred[mask] == other).mean())
    return out


def summary_table(summaries):
    """A pandas table comparing `summarise` results: {name: summary} -> rows digits/letters/overall."""
    import pandas as pd

    kinds = {"strict": ("digits_acc", "letters_acc", "overall_acc"),
             "look-alikes OK": ("digits_tolerant_acc", "letters_tolerant_acc", "overall_tolerant_acc"),
             "10-way / 26-way": ("digits_10way_acc", "letters_26way_acc", None)}
    columns = {(name, kind): [s.get(k, float("nan")) if k else float("nan") for k in keys]
               for name, s in summaries.items() for kind, keys in kinds.items()}
    return pd.DataFrame(columns, index=["digits (MNIST test)", "letters (EMNIST test)", "overall"]).round(2)


def fmt_mean_std(stat, digits=1):
    """'mean ± std' of a recorded statistic ({"mean": .., "std": ..}), or 'n/a' when there is none."""
    if not stat:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


# --- Per class and confusions ------------------------------------------------------------------


def per_class_report(labels, pred, as_dict=False, class_names=CLASS_NAMES):
    """scikit-learn's precision / recall / F1 table, one row per class."""
    from sklearn.metrics import classification_report

    return classification_report(
        np.asarray(labels), np.asarray(pred), labels=list(range(len(class_names))),
        target_names=list(class_names), digits=3, zero_division=0, output_dict=as_dict,
    )


def confusion_counts(labels, pred, class_names=CLASS_NAMES, normalize=None):
    """Counts of (true class, predicted class): rows are the true class, columns the prediction.

    normalize="true" gives each row as a fraction of its true class (scikit-learn's option), so
    rare classes read as clearly as common ones in the plot.
    """
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.asarray(labels), np.asarray(pred), labels=list(range(len(class_names))),
                            normalize=normalize)


def most_confused(counts, k=8, class_names=CLASS_NAMES):
    """The k pairs (a, b) with the most mistakes in either direction, as dicts, worst first."""
    pairs = []
    for a in range(len(class_names)):
        for b in range(a + 1, len(class_names)):
            n = int(counts[a, b] + counts[b, a])
            if n:
                pairs.append({"a": class_names[a], "b": class_names[b], "a_as_b": int(counts[a, b]),
                              "b_as_a": int(counts[b, a]), "total": n})
    return sorted(pairs, key=lambda p: -p["total"])[:k]


# --- The digit prior ---------------------------------------------------------------------------


def with_digit_prior(logits, prior):
    """Shift the decision towards digits by `prior` (added to the digit logits).

    With every image framed alike, a lone stick or ring is as much "1"/"l" or "0"/"o" as the
    pen made it; the model's guess then follows the training counts. The prior states how we
    want such ties broken, without retraining (see the notebook's section on real input).
    """
    logits = torch.as_tensor(logits, dtype=torch.float32).clone()
    logits[:, :NUM_DIGITS] += prior
    return logits


@dataclass(frozen=True)
class DigitPrior:
    """The chosen prior, the digit accuracy it was chosen to reach, and what each prior tried gives.

    `curve` holds one row per prior tried: (prior, % of validation digits framed another way
    read as the right digit, % of validation letters read as the right letter), both strict.
    """

    value: float
    target: float
    curve: tuple

    CURVE_COLUMNS = ("digit prior", "digits framed another way, strict (%)", "validation letters, strict (%)")


def digits_framed_another_way(dataset):
    """The set's MNIST digits framed the EMNIST way, then prepared as a user's picture would be."""
    from . import data
    from .framing import emnist_framing

    digits = dataset.from_source(MNIST)
    other = torch.from_numpy(emnist_framing(digits.images.numpy()))
    return data.reframe(data.CharacterSet(other, digits.labels, digits.sources))


PRIOR_GRID = tuple(round(0.1 * k, 1) for k in range(21))  # 0.0, 0.1, ..., 2.0


def choose_digit_prior(model, val_set, target=98.0, grid=PRIOR_GRID):
    """The smallest digit prior at which `target` percent of digits framed another way are read right.

    Chosen on validation digits (never on test files) framed the EMNIST way, since a model that
    reads only its own framing well would otherwise look fine. The letters of `val_set` show
    what each prior costs. If no prior on the grid reaches the target, the largest is chosen.
    """
    digits = digits_framed_another_way(val_set)
    letters = val_set.from_source(EMNIST)
    digit_logits = predict_logits(model, digits.to_float())
    letter_logits = predict_logits(model, letters.to_float())
    curve = []
    for prior in grid:
        digit_acc = summarise(with_digit_prior(digit_logits, prior), digits.labels, digits.sources)["digits_acc"]
        letter_acc = summarise(with_digit_prior(letter_logits, prior), letters.labels, letters.sources)["letters_acc"]
        curve.append((float(prior), digit_acc, letter_acc))
    value = next((p for p, acc, _ in curve if acc >= target), curve[-1][0])
    return DigitPrior(value=value, target=target, curve=tuple(curve))


# --- A class bias chosen on input that looks real -------------------------------------------------


@dataclass(frozen=True)
class ClassBias:
    """How a model breaks ties between classes, chosen on input that looks real (the dev fonts).

    `digit_prior` is added to the digit logits; `prior_correction` (tau) divides out that power
    of the training set's class frequencies (0: none, 1: every class equally likely, as on a
    page where a user writes any character). `bias` is the resulting shift per class, which
    the Predictor adds to the logits. `grid` holds (digit prior, correction, dev score) rows.
    """

    digit_prior: float
    prior_correction: float
    bias: tuple
    score: float
    grid: tuple

    GRID_COLUMNS = ("digit prior", "prior correction", "dev score: mean of digits and letters (%)")


def training_class_counts(labels, num_classes):
    """Images per class in a training set; "either case" labels (>= num_classes, see
    labels.CASE_EITHER) are shared between a letter's two cases in ByClass's proportions."""
    labels = torch.as_tensor(labels)
    counts = torch.bincount(labels[labels < num_classes], minlength=num_classes).double()
    either = torch.bincount(labels[labels >= num_classes] - num_classes, minlength=26).double()
    if either.sum() > 0 and num_classes == CASE_NUM_CLASSES:
        upper, lower = counts[NUM_DIGITS:NUM_CLASSES], counts[NUM_CLASSES:]
        share = (upper / (upper + lower).clamp(min=1)).where(upper + lower > 0, torch.tensor(0.5, dtype=torch.double))
        counts[NUM_DIGITS:NUM_CLASSES] += either * share
        counts[NUM_CLASSES:] += either * (1 - share)
    return counts


def class_bias(num_classes, digit_prior=0.0, prior_correction=0.0, train_counts=None):
    """The per-class logit shift for a digit prior and a class-prior correction (a float tensor)."""
    bias = torch.zeros(num_classes)
    bias[:NUM_DIGITS] += digit_prior
    if prior_correction and train_counts is not None:
        log_prior = torch.as_tensor(train_counts, dtype=torch.double).clamp(min=1).log()
        bias -= prior_correction * (log_prior - log_prior.mean()).float()
    return bias


DIGIT_GRID = tuple(round(0.25 * k, 2) for k in range(-8, 9))  # -2.0 ... 2.0
CORRECTION_GRID = tuple(round(0.125 * k, 3) for k in range(0, 13))  # 0 ... 1.5


def choose_class_bias(logits, labels, train_counts=None, digit_grid=DIGIT_GRID, correction_grid=(0.0,), parts=None):
    """The digit prior and class-prior correction that read digits and letters best, on average.

    `labels` are 0..61 (true characters with their case). A 36-class model is scored on capitals
    (strict), a 62-class one 62-way. The score is the mean of the digits' and the letters'
    accuracy, so that the 52 letter shapes do not outvote the 10 digits: a user writes both.
    With `parts` (a part number per image, for example fonts and handwriting), it is the mean of
    that score over the parts, so that neither kind of input outvotes the other.
    Ties go to the smallest shift. Choose on dev data only, then report the held-out part.
    """
    logits, labels = torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(labels)
    parts = torch.zeros(len(labels), dtype=torch.long) if parts is None else torch.as_tensor(parts)
    n = logits.shape[1]
    target = labels if n == CASE_NUM_CLASSES else torch.tensor(TO_36)[labels]
    digits = labels < NUM_DIGITS
    groups = [(digits & (parts == p), ~digits & (parts == p)) for p in torch.unique(parts).tolist()]
    rows = []
    for d in digit_grid:
        for tau in correction_grid:
            right = (logits + class_bias(n, d, tau, train_counts)).argmax(1) == target
            means = [np.nanmean([_pct(right[a]), _pct(right[b])]) for a, b in groups]
            rows.append((float(d), float(tau), round(float(np.mean(means)), 3)))
    best = max(rows, key=lambda r: (r[2], -abs(r[0]) - abs(r[1])))
    bias = class_bias(n, best[0], best[1], train_counts)
    return ClassBias(digit_prior=best[0], prior_correction=best[1], bias=tuple(round(float(b), 5) for b in bias),
                     score=best[2], grid=tuple(rows))


# --- Scoring sets of prepared images (characters from elsewhere) --------------------------------


def logits_of(net, images):
    """Logits for prepared images, float (N, 28, 28) in [0, 1] as `preprocess.prepare` makes them."""
    return predict_logits(net, torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 28, 28))


def score_sets(scores, labels, names, groups, case_sensitive=False):
    """Accuracy per set and for its digits and letters, through `summarise` / `summarise_case`.

    `labels` are 0..61 (the true character, with its case); `scores` are logits or predicted
    indices (-1: no answer, counted wrong), in the 36-class layout for a 36-class model, or the
    62-class one with `case_sensitive`. A 36-class model is scored on capitals: strict and with
    look-alikes (0/O, 1/I/L, 2/Z, 5/S) counted right. A case-sensitive model is scored 62-way
    (`case_acc`), ByMerge-style 47-way and in any case (`nocase_acc`). Totals are added for all
    dev fonts and all held-out fonts.
    """
    scores, labels, groups = torch.as_tensor(scores), torch.as_tensor(labels), np.asarray(groups)
    folded = torch.tensor(TO_36)[labels]
    sources = torch.where(labels < NUM_DIGITS, MNIST, EMNIST)  # here: "a digit" or "a letter"

    def score(mask):
        mask = torch.from_numpy(mask)
        out = {"images": int(mask.sum())}
        if case_sensitive:
            for kind, part in (("", mask), ("digits_", mask & (labels < NUM_DIGITS)),
                               ("letters_", mask & (labels >= NUM_DIGITS))):
                if part.any():
                    s = summarise_case(scores[part], labels[part])
                    out.update({f"{kind}{k}": s[k] for k in ("case_acc", "bymerge_acc", "nocase_acc")})
            return out
        s = summarise(scores[mask], folded[mask], sources[mask])
        out.update(strict_acc=s["overall_acc"], tolerant_acc=s["overall_tolerant_acc"],
                   digits_acc=s["digits_acc"], letters_acc=s["letters_acc"])
        return out

    out = {name: score(groups == g) for g, name in enumerate(names)}
    for total, prefix in (("ALL dev fonts", "dev fonts"), ("ALL held-out fonts", "held-out fonts")):
        out[total] = score(np.isin(groups, [g for g, name in enumerate(names) if name.startswith(prefix)]))
    return out
