"""What each change of the default recipe is worth: remove one at a time (or add one that is off).

    python -m benchmarks.fonts                        # once: the fonts the characters from elsewhere are drawn in
    python -m benchmarks.ablation                     # about 30 min on a 2-core CPU; writes assets/ablation.json
    python -m benchmarks.ablation "batch 64" "fp32 instead of bf16"     # only these variants

Every variant trains on the notebook's training images with seed 0 and is measured on the
test files (strict, 10-/26-way) and on characters from elsewhere. Speed is images per second.
"""

from dataclasses import replace

from helpers import data, training
from helpers.errors import HCRError

from .common import logits_of, run, score_sets, train_and_measure, write
from .generalisation import prepared_images

D = training.DEFAULT_RECIPE
# Most telling first: a run cut short still answers the main questions (each row is written as it finishes).
VARIANTS = [
    ("default recipe", "compact", {}, D),
    ("no augmentation", "compact", {}, replace(D, augment=False)),
    ("no BatchNorm", "compact", {"batchnorm": False}, D),
    ("constant learning rate 1e-3 (no one-cycle)", "compact", {}, replace(D, schedule="constant", lr=1e-3)),
    ("no weight averaging (EMA)", "compact", {}, replace(D, ema=0.0)),
    ("no BatchNorm recalibration", "compact", {}, replace(D, recalibrate_bn=False)),
    ("baseline CNN instead of compact", "baseline", {}, D),
    ("fp32 instead of bf16", "compact", {}, replace(D, precision="fp32")),
    ("batch 64", "compact", {}, replace(D, batch_size=64)),
    ("no channels-last", "compact", {}, replace(D, channels_last=False)),
    ("no dropout", "compact", {"dropout": 0.0}, D),
]


def main(only=None):
    unknown = set(only or ()) - {name for name, *_ in VARIANTS}
    if unknown:
        raise HCRError(f"No variant called {', '.join(map(repr, sorted(unknown)))}: choose among "
                       f"{', '.join(repr(name) for name, *_ in VARIANTS)}.")
    train, _ = data.split_off(data.load_characters(train=True), 5000, seed=0)
    test = data.load_characters(train=False)
    images, labels, names, groups = prepared_images()
    rows = []
    for name, model_name, options, recipe in VARIANTS:
        if only and name not in only:
            continue
        print(f"--- {name}", flush=True)
        net, _, m = train_and_measure(model_name, recipe, train, test, model_options=options)
        elsewhere = score_sets(logits_of(net, images), labels, names, groups)
        rows.append({"variant": name, "train_seconds": m["train_seconds"],
                     "images_per_second": len(train) * recipe.epochs / m["train_seconds"],
                     "test strict (%)": m["overall_acc"], "digits 10-way (%)": m["digits_10way_acc"],
                     "letters 26-way (%)": m["letters_26way_acc"],
                     "held-out fonts, digits (%)": elsewhere["ALL held-out fonts"]["digits_acc"],
                     "held-out fonts, all (%)": elsewhere["ALL held-out fonts"]["strict_acc"]})
        print("    " + ", ".join(f"{k} {v:.2f}" for k, v in rows[-1].items() if k != "variant"), flush=True)
        write("ablation.json", {"seed": 0, "rows": rows})  # after each variant: a cut-short run keeps what it measured


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", help="the variants to run (default: all)")
    run(lambda: main(parser.parse_args().variants))
