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
    shipped, trained = tmp_path / "case.pt", tmp_path / "runs" / "case.pt"
    monkeypatch.setattr(checkpoint, "SHIPPED_CASE", shipped)
    monkeypatch.setattr(checkpoint, "TRAINED_CASE", trained)
    assert checkpoint.default_checkpoint(case_sensitive=True) == shipped
    net = model.build_model("baseline", num_classes=62)
    checkpoint.save_checkpoint(trained, net, "baseline", class_names=CASE_CLASS_NAMES)
    assert checkpoint.default_checkpoint(case_sensitive=True) == trained


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
    payload["weights_sha256"] = checkpoint.weights_sha256(payload["state_dict"])  # crafted, not damaged
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


# --- Hardening (issue 16): checkpoints that prove they are intact ---------------------------


def overwrite_8_bytes(data, rng):
    """Eight random bytes written over a random place: the damage of the issue's 30-trial check."""
    data = bytearray(data)
    while True:
        at = int(rng.integers(0, len(data) - 8))
        new = rng.integers(0, 256, 8).astype("uint8").tobytes()
        if bytes(data[at : at + 8]) != new:
            data[at : at + 8] = new
            return bytes(data)


def refusals_of_damage(source, tmp_path, trials=30, seed=16):
    """(refused, [messages]) over `trials` damaged copies of `source`, each loaded like a user would."""
    import numpy as np

    rng = np.random.default_rng(seed)
    original = source.read_bytes()
    damaged = tmp_path / "damaged.pt"
    messages = []
    for _ in range(trials):
        damaged.write_bytes(overwrite_8_bytes(original, rng))
        try:
            checkpoint.load_checkpoint(damaged)
        except HCRError as error:
            messages.append(str(error))
    return len(messages), messages


def test_eight_damaged_bytes_are_refused_30_times_out_of_30(tmp_path):
    path = checkpoint.save_checkpoint(tmp_path / "small.pt", model.build_model("baseline", seed=0), "baseline",
                                      extra={"digit_prior": 0.5})
    refused, messages = refusals_of_damage(path, tmp_path)
    assert refused == 30
    assert all("\n" not in m and m.startswith(str(tmp_path / "damaged.pt")) for m in messages), messages


@pytest.mark.slow
def test_the_shipped_checkpoints_refuse_damage_30_times_out_of_30(tmp_path):
    for shipped in (checkpoint.SHIPPED, checkpoint.SHIPPED_CASE):
        refused, messages = refusals_of_damage(shipped, tmp_path, seed=2024)
        assert refused == 30, shipped
        assert all("\n" not in m for m in messages)


def test_the_weights_hash_is_stored_and_checked(tmp_path):
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline", seed=0), "baseline")
    payload = torch.load(path, weights_only=True)
    assert payload["weights_sha256"] == checkpoint.weights_sha256(payload["state_dict"])
    assert len(payload["weights_sha256"]) == 64
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key].view(-1)[0] += 1.0  # a changed weight in a file whose zip is intact
    torch.save(payload, path)
    with pytest.raises(HCRError, match="is damaged \\(its weights do not match the SHA-256"):
        checkpoint.load_checkpoint(path)


def test_the_hash_covers_names_dtypes_and_shapes():
    weights = {"a": torch.zeros(2, 3), "b": torch.ones(4)}
    base = checkpoint.weights_sha256(weights)
    assert checkpoint.weights_sha256(dict(reversed(list(weights.items())))) == base  # a fixed order
    assert checkpoint.weights_sha256({"a": torch.zeros(3, 2), "b": torch.ones(4)}) != base
    assert checkpoint.weights_sha256({"a": torch.zeros(2, 3, dtype=torch.float64), "b": torch.ones(4)}) != base
    assert checkpoint.weights_sha256({"c": torch.zeros(2, 3), "b": torch.ones(4)}) != base


def test_damage_outside_the_weights_is_caught_by_the_zip_checks(tmp_path):
    import zipfile

    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline", seed=0), "baseline",
                                      metrics={"overall_acc": 91.5})
    data = bytearray(path.read_bytes())
    pickle_record = next(i for i in zipfile.ZipFile(path).infolist() if i.filename.endswith("data.pkl"))
    start = data.index(b"overall_acc", pickle_record.header_offset)
    data[start : start + 7] = b"OVERALL"  # a metric's name in the pickle: the weights are untouched
    path.write_bytes(bytes(data))
    with pytest.raises(HCRError, match="fails its CRC check"):
        checkpoint.load_checkpoint(path)


