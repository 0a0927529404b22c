"""What the benchmark scripts share: train a recipe, score it through `evaluation.summarise`, and
write the record the notebook and README quote."""

import platform
import sys

import numpy as np
import torch

from helpers import data, evaluation, hardware, model, records, training
from helpers.errors import HCRError
from helpers.labels import EMNIST, MNIST, NUM_CLASSES, NUM_DIGITS, TO_36


def run(main):
    """Run a benchmark's `main`; a problem the user can fix ends in its one sentence, not a traceback."""
    try:
        main()
    except HCRError as error:
        sys.exit(str(error))


def machine():
    """What the numbers were measured on."""
    return {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": str(torch.__version__), "bf16": hardware.cpu_has_native_bf16()}


def train_and_measure(model_name, recipe, train_set, test_set, seed=0, num_classes=NUM_CLASSES, label_offset=0,
                      model_options=None):
    """Train one model; return it with its 36-class test logits and metrics (strict, tolerant, 10-/26-way, time).

    A specialist (`num_classes` 10 or 26) learns labels shifted down by `label_offset`; its
    logits are put back into the 36-class layout, with the other classes impossible.
    """
    net = model.build_model(model_name, num_classes=num_classes, seed=seed, **(model_options or {}))
    if label_offset:
        train_set = data.CharacterSet(train_set.images, train_set.labels - label_offset, train_set.sources)
    history = training.train(net, train_set, None, recipe, seed=seed, progress=False, log=None)
    logits = evaluation.predict_logits(net, test_set.to_float())
    if num_classes != NUM_CLASSES:
        full = torch.full((len(logits), NUM_CLASSES), -1e9)
        full[:, label_offset : label_offset + num_classes] = logits
        logits = full
    metrics = evaluation.summarise(logits, test_set.labels, test_set.sources)
    metrics["train_seconds"] = history.train_seconds
    return net, logits, metrics


def logits_of(net, images):
    """Logits for prepared images, float (N, 28, 28) in [0, 1] as `preprocess.prepare` makes them."""
    return evaluation.predict_logits(net, torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 28, 28))


def score_sets(scores, labels, names, groups, case_sensitive=False):
    """Accuracy per set and for its digits and letters, through `evaluation`'s one scorer.

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
                    s = evaluation.summarise_case(scores[part], labels[part])
                    out.update({f"{kind}{k}": s[k] for k in ("case_acc", "bymerge_acc", "nocase_acc")})
            return out
        s = evaluation.summarise(scores[mask], folded[mask], sources[mask])
        out.update(strict_acc=s["overall_acc"], tolerant_acc=s["overall_tolerant_acc"],
                   digits_acc=s["digits_acc"], letters_acc=s["letters_acc"])
        return out

    out = {name: score(groups == g) for g, name in enumerate(names)}
    for total, prefix in (("ALL dev fonts", "dev fonts"), ("ALL held-out fonts", "held-out fonts")):
        out[total] = score(np.isin(groups, [g for g, name in enumerate(names) if name.startswith(prefix)]))
    return out


def write(name, payload):
    print(f"wrote {records.write(name, {'machine': machine(), **payload})}")
