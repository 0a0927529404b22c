"""Every figure function returns a Figure of a fixed size, and `save` writes a PNG."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from helpers import plots
from helpers.preprocess import prepare
from helpers.strokes import render, wobbly_strokes

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 255, size=(40, 28, 28)).astype(np.uint8)
LABELS = np.arange(40) % 36
SOURCES = (LABELS >= 10).astype(np.uint8)
HISTORY = {"epochs": [{"epoch": 1, "train_loss": 1.0, "train_acc": 70, "test_loss": 0.5, "test_acc": 90},
                      {"epoch": 2, "train_loss": 0.5, "train_acc": 90, "test_loss": 0.3, "test_acc": 95}]}
POINTS = [{"train_seconds": 10, "overall_acc": 90.0}, {"train_seconds": 20, "overall_acc": 95.0}]


def figures():
    counts = np.eye(36) * 10
    counts[0, 24] = 3
    pred = LABELS.copy()
    pred[0] = 24
    pred[24] = 0
    seven = render(wobbly_strokes("7", np.random.default_rng(1)))
    return {
        "sample_grid": (plots.sample_grid(IMAGES, LABELS, SOURCES, rows=2, cols=5), (4.5, 2.5)),
        "class_balance": (plots.class_balance(LABELS, SOURCES), (11, 3.8)),
        "training_curves": (plots.training_curves({"a": HISTORY, "b": HISTORY}), (11, 4)),
        "confusion_matrix": (plots.confusion_matrix(counts / counts.sum(1, keepdims=True)), (12, 10.5)),
        "prediction_grid": (plots.prediction_grid(IMAGES, LABELS, pred, np.full(40, 0.9), rows=2, cols=5), (5.25, 2.9)),
        "confused_pairs": (plots.confused_pairs([{"a": "0", "b": "O", "total": 2}], IMAGES, LABELS, pred), (8.55, 1.6)),
        "accuracy_vs_time": (plots.accuracy_vs_time({"seed": POINTS, "default": POINTS}, target=94.0), (9, 5)),
        "preprocessing_steps": (plots.preprocessing_steps([("a 7", seven, prepare(seven))]), (8.8, 2.5)),
        "grouped_bars": (plots.grouped_bars(["digits", "letters"], {"x": [99, 92], "y": [98, float("nan")]}, "t"), (9, 4.5)),
        "probability_bars": (plots.probability_bars([("7", 0.9), ("1", 0.05), ("T", 0.01)]), (4, 2)),
    }


@pytest.mark.parametrize("name", list(figures()))
def test_figure_functions_return_figures_of_fixed_size(name):
    fig, size = figures()[name]
    assert isinstance(fig, Figure)
    assert tuple(np.round(fig.get_size_inches(), 2)) == size


def test_confusion_matrix_labels_every_class():
    fig = plots.confusion_matrix(np.eye(36))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["0", "1", "2"]
    assert len(ax.get_yticklabels()) == 36
    assert len(fig.axes) == 2  # the heatmap and its colour bar


def test_wrong_predictions_are_marked():
    pred = LABELS.copy()
    pred[3] = 5
    fig = plots.prediction_grid(IMAGES, LABELS, pred, np.full(40, 0.5), rows=1, cols=5)
    titles = [ax.get_title() for ax in fig.axes]
    assert "(true 3)" in titles[3] and "true" not in titles[2]


def test_save_writes_png_and_returns_the_figure(tmp_path):
    fig = plots.class_balance(LABELS, SOURCES)
    out = plots.save(fig, tmp_path / "sub" / "balance.png")
    assert out is fig
    assert (tmp_path / "sub" / "balance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
