"""Choose how each model breaks ties between classes, on input that looks real: the dev fonts.

A model trained on dataset images follows the dataset's class counts when a shape is ambiguous
(a ring: 0, O or o?). Input from people does not have those counts. So each model gets a bias
per class: a digit prior (added to the digits) and, for the case-sensitive model, a correction
that divides out part of the training class frequencies. Both are chosen here on the dev fonts
only; the held-out fonts chose nothing and give the honest figure. The notebook calls `choose`
on the models it trains; this command does the same for the shipped checkpoints:

    python -m benchmarks.fonts            # once: the fonts, with npm
    python -m benchmarks.priors           # prints the choice and what it does on every set
    python -m benchmarks.priors --ship    # and stores it in checkpoints/default.pt and case.pt
"""

import argparse

import numpy as np
import torch

from helpers import checkpoint, data, evaluation

from .common import logits_of, run, score_sets, write
from .generalisation import prepared_images

RECORDS = {False: "priors.json", True: "priors_case.json"}


def choose(model, train_labels, case_sensitive=False, seed=0):
    """The class bias chosen on the dev fonts, and every set scored without and with it.

    `train_labels` are the labels the model was trained on (for the class frequencies; "either
    case" labels of the case-sensitive set are shared between cases). Returns a dict that
    `record` writes and the notebook shows.
    """
    images, labels, names, groups = prepared_images(seed)
    logits = logits_of(model, images)
    dev = np.isin(groups, [g for g, name in enumerate(names) if name.startswith("dev fonts")])
    counts = evaluation.training_class_counts(train_labels, logits.shape[1])
    grid = evaluation.CORRECTION_GRID if case_sensitive else (0.0,)
    bias = evaluation.choose_class_bias(logits[dev], labels[dev], counts, correction_grid=grid)
    return {
        "case_sensitive": case_sensitive,
        "digit_prior": bias.digit_prior,
        "prior_correction": bias.prior_correction,
        "dev_score": bias.score,
        "logit_bias": list(bias.bias),
        "without": score_sets(logits, labels, names, groups, case_sensitive=case_sensitive),
        "with": score_sets(logits + torch.tensor(bias.bias), labels, names, groups, case_sensitive=case_sensitive),
    }


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


def record(choice):
    """Write the choice to assets/priors.json (36 classes) or priors_case.json."""
    write(RECORDS[choice["case_sensitive"]], choice)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ship", action="store_true", help="store the choice in the shipped checkpoints")
    args = parser.parse_args(argv)
    for case_sensitive, path in ((False, checkpoint.SHIPPED), (True, checkpoint.SHIPPED_CASE)):
        net, info = checkpoint.load_checkpoint(path)
        if case_sensitive:
            train_labels = data.load_case_characters(train=True).labels
        else:
            train_labels = data.load_characters(train=True).labels
        choice = choose(net, train_labels, case_sensitive)
        print(path.name, {k: choice[k] for k in ("digit_prior", "prior_correction", "dev_score")})
        print(table(choice).to_string())
        record(choice)
        if args.ship:
            extra = {**info.get("extra", {}), "digit_prior": 0.0 if case_sensitive else choice["digit_prior"]}
            if case_sensitive:
                extra["logit_bias"] = choice["logit_bias"]
            checkpoint.save_checkpoint(path, net, info["model"], metrics=info.get("metrics"),
                                       recipe=info.get("recipe"), extra=extra, class_names=info["class_names"])
            print(f"stored in {path}")
    return 0



if __name__ == "__main__":
    run(main)
