"""The predict function and command line, with the shipped model and with broken inputs."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from helpers import checkpoint, data
from helpers.errors import HCRError
from helpers.labels import CLASS_NAMES
from helpers.predict import Predictor, answer, decode_data_url, preview_data_url
from helpers.strokes import TEMPLATES, render, wobbly_strokes
from tests.conftest import ROOT


def cli(*args):
    return subprocess.run([sys.executable, "-m", "helpers.predict", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def shipped():
    return Predictor(checkpoint.SHIPPED)


@pytest.fixture
def drawings(tmp_path):
    """Script-drawn characters saved as PNG files, named by their class."""
    rng = np.random.default_rng(0)
    paths = {}
    for char in "7AK3":
        path = tmp_path / f"{char}.png"
        render(wobbly_strokes(char, rng), canvas=160, width=12).save(path)
        paths[char] = path
    return paths


def test_the_shipped_model_reads_script_drawn_characters(shipped):
    rng = np.random.default_rng(42)
    right = total = 0
    for char in TEMPLATES:
        for _ in range(3):
            image = render(wobbly_strokes(char, rng), canvas=int(rng.integers(80, 300)), width=int(rng.integers(6, 20)))
            right += shipped.predict(image).label == char
            total += 1
    assert right / total >= 0.85, f"{right}/{total}"


def test_prediction_fields(shipped, drawings):
    p = shipped.predict(drawings["7"])
    assert p.label == "7" and p.top3[0] == (p.label, p.confidence)
    assert len(p.top3) == 3 and p.top3[0][1] >= p.top3[1][1] >= p.top3[2][1]
    assert p.image.shape == (28, 28)
    d = p.to_dict("x.png")
    assert list(d) == ["path", "label", "confidence", "top3"] and d["path"] == "x.png"


def test_cli_text_output(drawings, tiny_checkpoint):
    run = cli(drawings["7"], drawings["A"], "--checkpoint", tiny_checkpoint)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(drawings["7"]) + ": ")
    assert lines[0].count("%") == 3


def test_cli_json_with_the_default_checkpoint(drawings):
    run = cli("--json", *drawings.values())
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in drawings.values()]
    for record, char in zip(records, drawings):
        assert set(record) == {"path", "label", "confidence", "top3"}
        assert record["label"] in CLASS_NAMES and record["label"] == record["top3"][0][0]
        assert record["confidence"] == record["top3"][0][1]
        assert all(isinstance(label, str) and 0 <= p <= 1 for label, p in record["top3"])
    assert [r["label"] for r in records] == list(drawings)


def test_cli_bad_inputs_do_not_stop_the_others(tmp_path, drawings, tiny_checkpoint):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    missing = tmp_path / "missing.png"
    run = cli("--json", text, drawings["7"], empty, blank, missing, drawings["K"], "--checkpoint", tiny_checkpoint)
    assert run.returncode == 1
    assert [json.loads(line)["path"] for line in run.stdout.splitlines()] == [str(drawings["7"]), str(drawings["K"])]
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    assert "Traceback" not in run.stderr
    for path in (text, empty, blank, missing):
        assert any(str(path) in line for line in errors)


def test_cli_huge_image(tmp_path, tiny_checkpoint):
    huge = tmp_path / "huge.png"
    Image.new("1", (12000, 6000), 1).save(huge)  # 72 megapixels, a few kB on disk
    run = cli(huge, "--checkpoint", tiny_checkpoint)
    assert run.returncode == 1 and "too large" in run.stderr and "Traceback" not in run.stderr


def test_cli_wrong_checkpoint(tmp_path, drawings):
    bad = tmp_path / "model.pt"
    bad.write_text("weights")
    run = cli(drawings["7"], "--checkpoint", bad)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "not a checkpoint" in run.stderr


def test_predict_many_batches_and_keeps_errors(shipped, drawings, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 0).save(blank)
    results = shipped.predict_many([drawings["3"], blank, drawings["A"]], batch_size=2)
    assert [type(r).__name__ for _, r in results] == ["Prediction", "HCRError", "Prediction"]
    assert results[0][1].label == "3" and results[2][1].label == "A"


def test_answer_and_data_urls(shipped, drawings):
    url = preview_data_url(np.eye(28, dtype=np.float32))
    assert url.startswith("data:image/png;base64,")
    assert decode_data_url(url)[:4] == b"\x89PNG"
    with pytest.raises(HCRError):
        decode_data_url("hello")
    good = answer(shipped, drawings["7"].read_bytes())
    assert good["label"] == "7" and good["preview"].startswith("data:image/png")
    assert "no character" in answer(shipped, Image.new("L", (64, 64), 255), name="The drawing")["error"]


def test_one_image_is_fast_enough_for_a_live_pad(shipped, drawings):
    """Generous bound for a loaded CI machine; the benchmark measures the real figure."""
    data_bytes = drawings["A"].read_bytes()
    shipped.predict(data_bytes)
    started = time.perf_counter()
    for _ in range(10):
        shipped.predict(data_bytes)
    assert (time.perf_counter() - started) / 10 < 0.2


def full_test_data():
    return not data.missing_files(train=False)


@pytest.mark.skipif(not full_test_data(), reason="needs the MNIST and EMNIST test files (set HCR_DATA_DIR)")
def test_the_shipped_checkpoint_reproduces_its_recorded_accuracy():
    import torch

    from helpers import evaluation, training

    net, info = checkpoint.load_checkpoint(checkpoint.SHIPPED)
    test_set = data.load_characters(train=False)
    if len(test_set) != info["metrics"]["test_images"]["digits"] + info["metrics"]["test_images"]["letters"]:
        pytest.skip("these are not the test files the checkpoint was measured on")
    logits = training.predict_logits(net, test_set.to_float(), torch.device("cpu"))
    logits = evaluation.with_digit_prior(logits, info["extra"].get("digit_prior", 0.0))
    measured = evaluation.summarise(logits, test_set.labels, test_set.sources)
    for key in ("digits_acc", "letters_acc", "overall_acc"):
        assert measured[key] == pytest.approx(info["metrics"][key], abs=0.02), key
    results = json.loads((ROOT / "assets" / "results.json").read_text())
    assert results["overall_acc"] == pytest.approx(measured["overall_acc"], abs=0.02)

