"""Every figure function draws what it is given (each figure is built once), and `save` writes a PNG."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from helpers import plots, training
from helpers.labels import CLASS_NAMES
from helpers.preprocess import prepare
from helpers.strokes import render, wobbly_strokes

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 255, size=(40, 28, 28)).astype(np.uint8)
LABELS = np.arange(40) % 36
SOURCES = (LABELS >= 10).astype(np.uint8)
PRED = LABELS.copy()
PRED[[0, 3, 24]] = [24, 5, 0]  # 0 read as O, 3 as 5, O as 0
ROWS = [{"epoch": 1, "train_loss": 1.0, "train_acc": 70.0, "test_loss": 0.5, "test_acc": 90.0},
        {"epoch": 2, "train_loss": 0.5, "train_acc": 90.0, "test_loss": 0.3, "test_acc": 95.0}]
POINTS = [{"train_seconds": 10, "overall_acc": 90.0}, {"train_seconds": 20, "overall_acc": 95.0}]


@pytest.fixture(scope="module")
def figures():
    """Each figure once, for all the tests that look at it."""
    counts = np.eye(36) * 10
    counts[0, 24] = 3
    seven = render(wobbly_strokes("7", np.random.default_rng(1)))
    return {
        "sample_grid": plots.sample_grid(IMAGES[5:], LABELS[5:], SOURCES[5:], rows=2, cols=5),  # 5-9, A-E
        "class_balance": plots.class_balance(LABELS, SOURCES),
        # a History as `training.train` returns it, and a recorded one read from JSON
        "training_curves": plots.training_curves({"a": training.History(epochs=ROWS), "b": {"epochs": ROWS[:1]}}),
        "confusion_matrix": plots.confusion_matrix(counts / counts.sum(1, keepdims=True)),
        "prediction_grid": plots.prediction_grid(IMAGES, LABELS, PRED, np.full(40, 0.9), rows=1, cols=5),
        "confused_pairs": plots.confused_pairs([{"a": "0", "b": "O", "total": 2}], IMAGES, LABELS, PRED),
        "accuracy_vs_time": plots.accuracy_vs_time({"seed": POINTS, "default": POINTS[:1]}, target=94.0),
        "preprocessing_steps": plots.preprocessing_steps([("a 7", seven, prepare(seven))]),
        "val_cer_curves": plots.val_cer_curves({"a": [[100, 40.0], [200, 30.0], [300, 31.0]], "b": [[100, 35.0]]}),
        "mix_shares": plots.mix_shares({"French": ("le chat", np.array([[0.75, 0.25], [0.4, 0.6], [0.1, 0.9]])),
                                        "English": ("the cat", np.array([[0.75, 0.25], [0.9, 0.1], [1.0, 0.0]]))}),
    }


def test_every_figure_function_returns_a_figure(figures):
    assert all(isinstance(fig, Figure) for fig in figures.values())


def test_sample_grid_titles_are_the_labels_coloured_by_source(figures):
    axes = figures["sample_grid"].axes
    assert [ax.get_title() for ax in axes] == list("56789ABCDE")
    assert {ax.title.get_color() for ax in axes[:5]} == {plots.SOURCE_COLOURS[0]}
    assert {ax.title.get_color() for ax in axes[5:]} == {plots.SOURCE_COLOURS[1]}


def test_class_balance_bars_count_each_class(figures):
    heights = [p.get_height() for p in figures["class_balance"].axes[0].patches[:36]]
    assert heights == np.bincount(LABELS, minlength=36).tolist()


def test_training_curves_draw_train_and_held_out_per_run(figures):
    loss, acc = figures["training_curves"].axes
    lines = {line.get_label(): line for line in loss.get_lines()}
    assert set(lines) == {"a train", "a held-out", "b train", "b held-out"}
    assert list(lines["a held-out"].get_ydata()) == [0.5, 0.3]
    assert list(acc.get_lines()[0].get_ydata()) == [70.0, 90.0]


def test_confusion_matrix_labels_every_class_and_marks_big_mistakes(figures):
    fig = figures["confusion_matrix"]
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASS_NAMES)
    assert len(ax.get_yticklabels()) == 36
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    assert [t.get_text() for t in ax.texts if t.get_text()] == ["23"]  # 3 of 13 zeros read as O


def test_wrong_predictions_are_marked(figures):
    titles = [ax.get_title() for ax in figures["prediction_grid"].axes]
    assert titles[0] == "O 90%\n(true 0)" and titles[3] == "5 90%\n(true 3)" and titles[2] == "2 90%"


def test_confused_pairs_show_both_directions(figures):
    axes = figures["confused_pairs"].axes
    assert "0 / O\n2 errors" in [t.get_text() for ax in axes for t in ax.texts]
    assert sorted(ax.get_title() for ax in axes if ax.get_title()) == ["0→O", "O→0"]


def test_accuracy_vs_time_plots_each_curve_and_the_target(figures):
    ax = figures["accuracy_vs_time"].axes[0]
    seed, default, target = ax.get_lines()
    assert list(seed.get_xdata()) == [10, 20] and list(seed.get_ydata()) == [90.0, 95.0]
    assert list(default.get_ydata()) == [90.0] and list(target.get_ydata()) == [94.0, 94.0]


def test_val_cer_curves_ring_the_best_point_of_each_run(figures):
    a, a_best, b, b_best = figures["val_cer_curves"].axes[0].get_lines()
    assert list(a.get_xdata()) == [100, 200, 300] and list(a.get_ydata()) == [40.0, 30.0, 31.0]
    assert list(a_best.get_xdata()) == [200] and list(b_best.get_ydata()) == [35.0]


def test_mix_shares_draw_the_second_models_share_of_each_line(figures):
    french, english = figures["mix_shares"].axes[0].get_lines()
    assert list(french.get_ydata()) == [0.25, 0.6, 0.9] and list(english.get_xdata()) == [0, 1, 2]
    assert "'the cat'" in english.get_label()


def test_preprocessing_steps_show_the_four_stages(figures):
    titles = [ax.get_title() for ax in figures["preprocessing_steps"].axes]
    assert titles == ["input", "grey", "ink found", "28x28 for the model"]


def test_save_writes_png_and_returns_the_figure(figures, tmp_path):
    fig = figures["class_balance"]
    assert plots.save(fig, tmp_path / "sub" / "balance.png") is fig
    assert (tmp_path / "sub" / "balance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
