"""Two specialists or one merged model: what merging digits and letters costs.

    python -m benchmarks.specialists     # about 15 min on a 2-core CPU; writes assets/specialists.json

With the same CNN and recipe, trains a digits-only model (10 classes, MNIST), a letters-only
model (26 classes, EMNIST Letters) and a merged model (36 classes), and measures all three on
the same test files. Done twice: the seeds' setting (baseline CNN, 5 epochs of Adam, each
dataset in its own framing) and this project's (default recipe, every image framed alike).
"""

from helpers import data, training
from helpers.labels import EMNIST, MNIST, NUM_DIGITS

from .common import run, train_and_measure, write

SETTINGS = {
    "seeds' setting: baseline CNN, seed recipe, original framing": ("baseline", training.SEED_RECIPE, "original"),
    "this project: compact CNN, default recipe, framed alike": ("compact", training.DEFAULT_RECIPE, "centred"),
}


def main():
    out = {}
    for name, (model_name, recipe, framing) in SETTINGS.items():
        train = data.load_characters(train=True, framing=framing)
        test = data.load_characters(train=False, framing=framing)
        train, _ = data.split_off(train, 5000, seed=0)  # the notebook's training images
        print(f"--- {name}", flush=True)
        _, _, digits = train_and_measure(model_name, recipe, train.from_source(MNIST), test, num_classes=10)
        print(f"    digits specialist: {digits['digits_acc']:.2f}%", flush=True)
        _, _, letters = train_and_measure(model_name, recipe, train.from_source(EMNIST), test, num_classes=26,
                                          label_offset=NUM_DIGITS)
        print(f"    letters specialist: {letters['letters_acc']:.2f}%", flush=True)
        _, _, merged = train_and_measure(model_name, recipe, train, test)
        print(f"    merged: digits {merged['digits_acc']:.2f}%, letters {merged['letters_acc']:.2f}%", flush=True)
        out[name] = {"digits_specialist": digits, "letters_specialist": letters, "merged": merged,
                     "recipe": recipe.to_dict(), "model": model_name, "framing": framing}
    write("specialists.json", {"settings": out})


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    run(main)
