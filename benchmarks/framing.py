"""What the dataset shortcut is worth on the test files, and what it costs on real input.

    python -m benchmarks.fonts       # once: the fonts the characters from elsewhere are drawn in
    python -m benchmarks.framing     # about 8 min on a 2-core CPU; writes assets/framing.json

Trains the default recipe on each dataset's original framing (the model can tell MNIST from
EMNIST by size and softness) and on images framed alike, then measures both on the test
files and on characters from elsewhere (see generalisation.py), prepared as a user's files
are. The framed-alike model is measured again with the digit prior chosen on validation data,
by the same `evaluation.choose_digit_prior` as the notebook.
"""

from helpers import data, evaluation, training

from .common import logits_of, run, score_sets, train_and_measure, write
from .generalisation import prepared_images


def main():
    images, labels, names, groups = prepared_images()
    variants = {}
    for framing, name in (("original", "original framing (shortcut available)"), ("centred", "framed alike")):
        train, val = data.split_off(data.load_characters(train=True, framing=framing), 5000, seed=0)
        test = data.load_characters(train=False, framing=framing)
        print(f"--- {name}", flush=True)
        net, logits, metrics = train_and_measure("compact", training.DEFAULT_RECIPE, train, test)
        outside = logits_of(net, images)
        variants[name] = {"test": metrics, "elsewhere": score_sets(outside, labels, names, groups)}
        print(f"    test: digits {metrics['digits_acc']:.2f}%, letters {metrics['letters_acc']:.2f}%; elsewhere: "
              f"held-out fonts {variants[name]['elsewhere']['ALL held-out fonts']['strict_acc']:.2f}%", flush=True)
        if framing == "centred":
            prior = evaluation.choose_digit_prior(net, val)
            shifted = evaluation.summarise(evaluation.with_digit_prior(logits, prior.value), test.labels, test.sources)
            elsewhere = score_sets(evaluation.with_digit_prior(outside, prior.value), labels, names, groups)
            variants[f"framed alike + digit prior {prior.value}"] = {
                "test": shifted, "digit_prior": prior.value, "digit_prior_target": prior.target,
                "elsewhere": elsewhere}
    write("framing.json", {"variants": variants})


if __name__ == "__main__":
    import argparse
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    run(main)