def test_the_line_reader_format_is_hashed_and_checked_too(tmp_path):
    state = {"conv.weight": torch.randn(4, 1, 3, 3), "conv.bias": torch.zeros(4)}
    path = checkpoint.save_payload(tmp_path / "lines.pt", {"model": "crnn", "class_names": ["<blank>", "a"],
                                                          "extra": {"config": {}}, "state_dict": state})
    payload = checkpoint.read_checkpoint(path)
    assert payload["weights_sha256"] == checkpoint.weights_sha256(state)
    refused, _ = refusals_of_damage(path, tmp_path, trials=10)
    damaged = tmp_path / "damaged.pt"
    with pytest.raises(HCRError):
        checkpoint.read_checkpoint(damaged)
    assert refused == 10


def test_the_shipped_checkpoints_carry_the_hash_and_one_logit_bias():
    for path, names in ((checkpoint.SHIPPED, CLASS_NAMES), (checkpoint.SHIPPED_CASE, CASE_CLASS_NAMES)):
        payload = checkpoint.read_checkpoint(path)
        assert payload["weights_sha256"] == checkpoint.weights_sha256(payload["state_dict"])
        assert "digit_prior" not in payload["extra"] and len(payload["extra"]["logit_bias"]) == len(names)
    default = checkpoint.read_checkpoint(checkpoint.SHIPPED)["extra"]["logit_bias"]
    assert default == [-0.5] * 10 + [0.0] * 26  # the digit prior chosen on the dev fonts, as one bias


def test_the_digit_prior_is_folded_into_one_stored_logit_bias(tmp_path):
    bias = [0.25] * 62
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline", num_classes=62, seed=0),
                                      "baseline", class_names=CASE_CLASS_NAMES,
                                      extra={"digit_prior": 1.0, "logit_bias": bias, "device": "cpu"})
    extra = checkpoint.read_checkpoint(path)["extra"]
    assert extra == {"device": "cpu", "logit_bias": [1.25] * 10 + [0.25] * 52}


def test_old_files_with_a_separate_digit_prior_still_load_the_same_bias(tmp_path):
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline", seed=0), "baseline")
    craft(path, lambda p: p["extra"].update(digit_prior=-0.5))
    payload = checkpoint.read_checkpoint(path)
    assert checkpoint.stored_bias(payload).tolist() == [-0.5] * 10 + [0.0] * 26


def craft(path, edit):
    """Edit a saved checkpoint's payload and save it with a correct hash: a crafted, not a damaged, file."""
    payload = torch.load(path, weights_only=True)
    stored = payload.get("weights_sha256")
    edit(payload)
    state = payload.get("state_dict")
    tensors = isinstance(state, dict) and all(map(torch.is_tensor, state.values()))
    if payload.get("weights_sha256") == stored and tensors:
        payload["weights_sha256"] = checkpoint.weights_sha256(payload["state_dict"])
    torch.save(payload, path)
    return path


def _set(key, value):
    return lambda payload: payload.__setitem__(key, value)


def _set_extra(key, value):
    return lambda payload: payload["extra"].__setitem__(key, value)


def _set_weight(suffix, value):
    def edit(payload):
        key = next(k for k in payload["state_dict"] if k.endswith(suffix))
        payload["state_dict"][key] = value(payload["state_dict"][key])
    return edit


