"""Choose how each model breaks ties between classes, on input that looks real: the dev fonts.

A model trained on dataset images follows the dataset's class counts when a shape is ambiguous
(a ring: 0, O or o?). Input from people does not have those counts. So each model gets a bias
per class: a digit prior (added to the digits) and, for the case-sensitive model, a correction
that divides out part of the training class frequencies. Both are chosen here on the dev fonts
and, for the 36-class model, on the chapter's validation images prepared as a user's files; the
held-out fonts and the MNIST test digits chose nothing and give the honest figure. The chapters call
`helpers.class_bias.choose` on the models they train; this command does the same for the shipped
checkpoints:

    python -m benchmarks.fonts            # once: the fonts, with npm
    python -m benchmarks.priors           # prints the choice and what it does on every set
    python -m benchmarks.priors --ship    # and stores it in checkpoints/default.pt and case.pt
"""

import argparse

from helpers import checkpoint, data
from helpers.class_bias import RECORDS, choose, record, table  # noqa: F401  (the logic lives in helpers)

from .common import run


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ship", action="store_true", help="store the choice in the shipped checkpoints")
    args = parser.parse_args(argv)
    for case_sensitive, path in ((False, checkpoint.SHIPPED), (True, checkpoint.SHIPPED_CASE)):
        net, info = checkpoint.load_checkpoint(path)
        handwriting = None
        if case_sensitive:  # the case model trained on every ByClass training image: no handwriting is left over
            train_labels = data.load_case_characters(train=True).labels
        else:  # the chapter's split: the same 5,000 validation images, never trained on
            train, val = data.split_off(data.load_characters(train=True), 5000, seed=0)
            train_labels, handwriting = train.labels, (val.images, val.labels)
        choice = choose(net, train_labels, case_sensitive, handwriting=handwriting)
        print(path.name, {k: choice[k] for k in ("digit_prior", "prior_correction", "dev_score", "chosen_on")})
        print(table(choice).to_string())
        record(choice)
        if args.ship:  # the one stored shift replaces the old one (never added to it)
            extra = {k: v for k, v in (info.get("extra") or {}).items() if k not in ("digit_prior", "logit_bias")}
            extra["logit_bias"] = choice["logit_bias"]
            checkpoint.save_checkpoint(path, net, info["model"], metrics=info.get("metrics"),
                                       recipe=info.get("recipe"), extra=extra, class_names=info["class_names"])
            print(f"stored in {path}")
    return 0


if __name__ == "__main__":
    run(main)
