"""Upper and lower case: which training data helps a 62-class model, measured.

    python -m benchmarks.case                    # ByClass + MNIST, about 5 min; writes assets/case.json
    python -m benchmarks.case --variants all     # the three variants, about 20 min on a 2-core CPU
    python -m benchmarks.case --variants "ByClass only"   # adds that row; the recorded ones stay

EMNIST Letters (88,000 images) knows the letter but not its case; MNIST adds 60,000 digits.
Trains the case-sensitive model (compact CNN, `training.CASE_RECIPE`, random seed 0) on
ByClass alone, on ByClass + MNIST, and on ByClass + MNIST + Letters (a letter of unknown case
counts as right in either case: `training.target_set_loss`), and measures each on the ByClass
test file (62-way, 47-way, any case, macro averages) and on the fonts (no class bias, so no
choice made on the fonts enters these numbers). The notebook trains the last variant itself,
with the same recipe and random seed, and sets its scores beside this record's.
"""

import argparse
import json
import time

import numpy as np

from helpers import data, evaluation, model, records, training
from helpers.errors import HCRError
from helpers.evaluation import logits_of, score_sets
from helpers.font_characters import prepared_images
from helpers.labels import CASE_NUM_CLASSES, CASE_TARGET_SETS

from .common import run, write

VARIANTS = ("ByClass only", "ByClass + MNIST", "ByClass + MNIST + Letters (either case)")


def split_by_file(train):
    """ByClass, MNIST and Letters parts of the case training set, by position (it is concatenated
    in that order by `data.load_case_characters`)."""
    byclass = np.arange(len(data.load_emnist_byclass(train=True)))
    letters = np.flatnonzero(train.labels.numpy() >= CASE_NUM_CLASSES)
    mnist = np.setdiff1d(np.arange(len(byclass), len(train)), letters)
    return dict(zip(VARIANTS, (byclass, np.concatenate([byclass, mnist]), np.arange(len(train)))))


def with_recorded(variants, recipe, recorded):
    """The variants just run, beside those of the record that they were not (when the record used
    the same recipe): running one variant must not erase the rows the chapter quotes."""
    if not isinstance(recorded, dict):
        return dict(variants)
    same = recorded.get("recipe") == json.loads(json.dumps(recipe))  # as the record holds it (lists, not tuples)
    kept = recorded.get("variants", {}) if same else {}
    # a kept row says when it was recorded (its machine, if the run that made it said)
    kept = {name: {"recorded": recorded.get("written"), **row} for name, row in kept.items()}
    return {name: variants.get(name, kept.get(name)) for name in VARIANTS if name in variants or name in kept}


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="ByClass + MNIST",
                        help="'all', or names separated by commas: " + ", ".join(VARIANTS))
    args = parser.parse_args(argv)
    wanted = VARIANTS if args.variants == "all" else [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in wanted if v not in VARIANTS]
    if unknown:
        raise HCRError(f"Unknown variant {unknown[0]!r}: choose among {', '.join(VARIANTS)}, or 'all'.")
    train = data.load_case_characters(train=True)
    test = data.load_case_characters(train=False)
    images, labels, names, groups = prepared_images()
    loss = training.target_set_loss(CASE_TARGET_SETS)
    out = {}
    for name, index in split_by_file(train).items():
        if name not in wanted:
            continue
        part = train.subset(index)
        net = model.build_model("compact", num_classes=CASE_NUM_CLASSES, seed=0)
        history = training.train(net, part, None, training.CASE_RECIPE, seed=0, progress=False, log=None, loss_fn=loss)
        test_scores = evaluation.summarise_case(evaluation.predict_logits(net, test.to_float()), test.labels)
        fonts = score_sets(logits_of(net, images), labels, names, groups, case_sensitive=True)
        out[name] = {"train_images": len(part), "train_seconds": round(history.train_seconds, 1),
                     "byclass_test": test_scores, "fonts": fonts, "recorded": time.strftime("%Y-%m-%d"),
                     "machine": records.machine()}
        held = fonts["ALL held-out fonts"]
        print(f"{name}: {len(part):,} images, {history.train_seconds:.0f} s | ByClass test 62-way "
              f"{test_scores['case_acc']:.2f}%, 47-way {test_scores['bymerge_acc']:.2f}%, macro "
              f"{test_scores['macro_case_acc']:.2f}% | held-out fonts right case {held['case_acc']:.2f}%, "
              f"any case {held['nocase_acc']:.2f}%",
              flush=True)
    recipe = training.CASE_RECIPE.to_dict()
    try:
        recorded = records.read("case.json")
    except HCRError:  # none yet, or damaged: this run's variants alone
        recorded = {}
    write("case.json", {"recipe": recipe, "variants": with_recorded(out, recipe, recorded)})


if __name__ == "__main__":
    run(main)
