"""Models, the training loop (seeding, devices, augmentation, history) and evaluation."""

import numpy as np
import pytest
import torch

from helpers import data, evaluation, model, training
from helpers.labels import CLASS_NAMES, EMNIST, MNIST


def test_baseline_is_the_seeds_cnn():
    net = model.build_model("baseline")
    rows = model.layer_table(net)
    assert [r[0] for r in rows] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten",
                                    "Linear", "ReLU", "Linear"]
    shapes = [r[1] for r in rows]
    assert shapes[0] == (32, 28, 28) and shapes[2] == (32, 14, 14) and shapes[5] == (64, 7, 7)
    assert shapes[6] == (3136,) and shapes[7] == (128,) and shapes[9] == (36,)
    expected = (1 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (3136 * 128 + 128) + (128 * 36 + 36)
    assert model.count_parameters(net) == expected == sum(r[2] for r in rows)


@pytest.mark.parametrize("name", list(model.MODELS))
def test_models_map_a_batch_to_36_logits(name):
    net = model.build_model(name).eval()
    assert net(torch.zeros(5, 1, 28, 28)).shape == (5, 36)
    assert model.build_model(name, num_classes=10)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        model.build_model("resnet152")


def test_pick_device(monkeypatch):
    monkeypatch.delenv(training.DEVICE_ENV, raising=False)
    assert training.pick_device("cpu").type == "cpu"
    monkeypatch.setenv(training.DEVICE_ENV, "cpu")
    assert training.pick_device().type == "cpu"
    monkeypatch.delenv(training.DEVICE_ENV)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert training.pick_device().type == expected


def test_bf16_only_on_the_cpu_and_only_when_asked_or_native():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert not training.use_bf16(training.Recipe(precision="fp32"), cpu)
    assert training.use_bf16(training.Recipe(precision="bf16"), cpu)
    assert not training.use_bf16(training.Recipe(precision="bf16"), gpu)
    assert training.use_bf16(training.Recipe(precision="auto"), cpu) == training.cpu_has_native_bf16()


def test_augmentation_keeps_shape_and_range_and_is_seeded():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 8:20, 12:16] = 1.0
    a = training.augment_batch(x, torch.Generator().manual_seed(1))
    b = training.augment_batch(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1.0 + 1e-6
    assert not torch.equal(a, x)
    # Still the same bar, roughly where it was: jitter, not a different picture.
    assert (a[:, :, 12:16, 13:15] > 0.3).float().mean() > 0.9


def small_set(data_dir):
    return data.load_characters(train=True, root=data_dir)


def test_same_seed_same_numbers(data_dir):
    train_set = small_set(data_dir)
    recipe = training.Recipe(epochs=2, batch_size=16, augment=True, schedule="onecycle", optimizer="adamw", lr=3e-3)
    runs = []
    for _ in range(2):
        net = model.build_model("compact", seed=7)
        history = training.train(net, train_set, train_set, recipe, seed=7, progress=False, log=None)
        runs.append((history, net.state_dict()))
    (h1, w1), (h2, w2) = runs
    assert [r["train_loss"] for r in h1.epochs] == [r["train_loss"] for r in h2.epochs]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    net = model.build_model("compact", seed=8)
    h3 = training.train(net, train_set, None, recipe, seed=8, progress=False, log=None)
    assert h3.epochs[0]["train_loss"] != h1.epochs[0]["train_loss"]


def test_history_records_epochs_and_evaluations(data_dir):
    train_set = small_set(data_dir)
    lines = []
    history = training.train(model.build_model("baseline"), train_set, train_set, training.Recipe(epochs=2, batch_size=32),
                             progress=False, evals_per_epoch=2, log=lines.append)
    assert [r["epoch"] for r in history.epochs] == [1, 2]
    assert len(history.evaluations) == 4
    # 92 images in batches of 32: 3 steps an epoch, evaluated after steps 2 and 3.
    assert [round(e["epoch"], 2) for e in history.evaluations] == [0.67, 1.0, 1.67, 2.0]
    first = history.evaluations[0]
    assert {"train_seconds", "images_seen", "overall_acc", "digits_acc", "letters_acc", "loss"} <= set(first)
    assert history.images_seen == 2 * len(train_set)
    assert history.train_seconds > 0 and "test_acc" in history.epochs[-1]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2: train loss")


def test_stop_when_ends_training_early(data_dir):
    train_set = small_set(data_dir)
    history = training.train(model.build_model("baseline"), train_set, train_set, training.Recipe(epochs=5, batch_size=32),
                             progress=False, log=None, stop_when=lambda e: True)
    assert len(history.evaluations) == 1 and history.epochs == []


def test_progress_bar_runs(data_dir, capsys):
    training.train(model.build_model("baseline"), small_set(data_dir), None, training.Recipe(epochs=1, batch_size=32),
                   progress=True, log=None)
    assert "epoch 1/1" in capsys.readouterr().err


def test_recalibrated_batchnorm_matches_clean_statistics():
    net = model.build_model("compact")
    images = torch.rand(64, 1, 28, 28)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(5.0)
    training.recalibrate_batchnorm(net, images, torch.device("cpu"), count=64, batch_size=64)
    first = net[1]
    with torch.no_grad():
        expected = net[0](images).mean(dim=(0, 2, 3))
    assert torch.allclose(first.running_mean, expected, atol=1e-5)
    assert first.momentum == 0.1


def test_summarise_strict_tolerant_and_restricted():
    labels = torch.tensor([0, 1, 24, 10, 21])  # 0, 1, O, A, L
    sources = torch.tensor([MNIST, MNIST, EMNIST, EMNIST, EMNIST])
    pred = torch.tensor([24, 1, 0, 10, 1])  # 0->O, 1 ok, O->0, A ok, L->1
    logits = torch.full((5, 36), -5.0)
    logits[torch.arange(5), pred] = 5.0
    logits[0, 0] = 4.0  # second choice for the 0 is 0 itself
    logits[2, 24] = 4.0
    logits[4, 21] = 4.0
    s = evaluation.summarise(logits, labels, sources)
    assert s["digits_acc"] == 50.0 and s["letters_acc"] == pytest.approx(100 / 3, abs=1e-3)
    assert s["overall_acc"] == 40.0 and s["overall_tolerant_acc"] == 100.0
    assert s["digits_10way_acc"] == 100.0 and s["letters_26way_acc"] == 100.0
    assert s["test_images"] == {"digits": 2, "letters": 3}


def test_confusions_and_report():
    labels = np.array([0, 0, 0, 24, 24, 1])
    pred = np.array([0, 24, 24, 0, 24, 1])
    counts = evaluation.confusion_counts(labels, pred)
    assert counts.shape == (36, 36) and counts[0, 24] == 2 and counts[24, 0] == 1
    rows = evaluation.normalise_rows(counts)
    assert rows[0, 24] == pytest.approx(2 / 3) and rows[5].sum() == 0
    top = evaluation.most_confused(counts, k=1)
    assert top == [{"a": "0", "b": "O", "a_as_b": 2, "b_as_a": 1, "total": 3}]
    report = evaluation.per_class_report(labels, pred)
    assert all(name in report for name in CLASS_NAMES)
    assert evaluation.per_class_report(labels, pred, as_dict=True)["1"]["recall"] == 1.0


def test_evaluate_matches_summarise(data_dir):
    ds = small_set(data_dir)
    net = model.build_model("baseline").eval()
    quick = training.evaluate(net, ds)
    full = evaluation.summarise(training.predict_logits(net, ds.to_float()), ds.labels, ds.sources)
    for key in ("overall_acc", "digits_acc", "letters_acc"):
        assert quick[key] == pytest.approx(full[key], abs=1e-3)


def test_summary_table_lays_out_strict_tolerant_and_restricted():
    s = {"digits_acc": 90.0, "letters_acc": 80.0, "overall_acc": 83.0, "digits_tolerant_acc": 95.0,
         "letters_tolerant_acc": 90.0, "overall_tolerant_acc": 91.0, "digits_10way_acc": 99.0, "letters_26way_acc": 94.0}
    table = evaluation.summary_table({"a": s, "b": {**s, "digits_acc": 91.0}})
    assert table.shape == (3, 6)
    assert table[("a", "strict")].tolist() == [90.0, 80.0, 83.0]
    assert table[("b", "strict")].iloc[0] == 91.0
    assert table[("a", "10-way / 26-way")].iloc[:2].tolist() == [99.0, 94.0]


def test_weight_average_is_what_training_returns(data_dir):
    """With ema > 0 the model handed back holds the averaged weights, not the last ones."""
    train_set = small_set(data_dir)
    recipe = training.Recipe(epochs=2, batch_size=16, optimizer="adamw", lr=3e-3, schedule="onecycle", ema=0.9)
    plain = training.Recipe(**{**recipe.to_dict(), "ema": 0.0})
    averaged = model.build_model("compact", seed=1)
    last = model.build_model("compact", seed=1)
    training.train(averaged, train_set, None, recipe, seed=1, progress=False, log=None)
    training.train(last, train_set, None, plain, seed=1, progress=False, log=None)
    w_avg, w_last = averaged[0].weight, last[0].weight
    assert not torch.equal(w_avg, w_last)
    assert torch.isfinite(w_avg).all()


def test_weight_average_follows_the_weights():
    net = torch.nn.Linear(2, 1)
    avg = training.WeightAverage(net, decay=0.5)
    with torch.no_grad():
        net.weight.fill_(1.0)
    for _ in range(50):
        avg.update()
    avg.swap()
    assert torch.allclose(net.weight, torch.ones_like(net.weight), atol=1e-6)
    avg.swap()
    assert torch.allclose(net.weight, torch.ones_like(net.weight))
