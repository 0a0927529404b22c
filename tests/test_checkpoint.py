"""Checkpoints keep what is needed to use a model, and refuse the wrong file clearly."""

import pytest
import torch

from helpers import checkpoint, model
from helpers.errors import HCRError
from helpers.labels import CLASS_NAMES


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
    path = tmp_path / "digits.pt"
    checkpoint.save_checkpoint(path, digits_only, "baseline")
    payload = torch.load(path, weights_only=True)
    payload["class_names"] = list("0123456789")
    torch.save(payload, path)
    with pytest.raises(HCRError, match="trained for the classes '0123456789'"):
        checkpoint.load_checkpoint(path)
    loaded, _ = checkpoint.load_checkpoint(path, class_names=list("0123456789"))
    assert loaded(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


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


def test_the_shipped_checkpoint_is_small_and_loads():
    assert checkpoint.SHIPPED.is_file(), "checkpoints/default.pt must be in the repository"
    assert checkpoint.SHIPPED.stat().st_size < 5 * 2**20
    net, info = checkpoint.load_checkpoint(checkpoint.SHIPPED)
    assert info["model"] == "compact"
    for key in ("digits_acc", "letters_acc", "overall_acc"):
        assert 0 < info["metrics"][key] <= 100
