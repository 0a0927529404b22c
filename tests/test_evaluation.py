"""The one scoring path: summarise, evaluate, confusions, the digit prior, and the benchmarks' use of them."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import data, evaluation
from helpers.errors import HCRError
from helpers.labels import CLASS_NAMES, EMNIST, MNIST

from .conftest import blob

# Five test images: 0, 1, O, A, L. The model reads 0 as O, 1 right, O as 0, A right, L as 1,
# and each mistake's second choice is the true class.
LABELS = torch.tensor([0, 1, 24, 10, 21])
SOURCES = torch.tensor([MNIST, MNIST, EMNIST, EMNIST, EMNIST])
PRED = torch.tensor([24, 1, 0, 10, 1])


def hand_made_logits():
    logits = torch.full((5, 36), -5.0)
    logits[torch.arange(5), PRED] = 5.0
    logits[[0, 2, 4], [0, 24, 21]] = 4.0
    return logits


def test_summarise_strict_tolerant_and_restricted():
    s = evaluation.summarise(hand_made_logits(), LABELS, SOURCES)
    assert s == {"digits_acc": 50.0, "letters_acc": 33.333, "overall_acc": 40.0,
                 "digits_tolerant_acc": 100.0, "letters_tolerant_acc": 100.0, "overall_tolerant_acc": 100.0,
                 "digits_10way_acc": 100.0, "letters_26way_acc": 100.0,
                 "test_images": {"digits": 2, "letters": 3}}


def test_summarise_scores_bare_answers_and_counts_no_answer_as_wrong():
    s = evaluation.summarise(PRED, LABELS, SOURCES)
    assert (s["overall_acc"], s["overall_tolerant_acc"]) == (40.0, 100.0)
    assert "digits_10way_acc" not in s and "letters_26way_acc" not in s  # these need the scores of every class
    # -1 is "no answer": wrong, even for a Z (the last class, which a careless index -1 would reach).
    s = evaluation.summarise(torch.tensor([-1, 35]), torch.tensor([35, 35]), torch.tensor([EMNIST, EMNIST]))
    assert (s["letters_acc"], s["letters_tolerant_acc"]) == (50.0, 50.0)


def test_summarise_without_letters_gives_nan_not_an_error():
    s = evaluation.summarise(hand_made_logits()[:2], LABELS[:2], SOURCES[:2])
    assert s["digits_acc"] == 50.0 and np.isnan(s["letters_acc"]) and "letters_26way_acc" not in s


class Fixed(nn.Module):
    """A 'model' that gives the same logits to every image (one parameter, so it has a device)."""

    def __init__(self, row):
        super().__init__()
        self.row = nn.Parameter(torch.as_tensor(row, dtype=torch.float32))

    def forward(self, x):
        return self.row.expand(len(x), -1)


def test_evaluate_is_summarise_plus_the_loss():
    images = torch.zeros(5, 28, 28, dtype=torch.uint8)
    dataset = data.CharacterSet(images, LABELS, SOURCES)
    row = torch.zeros(36)
    row[10] = 3.0  # always "A"
    scores = evaluation.evaluate(Fixed(row), dataset)
    expected = evaluation.summarise(row.expand(5, -1), LABELS, SOURCES)
    del expected["test_images"]
    assert scores == {"loss": pytest.approx(F.cross_entropy(row.expand(5, -1), LABELS).item()), **expected}
    assert scores["overall_acc"] == 20.0 and scores["letters_acc"] == 33.333


def test_evaluate_other_class_counts_reports_what_it_can():
    dataset = data.CharacterSet(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 2, 1]),
                                torch.tensor([MNIST] * 4))
    logits = torch.tensor([0.0, 2.0, 0.0])
    scores = evaluation.evaluate(Fixed(logits), dataset)  # always class 1 of 3
    loss = F.cross_entropy(logits.expand(4, -1), dataset.labels).item()
    assert scores == {"loss": pytest.approx(loss), "overall_acc": 50.0, "digits_acc": 50.0}


def test_confusion_counts_report_and_most_confused():
    labels = np.array([0, 0, 0, 24, 24, 1])
    pred = np.array([0, 24, 24, 0, 24, 1])
    counts = evaluation.confusion_counts(labels, pred)
    expected = np.zeros((36, 36), int)
    expected[0, 0], expected[0, 24], expected[24, 0], expected[24, 24], expected[1, 1] = 1, 2, 1, 1, 1
    assert np.array_equal(counts, expected)
    rows = evaluation.confusion_counts(labels, pred, normalize="true")
    assert rows[0, 24] == pytest.approx(2 / 3) and rows[5].sum() == 0
    assert evaluation.most_confused(counts, k=1) == [{"a": "0", "b": "O", "a_as_b": 2, "b_as_a": 1, "total": 3}]
    report = evaluation.per_class_report(labels, pred, as_dict=True)
    assert set(CLASS_NAMES) <= set(report)
    assert report["0"]["recall"] == pytest.approx(1 / 3) and report["O"]["precision"] == pytest.approx(1 / 3)


def test_confusions_take_other_class_names():
    names = ("a", "b", "c")
    counts = evaluation.confusion_counts([0, 1, 2, 2], [0, 2, 1, 2], class_names=names)
    assert counts.shape == (3, 3) and counts.sum() == 4 and counts[2, 1] == 1 and counts[1, 2] == 1
    assert evaluation.most_confused(counts, class_names=names) == [
        {"a": "b", "b": "c", "a_as_b": 1, "b_as_a": 1, "total": 2}]
    assert set(evaluation.per_class_report([0, 1, 2, 2], [0, 2, 1, 2], True, names)) >= set(names)


def test_summary_table_lays_out_strict_tolerant_and_restricted():
    s = {"digits_acc": 90.0, "letters_acc": 80.0, "overall_acc": 83.0, "digits_tolerant_acc": 95.0,
         "letters_tolerant_acc": 90.0, "overall_tolerant_acc": 91.0, "digits_10way_acc": 99.0,
         "letters_26way_acc": 94.0}
    table = evaluation.summary_table({"a": s, "b": {**s, "digits_acc": 91.0}})
    assert table.shape == (3, 6)
    assert table[("a", "strict")].tolist() == [90.0, 80.0, 83.0]
    assert table[("b", "strict")].iloc[0] == 91.0
    assert table[("a", "10-way / 26-way")].iloc[:2].tolist() == [99.0, 94.0]


def test_fmt_mean_std():
    assert evaluation.fmt_mean_std({"mean": 262.04, "std": 15.26}) == "262.0 ± 15.3"
    assert evaluation.fmt_mean_std({"mean": 99.3, "std": 0.0612, "n": 3}, 2) == "99.30 ± 0.06"
    assert evaluation.fmt_mean_std(None) == "n/a"


def test_digit_prior_shifts_only_the_digits():
    logits = torch.zeros(2, 36)
    shifted = evaluation.with_digit_prior(logits, 1.5)
    assert shifted[:, :10].eq(1.5).all() and shifted[:, 10:].eq(0).all() and logits.eq(0).all()


def val_set(n=6):
    rng = np.random.default_rng(0)
    images = torch.from_numpy(np.stack([blob(rng) for _ in range(2 * n)]))
    labels = torch.tensor([0] * n + [24] * n)  # digit 0, letter O
    return data.CharacterSet(images, labels, torch.tensor([MNIST] * n + [EMNIST] * n))


def test_choose_digit_prior_takes_the_smallest_prior_that_reaches_the_target():
    row = torch.full((36,), -10.0)
    row[0], row[24] = 0.0, 0.55  # every ring looks a little more like an O than a 0
    prior = evaluation.choose_digit_prior(Fixed(row), val_set(), target=98.0)
    assert isinstance(prior, evaluation.DigitPrior)
    assert (prior.value, prior.target) == (0.6, 98.0)
    assert prior.curve[5] == (0.5, 0.0, 100.0) and prior.curve[6] == (0.6, 100.0, 0.0)
    assert [p for p, _, _ in prior.curve] == list(evaluation.PRIOR_GRID)
    with pytest.raises(AttributeError):
        prior.value = 0.0  # frozen: a chosen prior is a record
    row[24] = 5.0  # out of reach: the largest prior tried
    assert evaluation.choose_digit_prior(Fixed(row), val_set()).value == 2.0


def test_digits_framed_another_way_are_the_sets_digits_reframed():
    digits = evaluation.digits_framed_another_way(val_set())
    assert len(digits) == 6 and digits.labels.eq(0).all() and digits.sources.eq(MNIST).all()
    assert digits.images.dtype == torch.uint8 and digits.images.flatten(1).amax(1).gt(200).all()


# --- The benchmarks score through the same function ---------------------------------------------


def test_benchmark_sets_are_scored_by_summarise():
    from benchmarks.common import score_sets

    names = ["dev fonts, clean", "held-out fonts, clean"]
    labels = [0, 1, 24, 10 + 26, 21]  # the fourth is a small "a": a 36-class model is scored on "A"
    groups = [0, 0, 1, 1, 1]
    for scores in (hand_made_logits(), PRED, PRED.tolist()):
        out = score_sets(scores, labels, names, groups)
        dev, held = out["dev fonts, clean"], out["held-out fonts, clean"]
        assert (dev["images"], dev["strict_acc"], dev["tolerant_acc"], dev["digits_acc"]) == (2, 50.0, 100.0, 50.0)
        assert math.isnan(dev["letters_acc"])  # no letters in that set
        assert (held["images"], held["strict_acc"], held["tolerant_acc"]) == (3, 33.333, 100.0)
        assert math.isnan(held["digits_acc"]) and held["letters_acc"] == 33.333
        assert out["ALL dev fonts"]["strict_acc"] == 50.0 and out["ALL held-out fonts"]["strict_acc"] == 33.333


def test_case_sets_are_scored_62_way_47_way_and_in_any_case():
    from benchmarks.common import score_sets

    # true: "a" "a" "o" "7"; answers: "a" (right), "A" (wrong case), "O" (o/O merged in ByMerge), "7"
    labels, pred = [36, 36, 50, 7], [36, 10, 24, 7]
    out = score_sets(pred, labels, ["held-out fonts, clean"], [0, 0, 0, 0], case_sensitive=True)
    held = out["held-out fonts, clean"]
    assert (held["case_acc"], held["bymerge_acc"], held["nocase_acc"]) == (50.0, 75.0, 100.0)
    assert (held["digits_case_acc"], held["letters_case_acc"]) == (100.0, 33.333)


def test_missing_fonts_say_which_step_to_run(tmp_path):
    from benchmarks import fonts

    with pytest.raises(HCRError, match=r"run `python -m benchmarks\.fonts` first"):
        fonts.font_paths(tmp_path)


def test_running_one_case_variant_keeps_the_recorded_others():
    """Chapter 2 invites `benchmarks.case --variants "ByClass only"`: it used to rewrite case.json with
    that row alone, erasing the row the chapter quotes."""
    from benchmarks.case import VARIANTS, with_recorded
    from helpers import training

    recipe = training.CASE_RECIPE.to_dict()
    old = {VARIANTS[1]: {"old": 1}, VARIANTS[2]: {"old": 2}}
    recorded = json.loads(json.dumps({"recipe": recipe, "written": "2026-12-01", "variants": old}))  # as read back
    merged = with_recorded({VARIANTS[0]: {"new": 0}, VARIANTS[2]: {"new": 2}}, recipe, recorded)
    assert merged == {VARIANTS[0]: {"new": 0}, VARIANTS[1]: {"recorded": "2026-12-01", "old": 1},
                      VARIANTS[2]: {"new": 2}}  # a kept row says when it was recorded
    assert list(merged) == list(VARIANTS)  # in the chapter's order
    other = dict(recorded, recipe={**recorded["recipe"], "epochs": -1})  # another recipe: its rows do not compare
    assert with_recorded({VARIANTS[0]: {"new": 0}}, recipe, other) == {VARIANTS[0]: {"new": 0}}
    assert with_recorded({VARIANTS[0]: {"new": 0}}, recipe, [1, 2]) == {VARIANTS[0]: {"new": 0}}  # not a record
