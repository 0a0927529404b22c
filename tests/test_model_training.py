"""Models, recipes and the training loop: seeding, devices, augmentation, the loss, EMA and history."""

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, update_bn

from helpers import data, evaluation, hardware, model, training
from helpers.errors import HCRError
from helpers.labels import CASE_NUM_CLASSES, EMNIST, MNIST


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
def test_models_map_a_batch_to_their_number_of_classes(name):
    net = model.build_model(name).eval()
    assert net(torch.zeros(5, 1, 28, 28)).shape == (5, 36)
    assert model.build_model(name, num_classes=10)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_unknown_model_name_says_what_to_choose():
    with pytest.raises(HCRError, match=r"no model called 'resnet152': choose one of baseline, compact\."):
        model.build_model("resnet152")


# --- Devices and precision ---------------------------------------------------------------------


def test_device_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv(hardware.DEVICE_ENV, "meta")
    assert hardware.pick_device() == torch.device("meta")
    assert hardware.pick_device("cpu") == torch.device("cpu")  # the argument wins
    monkeypatch.setenv(hardware.DEVICE_ENV, "gpu")
    with pytest.raises(HCRError, match=r"'gpu' is not a device .*HCR_DEVICE"):
        hardware.pick_device()


def test_device_without_a_choice_is_the_accelerator_else_the_cpu(monkeypatch):
    monkeypatch.delenv(hardware.DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda: torch.device("mps"))
    assert hardware.pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert hardware.pick_device() == torch.device("cpu")


def test_bf16_only_on_the_cpu_and_only_when_asked_or_native():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert not hardware.use_bf16("fp32", cpu)
    assert hardware.use_bf16("bf16", cpu)
    assert not hardware.use_bf16("bf16", gpu)
    assert hardware.use_bf16("auto", cpu) == hardware.cpu_has_native_bf16()


# --- Recipes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"optimizer": "sgd"}, "optimizer='sgd' is unknown: choose one of adam, adamw"),
    ({"schedule": "cosine"}, "schedule='cosine' is unknown: choose one of constant, onecycle"),
    ({"precision": "fp16"}, "precision='fp16' is unknown"),
    ({"epochs": 0}, "epochs=0 is invalid: make it a whole number"),
    ({"epochs": 2.5}, "epochs=2.5 is invalid"),
    ({"batch_size": -8}, "batch_size=-8 is invalid"),
    ({"lr": 0}, "lr=0 is invalid: make it a number above 0"),
    ({"lr": "fast"}, "lr='fast' is invalid"),
    ({"weight_decay": -1e-4}, "weight_decay=-0.0001 is invalid"),
    ({"warmup": 1.0}, "warmup=1.0 is invalid"),
    ({"ema": 1.0}, "ema=1.0 is invalid"),
])
def test_a_recipe_is_checked_when_it_is_made(change, message):
    with pytest.raises(HCRError, match=message):
        training.Recipe(**change)
    with pytest.raises(HCRError, match=message):
        dataclasses.replace(training.DEFAULT_RECIPE, **change)


