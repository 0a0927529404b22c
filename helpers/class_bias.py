"""Choose how a model breaks ties between classes, on input that looks real: the dev fonts.

A model trained on dataset images follows the dataset's class counts when a shape is ambiguous
(a ring: 0, O or o?). Input from people does not have those counts. So each model gets a bias
per class: a digit prior (added to the digits) and, for the case-sensitive model, a correction
that divides out part of the training class frequencies. Both are chosen on two kinds of input
that look like a user's (`evaluation.choose_class_bias`, the mean over the two): the dev fonts,
and held-out training-file characters (validation images, never trained on) framed another way
and prepared as a user's files are. The held-out fonts and the MNIST test digits chose nothing
and give the honest figure.
The chapters call `choose` on the models they train; `python -m benchmarks.priors` does the same
for the shipped checkpoints.
"""

import numpy as np
import torch
from PIL import Image

from . import evaluation, records
from .font_characters import prepared_images
from .framing import emnist_framing
from .preprocess import prepare

HANDWRITING = "handwriting: validation images, framed another way"

RECORDS = {False: "priors.json", True: "priors_case.json"}


def as_user_files(images, labels, limit=3000, seed=0):
    """Dataset characters as a user's files would reach the model: framed the EMNIST way, dark on
    light, enlarged, then prepared like any picture. (prepared images (N, 28, 28), labels)."""
    pick = np.random.default_rng(seed).permutation(len(labels))[:limit]
    framed = emnist_framing(np.asarray(images)[pick])
    prepared = [prepare(Image.fromarray(255 - img).resize((112, 112), Image.Resampling.BICUBIC)).image
                for img in framed]
    return np.stack(prepared), np.asarray(labels)[pick]


def choose(model, train_labels, case_sensitive=False, seed=0, handwriting=None):
    """The class bias chosen on the dev fonts and on `handwriting`, and every set scored without and with it.

    `train_labels` are the labels the model was trained on (for the class frequencies; "either
    case" labels of the case-sensitive set are shared between cases). `handwriting`: (images,
    labels 0..61) of dataset characters the model was not trained on (the validation images),
    or None to choose on the fonts alone. Returns a dict that `record` writes and the chapters show.
    """
    images, labels, names, groups = prepared_images(seed)
    dev_sets = [g for g, name in enumerate(names) if name.startswith("dev fonts")]
    if handwriting is not None:
        keep = np.asarray(handwriting[1]) < 62  # letters of unknown case cannot score the case
        hw_images, hw_labels = as_user_files(np.asarray(handwriting[0])[keep], np.asarray(handwriting[1])[keep],
                                             seed=seed)
        images, labels = np.concatenate([images, hw_images]), np.concatenate([labels, hw_labels])
        names, groups = [*names, HANDWRITING], np.concatenate([groups, np.full(len(hw_labels), len(names))])
        dev_sets.append(len(names) - 1)
    logits = evaluation.logits_of(model, images)
    dev = np.isin(groups, dev_sets)
    parts = np.where(groups[dev] == len(names) - 1, 1, 0) if handwriting is not None else None
    counts = evaluation.training_class_counts(train_labels, logits.shape[1])
    grid = evaluation.CORRECTION_GRID if case_sensitive else (0.0,)
    bias = evaluation.choose_class_bias(logits[dev], labels[dev], counts, correction_grid=grid, parts=parts)
    scored = {kind: evaluation.score_sets(shifted, labels, names, groups, case_sensitive=case_sensitive)
              for kind, shifted in (("without", logits), ("with", logits + torch.tensor(bias.bias)))}
    return {
        "case_sensitive": case_sensitive,
        "chosen_on": ["dev fonts"] + ([HANDWRITING] if handwriting is not None else []),
        "digit_prior": bias.digit_prior,
        "prior_correction": bias.prior_correction,
        "dev_score": bias.score,
        "logit_bias": list(bias.bias),
        **scored,
    }


def choose_or_read(model, train_labels, case_sensitive=False, quick=False, handwriting=None):
    """`choose` and record it; in the quick test mode, or without the fonts, the recorded choice."""
    from . import course

    if quick or not course.fonts_ready():
        return records.read(RECORDS[case_sensitive])
    choice = choose(model, train_labels, case_sensitive, handwriting=handwriting)
    record(choice)
    return choice


def table(choice):
    """Per set: each score without and with the chosen bias (a pandas DataFrame)."""
    import pandas as pd

    rows = {}
    for name in choice["without"]:
        for key, value in choice["without"][name].items():
            if key.endswith("_acc"):
                rows.setdefault(name, {})[(key.removesuffix("_acc"), "without")] = value
                rows[name][(key.removesuffix("_acc"), "with")] = choice["with"][name][key]
    return pd.DataFrame(rows).T.round(2)


def record(choice, folder=records.ASSETS):
    """Write the choice to assets/priors.json (36 classes) or priors_case.json."""
    return records.write(RECORDS[choice["case_sensitive"]], {"machine": records.machine(), **choice}, folder=folder)
