"""What the benchmark scripts share: train a recipe, score it through `evaluation.summarise`, and
write the record the notebook and README quote."""

import sys

import torch

from helpers import data, evaluation, model, records, training
from helpers.errors import HCRError
from helpers.evaluation import logits_of, score_sets  # noqa: F401  (shared with the chapters)
from helpers.labels import NUM_CLASSES
from helpers.records import machine  # noqa: F401


def run(main):
    """Run a benchmark's `main`; a problem the user can fix ends in its one sentence, not a traceback."""
    try:
        main()
    except HCRError as error:
        sys.exit(str(error))


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


def write(name, payload):
    print(f"wrote {records.write(name, {'machine': machine(), **payload})}")