def test_the_recipes():
    seed = training.SEED_RECIPE
    assert (seed.epochs, seed.batch_size, seed.optimizer, seed.lr, seed.schedule, seed.augment) == (
        5, 64, "adam", 1e-3, "constant", False)
    d = training.DEFAULT_RECIPE
    assert (d.epochs, d.batch_size, d.optimizer, d.schedule, d.augment, d.ema, d.recalibrate_bn) == (
        6, 256, "adamw", "onecycle", True, 0.999, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.epochs = 1  # a checked recipe stays checked
    assert training.Recipe(**d.to_dict()) == d


# --- Augmentation and loss ---------------------------------------------------------------------


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


def test_target_set_loss_is_cross_entropy_for_one_class_and_the_set_probability_otherwise():
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    one_each = torch.eye(4, dtype=torch.bool)
    loss_fn = training.target_set_loss(one_each)
    labels = torch.tensor([0, 3])
    assert torch.allclose(loss_fn(logits, labels), F.cross_entropy(logits, labels))
    # Label 4 stands for "class 1 or class 2" (as "A or a" does for an EMNIST letter).
    sets = torch.cat([one_each, torch.tensor([[False, True, True, False]])])
    p = logits.softmax(1)
    expected = -(torch.log(p[0, 1] + p[0, 2]) + torch.log(p[1, 3])) / 2
    assert torch.allclose(training.target_set_loss(sets)(logits, torch.tensor([4, 3])), expected)


# --- Training ----------------------------------------------------------------------------------


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
    net = model.build_model("baseline")
    history = training.train(net, train_set, train_set, training.Recipe(epochs=2, batch_size=32),
                             progress=False, evals_per_epoch=2, log=lines.append)
    assert [r["epoch"] for r in history.epochs] == [1, 2]
    # 92 images in batches of 32: 3 steps an epoch, evaluated after steps 2 and 3.
    assert [round(e["epoch"], 2) for e in history.evaluations] == [0.67, 1.0, 1.67, 2.0]
    assert [e["images_seen"] for e in history.evaluations] == [64, 92, 156, 184]
    assert history.images_seen == 2 * len(train_set)
    last = history.evaluations[-1]
    assert last == {"epoch": 2.0, "train_seconds": last["train_seconds"], "images_seen": 184,
                    **evaluation.evaluate(net, train_set)}  # the model as it was handed back
    clock = [e["train_seconds"] for e in history.evaluations]
    assert clock == sorted(clock) and history.train_seconds >= clock[-1]
    row = history.epochs[-1]
    assert (row["test_loss"], row["test_acc"]) == (last["loss"], last["overall_acc"])
    assert (row["test_digits_acc"], row["test_letters_acc"]) == (last["digits_acc"], last["letters_acc"])
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2: train loss")
    assert f"held-out acc {last['overall_acc']:.2f}% (digits {last['digits_acc']:.2f}%" in lines[1]


def test_progress_bar_runs(data_dir, capsys):
    training.train(model.build_model("baseline"), small_set(data_dir), None, training.Recipe(epochs=1, batch_size=32),
                   progress=True, log=None)
    assert "epoch 1/1" in capsys.readouterr().err


def test_weight_average_is_what_training_evaluates_and_returns(data_dir):
    train_set = small_set(data_dir)
    recipe = training.Recipe(epochs=2, batch_size=16, optimizer="adamw", lr=3e-3, schedule="onecycle", ema=0.9)
    averaged = model.build_model("compact", seed=1)
    history = training.train(averaged, train_set, train_set, recipe, seed=1, progress=False, log=None)
    last = model.build_model("compact", seed=1)
    training.train(last, train_set, None, dataclasses.replace(recipe, ema=0.0), seed=1, progress=False, log=None)
    assert not torch.equal(averaged[0].weight, last[0].weight)
    # BatchNorm statistics are averaged with the weights, so the running mean is not the last one either.
    assert not torch.equal(averaged[1].running_mean, last[1].running_mean)
    assert history.evaluations[-1]["loss"] == evaluation.evaluate(averaged, train_set)["loss"]


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_batchnorm_statistics_come_from_clean_images_after_augmented_training(data_dir, ema):
    """Running statistics gathered on augmented batches (and averaged, with a weight average) are
    replaced by ones measured on the clean images, with dropout off as when the model is used."""
    train_set = small_set(data_dir)  # under 512 images: the recalibration sees them all in one batch
    recipe = training.Recipe(epochs=1, batch_size=16, augment=True, ema=ema)
    nets = {}
    for recalibrate in (True, False):
        nets[recalibrate] = model.build_model("compact", seed=1)
        training.train(nets[recalibrate], train_set, None, dataclasses.replace(recipe, recalibrate_bn=recalibrate),
                       seed=1, progress=False, log=None)
    clean = copy.deepcopy(nets[False]).eval()
    for m in clean.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    update_bn([train_set.to_float()], clean)
    norms = [[m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
             for net in (nets[True], nets[False], clean)]
    assert len(norms[0]) >= 2
    for recalibrated, gathered, expected in zip(*norms):
        assert torch.allclose(recalibrated.running_mean, expected.running_mean, atol=1e-5)
        assert torch.allclose(recalibrated.running_var, expected.running_var, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(gathered.running_var, expected.running_var, rtol=1e-2)
    assert all(m.p > 0 for m in nets[True].modules() if isinstance(m, torch.nn.Dropout))  # dropout is back
    # And without torch's help: the first BatchNorm holds the mean and (unbiased) variance of the first
    # convolution's output on the clean images.
    with torch.no_grad():
        first = nets[True][0](train_set.to_float())
    assert torch.allclose(nets[True][1].running_mean, first.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(nets[True][1].running_var, first.transpose(0, 1).flatten(1).var(1), rtol=1e-3, atol=1e-5)


def test_recalibration_leaves_the_random_numbers_to_training(data_dir):
    net = model.build_model("compact", seed=1).train()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    training.recalibrate_batchnorm(net, [small_set(data_dir).to_float()])
    assert torch.equal(torch.rand(3), expected)
    assert net.training


def test_weight_average_remembers_little_at_first():
    net = torch.nn.Linear(1, 1, bias=False)
    average = AveragedModel(net, multi_avg_fn=training._warming_ema(0.999), use_buffers=True)
    for value in (0.0, 1.0):  # the first update copies; the second keeps 2/11 of the average
        with torch.no_grad():
            net.weight.fill_(value)
        average.update_parameters(net)
    assert average.module.weight.item() == pytest.approx(9 / 11)


def test_train_any_number_of_classes_with_a_target_set_loss(data_dir):
    """A 62-class model on case-merged letters: a letter label allows its capital and its small form."""
    train_set = small_set(data_dir)
    letters = train_set.sources == EMNIST
    # Labels 0-61 are exact classes; 62 + k stands for "capital or small letter k".
    labels = torch.where(letters, train_set.labels - 10 + CASE_NUM_CLASSES, train_set.labels)
    sets = torch.zeros(CASE_NUM_CLASSES + 26, CASE_NUM_CLASSES, dtype=torch.bool)
    sets[torch.arange(CASE_NUM_CLASSES), torch.arange(CASE_NUM_CLASSES)] = True
    sets[CASE_NUM_CLASSES + torch.arange(26), 10 + torch.arange(26)] = True
    sets[CASE_NUM_CLASSES + torch.arange(26), 36 + torch.arange(26)] = True
    merged = data.CharacterSet(train_set.images, labels, train_set.sources)
    net = model.build_model("baseline", num_classes=CASE_NUM_CLASSES, seed=0)
    loss_fn = training.target_set_loss(sets)
    history = training.train(net, merged, merged, training.Recipe(epochs=1, batch_size=32), progress=False, log=None,
                             loss_fn=loss_fn)
    scores = history.evaluations[-1]
    assert set(scores) == {"epoch", "train_seconds", "images_seen", "loss", "overall_acc", "digits_acc", "letters_acc"}
    logits = evaluation.predict_logits(net, merged.to_float())
    pred = logits.argmax(1)
    right = torch.where(letters, (pred == labels - CASE_NUM_CLASSES + 10) | (pred == labels - 26), pred == labels)
    assert scores["overall_acc"] == round(100 * right.float().mean().item(), 3)
    assert scores["loss"] == pytest.approx(loss_fn(logits, labels).item(), rel=1e-5)


def test_train_a_digits_only_model(data_dir):
    digits = small_set(data_dir).from_source(MNIST)
    net = model.build_model("baseline", num_classes=10, seed=0)
    history = training.train(net, digits, digits, training.Recipe(epochs=1, batch_size=32), progress=False, log=None)
    assert set(history.evaluations[-1]) >= {"loss", "overall_acc", "digits_acc"}
    assert "letters_acc" not in history.evaluations[-1]
    assert history.evaluations[-1]["overall_acc"] == history.evaluations[-1]["digits_acc"]
