"""Checkpoints keep what is needed to use a model, and refuse the wrong file clearly."""

import pytest
import torch

from helpers import checkpoint, model
from helpers.errors import HCRError
from helpers.labels import CASE_CLASS_NAMES, CLASS_NAMES


def test_round_trip_gives_the_same_outputs(tmp_path):
    net = model.build_model("compact", seed=0).eval()
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", net, "compact", metrics={"overall_acc": 96.5},
                                      recipe={"epochs": 8}, extra={"device": torch.device("cpu")})
    loaded, info = checkpoint.load_checkpoint(path, model_name="compact")
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(net(x), loaded(x))
    assert not loaded.training
    assert info["class_names"] == list(CLASS_NAMES) and info["metrics"]["overall_acc"] == 96.5
    assert info["preprocessing"]["box"] == 20 and info["extra"]["device"] == "cpu"
    assert isinstance(info["torch_version"], str)
    torch.load(path, weights_only=True)  # plain contents: safe loading works


def test_an_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    checkpoint.save_checkpoint(path, model.build_model("baseline"), "baseline", metrics={"v": 1})
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(path, model.build_model("baseline"), "baseline", metrics={"v": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_missing_file(tmp_path):
    with pytest.raises(HCRError, match="No checkpoint at"):
        checkpoint.load_checkpoint(tmp_path / "none.pt")


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x89PNG not a model")
    with pytest.raises(HCRError, match="not a checkpoint this project can read"):
        checkpoint.load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save(model.build_model("baseline").state_dict(), foreign)  # a bare state dict
    with pytest.raises(HCRError, match="was not saved by this project"):
        checkpoint.load_checkpoint(foreign)


def test_wrong_model_name(tmp_path):
    path = checkpoint.save_checkpoint(tmp_path / "b.pt", model.build_model("baseline"), "baseline")
    with pytest.raises(HCRError, match="holds a 'baseline' model, not 'compact'"):
        checkpoint.load_checkpoint(path, model_name="compact")


def test_wrong_class_set(tmp_path):
    digits_only = model.build_model("baseline", num_classes=10)
    path = checkpoint.save_checkpoint(tmp_path / "digits.pt", digits_only, "baseline", class_names=list("0123456789"))
    with pytest.raises(HCRError, match="trained for 10 classes \\(0123456789\\), not the 36 classes \\(0-9, A-Z\\)"):
        checkpoint.load_checkpoint(path, class_names=CLASS_NAMES)
    loaded, info = checkpoint.load_checkpoint(path, class_names=list("0123456789"))
    assert loaded(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert checkpoint.load_checkpoint(path)[1]["num_classes"] == 10  # no expectation: whatever it holds


def test_case_classes_are_recorded_and_checked(tmp_path):
    net = model.build_model("compact", num_classes=len(CASE_CLASS_NAMES), seed=0)
    path = checkpoint.save_checkpoint(tmp_path / "case.pt", net, "compact", class_names=CASE_CLASS_NAMES)
    loaded, info = checkpoint.load_checkpoint(path, class_names=CASE_CLASS_NAMES)
    assert info["class_names"] == list(CASE_CLASS_NAMES) and info["num_classes"] == 62
    assert info["preprocessing"] == checkpoint.PREPROCESSING
    assert loaded(torch.zeros(1, 1, 28, 28)).shape == (1, 62)
    with pytest.raises(HCRError) as error:
        checkpoint.load_checkpoint(path, class_names=CLASS_NAMES)
    assert "was trained for 62 classes (0-9, A-Z, a-z), not the 36 classes (0-9, A-Z)" in str(error.value)
    assert "\n" not in str(error.value)


def test_weights_that_do_not_fit_the_model(tmp_path):
    path = checkpoint.save_checkpoint(tmp_path / "x.pt", model.build_model("baseline"), "baseline")
    payload = torch.load(path, weights_only=True)
    payload["model"] = "compact"
    torch.save(payload, path)
    with pytest.raises(HCRError, match="weights do not fit"):
        checkpoint.load_checkpoint(path)


def test_default_prefers_your_own_trained_model(tmp_path, monkeypatch):
    shipped, trained = tmp_path / "shipped.pt", tmp_path / "runs" / "default.pt"
    monkeypatch.setattr(checkpoint, "SHIPPED", shipped)
    monkeypatch.setattr(checkpoint, "TRAINED", trained)
    assert checkpoint.default_checkpoint() == shipped
    checkpoint.save_checkpoint(trained, model.build_model("baseline"), "baseline")
    assert checkpoint.default_checkpoint() == trained


def test_default_case_sensitive_checkpoint(tmp_path, monkeypatch):
    from helpers import paths

    assert checkpoint.SHIPPED_CASE == paths.CHECKPOINTS / "case.pt"
    assert checkpoint.TRAINED_CASE == paths.RUNS / "case.pt"
    shipped, trained = tmp_path / "case.pt", tmp_path / "runs" / "case.pt"
    monkeypatch.setattr(checkpoint, "SHIPPED_CASE", shipped)
    monkeypatch.setattr(checkpoint, "TRAINED_CASE", trained)
    assert checkpoint.default_checkpoint(case_sensitive=True) == shipped
    net = model.build_model("baseline", num_classes=62)
    checkpoint.save_checkpoint(trained, net, "baseline", class_names=CASE_CLASS_NAMES)
    assert checkpoint.default_checkpoint(case_sensitive=True) == trained
    assert checkpoint.default_checkpoint() in (checkpoint.SHIPPED, checkpoint.TRAINED)


def test_the_shipped_checkpoint_is_small_and_loads():
    assert checkpoint.SHIPPED.is_file(), "checkpoints/default.pt must be in the repository"
    assert checkpoint.SHIPPED.stat().st_size < 5 * 2**20
    net, info = checkpoint.load_checkpoint(checkpoint.SHIPPED)
    assert info["model"] == "compact"
    for key in ("digits_acc", "letters_acc", "overall_acc"):
        assert 0 < info["metrics"][key] <= 100


# --- Hardening (issue 9): non-finite weights, file mode, interrupted saves ------------------


def poisoned(value=float("nan")):
    net = model.build_model("baseline", seed=0)
    with torch.no_grad():
        next(net.parameters())[0].view(-1)[0] = value
    return net


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_not_saved(tmp_path, value):
    path = tmp_path / "m.pt"
    with pytest.raises(HCRError, match="not all finite numbers .* nothing was saved") as error:
        checkpoint.save_checkpoint(path, poisoned(value), "baseline")
    assert "\n" not in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_non_finite_weights_are_not_loaded(tmp_path):
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline", seed=0), "baseline")
    payload = torch.load(path, weights_only=True)
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key].view(-1)[0] = float("nan")
    torch.save(payload, path)
    with pytest.raises(HCRError, match=f"not finite numbers \\(NaN or infinity in '{key}'\\)"):
        checkpoint.load_checkpoint(path)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_file_mode_follows_the_umask(tmp_path, umask, mode):
    import os

    old = os.umask(umask)
    try:
        path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline"), "baseline")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


def test_the_file_is_synced_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    import os

    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline"), "baseline")
    assert calls[:2] == ["fsync", "replace"]


@pytest.mark.parametrize("step", ["torch.save", "os.fsync", "os.replace", "os.fdopen"])
def test_an_interrupt_at_any_step_leaves_no_part_file(tmp_path, monkeypatch, step):
    import os

    path = tmp_path / "m.pt"
    checkpoint.save_checkpoint(path, model.build_model("baseline"), "baseline", metrics={"v": 1})
    before = path.read_bytes()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    owner, name = step.split(".")
    monkeypatch.setattr(torch if owner == "torch" else os, name, interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(path, model.build_model("baseline"), "baseline", metrics={"v": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