CRAFTED = {
    "extra None": (_set("extra", None), "extra"),
    "extra a list": (_set("extra", [1, 2]), "extra"),
    "extra a string": (_set("extra", "digit_prior"), "extra"),
    "model a number": (_set("model", 5), "does not name its model"),
    "model huge": (_set("model", "x" * 10_000), "does not name its model"),
    "class names a string": (_set("class_names", "0123456789"), "class names"),
    "class names numbers": (_set("class_names", list(range(36))), "class names"),
    "class names repeated": (_set("class_names", ["A"] * 36), "class names"),
    "class names unknown": (_set("class_names", [f"c{i}" for i in range(36)]), "not this project's characters"),
    "num_classes disagrees": (_set("num_classes", 99), "says it has 99 classes"),
    "metrics a list": (_set("metrics", [1]), "metrics"),
    "digit prior 1e300": (_set_extra("digit_prior", 1e300), "digit prior"),
    "digit prior a string": (_set_extra("digit_prior", "0.5"), "digit prior"),
    "digit prior None": (_set_extra("digit_prior", None), "digit prior"),
    "logit bias too short": (_set_extra("logit_bias", [0.0] * 35), "class-prior correction"),
    "logit bias NaN": (_set_extra("logit_bias", [float("nan")] * 36), "class-prior correction"),
    "logit bias huge": (_set_extra("logit_bias", [1e30] * 36), "class-prior correction"),
    "logit bias a dict": (_set_extra("logit_bias", {"a": 1}), "class-prior correction"),
    "state_dict a list": (_set("state_dict", [1, 2]), "no usable weights"),
    "a weight that is not a tensor": (_set_weight("weight", lambda t: 3), "not named tensors"),
    "a complex weight": (_set_weight("weight", lambda t: torch.full(t.shape, complex("nan"), dtype=torch.complex64)),
                         "not real numbers"),
    "a negative BatchNorm variance": (_set_weight("running_var", lambda t: torch.full_like(t, -1.0)),
                                      "negative variance"),
    "the hash a number": (_set("weights_sha256", 12), "SHA-256"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_fields_are_refused_in_one_sentence(tmp_path, case):
    edit, expected = CRAFTED[case]
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("compact", seed=0), "compact")
    craft(path, edit)
    with pytest.raises(HCRError) as error:
        checkpoint.load_checkpoint(path)
    message = str(error.value)
    assert expected in message and "\n" not in message and message.endswith("."), message


def test_two_million_class_names_are_refused_before_any_model_is_built(tmp_path, monkeypatch):
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline", seed=0), "baseline")
    craft(path, _set("class_names", ["A"] * 2_000_000))
    built = []
    monkeypatch.setattr(checkpoint, "build_model", lambda *a, **k: built.append(a))
    with pytest.raises(HCRError, match="between 1 and 1024 class names"):
        checkpoint.load_checkpoint(path)
    assert built == []


@pytest.mark.parametrize("kind", ["folder", "fifo", "device", "huge"])
def test_what_is_not_a_checkpoint_file_is_named(tmp_path, kind):
    import os

    path = tmp_path / "m.pt"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = "/dev/zero"
    else:
        with open(path, "wb") as f:
            f.truncate(checkpoint.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(HCRError) as error:
        checkpoint.load_checkpoint(path)
    message = str(error.value)
    expected = {"folder": "is a folder", "fifo": "named pipe", "device": "is a device", "huge": "MB, far more"}[kind]
    assert expected in message and "\n" not in message


def test_an_unreadable_checkpoint_is_named(tmp_path, monkeypatch):
    import builtins

    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline", seed=0), "baseline")
    real_open = builtins.open

    def refuse(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refuse)  # root reads everything: refuse the way a user's system would
    with pytest.raises(HCRError, match="cannot be read \\(permission denied\\)"):
        checkpoint.load_checkpoint(path)


def test_a_symlink_loop_is_named(tmp_path):
    loop = tmp_path / "loop.pt"
    loop.symlink_to(loop)
    with pytest.raises(HCRError, match="loops back on itself"):
        checkpoint.load_checkpoint(loop)


# --- Hardening (issue 16): saving never replaces a special file, cleans up, says why it cannot ---


@pytest.mark.parametrize("kind", ["folder", "fifo", "symlink", "device"])
def test_saving_never_replaces_what_is_not_a_regular_file(tmp_path, kind):
    import os
    import stat

    target = tmp_path / "m.pt"
    if kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        target.symlink_to("/dev/null")
    else:
        try:
            os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
        except PermissionError:
            pytest.skip("cannot make a device node here")
    mode = os.lstat(target).st_mode
    with pytest.raises(HCRError) as error:
        checkpoint.save_checkpoint(target, model.build_model("baseline"), "baseline")
    message = str(error.value)
    assert "not a regular file" in message and "\n" not in message
    assert os.lstat(target).st_mode == mode  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # and no scratch file left


def test_saving_onto_dev_null_is_refused(monkeypatch):
    import os

    def never(source, target, *args, **kwargs):  # a guard: code that would replace /dev/null fails, harmlessly
        raise AssertionError(f"tried to replace {target}")

    monkeypatch.setattr(os, "replace", never)
    monkeypatch.setattr(os, "rename", never)
    before = os.stat("/dev/null")
    with pytest.raises(HCRError, match="is a device, not a regular file"):
        checkpoint.save_checkpoint("/dev/null", model.build_model("baseline"), "baseline")
    assert os.stat("/dev/null").st_rdev == before.st_rdev
    assert not [name for name in os.listdir("/dev") if name.startswith("null.")]  # no scratch file either


def test_scratch_files_of_a_killed_save_are_cleaned(tmp_path):
    import fcntl
    import os

    left = tmp_path / "m.pt.0123456789ab.tmp"  # what a save killed with SIGKILL leaves: no lock held any more
    left.write_bytes(b"part of a checkpoint")
    busy = tmp_path / "m.pt.ba9876543210.tmp"  # a save writing right now holds its lock
    busy.write_bytes(b"being written")
    others = [tmp_path / "other.pt.0123456789ab.tmp", tmp_path / "m.pt.notes.tmp", tmp_path / "m.pt.tmp"]
    for other in others:
        other.write_bytes(b"not ours")
    fd = os.open(busy, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline"), "baseline")
    finally:
        os.close(fd)
    assert not left.exists() and busy.exists() and all(other.exists() for other in others)
    checkpoint.load_checkpoint(tmp_path / "m.pt")


def test_a_save_killed_for_real_leaves_a_scratch_file_the_next_save_removes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "m.pt"
    script = (
        "import sys, time, torch\n"
        "from helpers import checkpoint, model\n"
        "real = torch.save\n"
        "def slow(payload, file):\n"
        "    file.write(b'partial'); file.flush(); print('writing', flush=True); time.sleep(60)\n"
        "torch.save = slow\n"
        f"checkpoint.save_checkpoint({str(target)!r}, model.build_model('baseline'), 'baseline')\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    time.sleep(0.1)
    assert [p.name.endswith(".tmp") for p in tmp_path.iterdir()] == [True]  # the kill left one behind
    checkpoint.save_checkpoint(target, model.build_model("baseline"), "baseline")
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_bad_save_paths_give_one_sentence(tmp_path, monkeypatch):
    import os

    net = model.build_model("baseline")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    cases = {
        a_file / "m.pt": "is a file, not a folder",
        a_file / "deeper" / "m.pt": "is a file, not a folder",
        tmp_path / ("n" * 300 + ".pt"): "too long",
        tmp_path / ("n" * 240 + ".pt"): "too long",  # fits, but its scratch file would not
    }
    for path, expected in cases.items():
        with pytest.raises(HCRError) as error:
            checkpoint.save_checkpoint(path, net, "baseline")
        assert expected in str(error.value) and "\n" not in str(error.value), (path, error.value)
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)  # root writes everywhere: refuse as a read-only folder would
    with pytest.raises(HCRError, match="cannot be written \\(permission denied\\); choose a folder you can write"):
        checkpoint.save_checkpoint(tmp_path / "m.pt", net, "baseline")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_full_disk_while_saving_gives_one_sentence_and_no_scratch_file(tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(HCRError, match="the disk is full; free some space and save again"):
        checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline"), "baseline")
    assert list(tmp_path.iterdir()) == []


def test_a_tensor_claiming_more_numbers_than_it_stores_is_refused_before_it_is_read():
    """An expanded view saves one number and a huge shape: checking it would touch 10**10 of them."""
    huge = torch.zeros(1).expand(100_000, 100_000)
    with pytest.raises(HCRError, match="claims more numbers than the file stores"):
        checkpoint.refuse_non_finite("stretched.pt", {"w": huge})


def test_a_compressed_record_is_refused_before_anything_is_inflated(tmp_path):
    import io
    import zipfile

    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model.build_model("baseline", seed=0), "baseline")
    data = io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(data, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("m/bomb", b"\0" * 50_000_000)  # 50 MB that deflate to about 50 kB
    with pytest.raises(HCRError, match="is compressed, which torch never does"):
        checkpoint.check_zip(data.getvalue(), "bomb.pt")
