"""Choose how a model breaks ties between classes, on input that looks real: the dev fonts.

A model trained on dataset images follows the dataset's class counts when a shape is ambiguous
(a ring: 0, O or o?). Input from people does not have those counts. So each model gets a bias
per class: a digit prior (added to the digits) and, for the case-sensitive model, a correction
that divides out part of the training class frequencies. Both are chosen on the dev fonts only
(`evaluation.choose_class_bias`); the held-out fonts chose nothing and give the honest figure.
The chapters call `choose` on the models they train; `python -m benchmarks.priors` does the same
for the shipped checkpoints.
"""

import numpy as np
import torch

from . import evaluation, records
from .font_characters import prepared_images

RECORDS = {False: "priors.json", True: "priors_case.json"}


def choose(model, train_labels, case_sensitive=False, seed=0):
    """The class bias chosen on the dev fonts, and every set scored without and with it.

    `train_labels` are the labels the model was trained on (for the class frequencies; "either
    case" labels of the case-sensitive set are shared between cases). Returns a dict that
    `record` writes and the chapters show.
    """
    images, labels, names, groups = prepared_images(seed)
    logits = evaluation.logits_of(model, images)
    dev = np.isin(groups, [g for g, name in enumerate(names) if name.startswith("dev fonts")])
    counts = evaluation.training_class_counts(train_labels, logits.shape[1])
    grid = evaluation.CORRECTION_GRID if case_sensitive else (0.0,)
    bias = evaluation.choose_class_bias(logits[dev], labels[dev], counts, correction_grid=grid)
    scored = {kind: evaluation.score_sets(shifted, labels, names, groups, case_sensitive=case_sensitive)
              for kind, shifted in (("without", logits), ("with", logits + torch.tensor(bias.bias)))}
    return {
        "case_sensitive": case_sensitive,
        "digit_prior": bias.digit_prior,
        "prior_correction": bias.prior_correction,
        "dev_score": bias.score,
        "logit_bias": list(bias.bias),
        **scored,
    }


def choose_or_read(model, train_labels, case_sensitive=False, quick=False):
    """`choose` and record it; in the quick test mode, or without the fonts, the recorded choice."""
    from . import course

    if quick or not course.fonts_ready():
        return records.read(RECORDS[case_sensitive])
    choice = choose(model, train_labels, case_sensitive)
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
