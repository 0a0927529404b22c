"""What the dataset shortcut is worth on the test files, and what it costs on real input.

    python benchmarks/framing.py     # about 8 min on a 2-core CPU; writes assets/framing.json

Trains the default recipe on each dataset's original framing (the model can tell MNIST from
EMNIST by size and softness) and on images framed alike, then measures both on the test
files and on characters from elsewhere (see generalisation.py), prepared as a user's files
are. The framed-alike model is measured again with the digit prior chosen on validation data.
"""

import sys

import torch

from common import generalisation_images, logits_of, score_generalisation, train_and_measure, write

from helpers import data, evaluation, framing, training
from helpers.labels import MNIST


def choose_prior(net, val):
    digits = val.from_source(MNIST)
    elsewhere = data.reframe(data.CharacterSet(torch.from_numpy(framing.emnist_framing(digits.images.numpy())),
                                               digits.labels, digits.sources))
    prior, _ = evaluation.choose_digit_prior(training.predict_logits(net, elsewhere.to_float()), elsewhere.labels)
    return prior


def main():
    images, labels, names, groups = generalisation_images()
    variants = {}
    for framing, name in (("original", "original framing (shortcut available)"), ("centred", "framed alike")):
        train, val = data.split_off(data.load_characters(train=True, framing=framing), 5000, seed=0)
        test = data.load_characters(train=False, framing=framing)
        print(f"--- {name}", flush=True)
        net, logits, metrics = train_and_measure("compact", training.DEFAULT_RECIPE, train, test)
        outside = logits_of(net, images)
        variants[name] = {"test": metrics, "elsewhere": score_generalisation(outside, labels, names, groups)}
        print(f"    test: digits {metrics['digits_acc']:.2f}%, letters {metrics['letters_acc']:.2f}%; elsewhere: "
              f"digits {variants[name]['elsewhere']['ALL digits from other sources']['strict_acc']:.2f}%", flush=True)
        if framing == "centred":
            prior = choose_prior(net, val)
            shifted = evaluation.summarise(evaluation.with_digit_prior(logits, prior), test.labels, test.sources)
            variants[f"framed alike + digit prior {prior}"] = {
                "test": shifted, "digit_prior": prior,
                "elsewhere": score_generalisation(evaluation.with_digit_prior(outside, prior), labels, names, groups)}
    write("framing.json", {"variants": variants})


if __name__ == "__main__":
    sys.exit(main())
