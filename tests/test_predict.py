"""The predict function and command line, with the shipped model and with broken inputs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import checkpoint, data
from helpers.errors import HCRError
from helpers.labels import CASE_CLASS_NAMES, CLASS_NAMES
from helpers.predict import Predictor, answer, decode_data_url, preview_data_url
from helpers.strokes import render, wobbly_strokes
from tests.conftest import ROOT


def cli(*args, cwd=None):
    """The command line as a user runs it; from another folder than the checkout by default."""
    import os
    import tempfile

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as elsewhere:
        return subprocess.run([sys.executable, "-m", "helpers.predict", *map(str, args)], cwd=cwd or elsewhere,
                              env=env, capture_output=True, text=True, timeout=120)


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
    for char in CLASS_NAMES:  # the 36 classes (TEMPLATES also holds a few small letters)
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
    assert list(d) == ["path", "label", "confidence", "top3", "unsure"] and d["path"] == "x.png"
    assert p.unsure is False and d["unsure"] is False


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
    for record in records:
        assert set(record) == {"path", "label", "confidence", "top3", "unsure"}
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


def in_process(capsys, *args):
    """The command line's main() in this process (no interpreter start-up): (status, stdout, stderr)."""
    from helpers.predict import main

    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_answers_from_any_folder_with_relative_paths(tmp_path, drawings):
    run = cli("--json", "7.png", cwd=drawings["7"].parent)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["path"] == "7.png" and json.loads(run.stdout)["label"] == "7"


# --- Hardening (issue 9) --------------------------------------------------------------------


def damaged_exif_jpeg(path):
    """A JPEG whose EXIF header has one wrong byte (`MM\0*` -> `MM\xe9*`); its pixels are fine."""
    import io

    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x010F] = "Phone"
    buffer = io.BytesIO()
    render(wobbly_strokes("K", np.random.default_rng(5)), canvas=160, width=12).convert("RGB").save(
        buffer, format="JPEG", quality=90, exif=exif.tobytes())
    path.write_bytes(buffer.getvalue().replace(b"MM\x00*", b"MM\xe9*", 1))
    return path


def test_a_jpeg_with_damaged_exif_does_not_stop_the_others(tmp_path, drawings):
    bad = damaged_exif_jpeg(tmp_path / "photo.jpg")
    run = cli("--json", drawings["7"], bad, drawings["A"])
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(drawings["7"]), str(bad), str(drawings["A"])]
    assert records[1]["label"] == "K"


def test_predict_many_turns_any_failure_into_an_error_for_that_image(shipped, drawings, monkeypatch):
    from helpers import preprocess

    real = preprocess.grey_to_ink
    calls = []

    def fails_once(grey):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("something unexpected")
        return real(grey)

    monkeypatch.setattr(preprocess, "grey_to_ink", fails_once)
    results = shipped.predict_many([drawings["3"], drawings["K"], drawings["A"]])
    assert [type(r).__name__ for _, r in results] == ["Prediction", "HCRError", "Prediction"]
    assert str(drawings["K"]) in str(results[1][1])


def test_unsure_answers_are_marked(shipped, drawings, tiny_checkpoint, capsys):
    """An untrained model spreads its probability: every answer is below the threshold."""
    from helpers.predict import UNSURE_BELOW, format_line

    guess = Predictor(tiny_checkpoint).predict(drawings["7"])
    assert guess.confidence < UNSURE_BELOW and guess.unsure and guess.to_dict()["unsure"] is True
    assert format_line("x.png", guess).endswith("(unsure)")
    sure = shipped.predict(drawings["7"])
    assert sure.confidence >= UNSURE_BELOW and not sure.unsure and "unsure" not in format_line("x.png", sure)
    status, out, _ = in_process(capsys, drawings["7"], "--checkpoint", tiny_checkpoint)
    assert status == 0 and out.strip().endswith("(unsure)")
    status, out, _ = in_process(capsys, "--json", drawings["7"], "--checkpoint", tiny_checkpoint)
    assert json.loads(out)["unsure"] is True


def test_cli_refuses_a_checkpoint_with_nan_weights(tmp_path, drawings, tiny_checkpoint, capsys):
    import torch

    payload = torch.load(tiny_checkpoint, weights_only=True)
    for value in payload["state_dict"].values():
        if value.is_floating_point():
            value.fill_(float("nan"))
    payload["weights_sha256"] = checkpoint.weights_sha256(payload["state_dict"])  # crafted, not damaged
    nan = tmp_path / "nan.pt"
    torch.save(payload, nan)
    status, out, err = in_process(capsys, "--json", drawings["7"], "--checkpoint", nan)
    assert status == 2 and out == "" and err.count("\n") == 1 and "not finite numbers" in err


def test_a_non_finite_digit_prior_is_refused(tmp_path):
    from helpers.model import build_model

    with pytest.raises(HCRError, match="not a finite number"):
        Predictor.from_model(build_model("baseline", seed=0), digit_prior=float("nan"))
    with pytest.raises(HCRError, match="digit prior stored with .*m.pt is inf"):  # refused when saving
        checkpoint.save_checkpoint(tmp_path / "m.pt", build_model("baseline", seed=0), "baseline",
                                   extra={"digit_prior": float("inf")})
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", build_model("baseline", seed=0), "baseline")
    payload = torch.load(path, weights_only=True)
    payload["extra"]["digit_prior"] = 1e300  # an old-style field in a crafted file, refused when loading
    torch.save(payload, path)
    with pytest.raises(HCRError, match="digit prior stored with .*m.pt is 1e\\+300, not a finite number from"):
        Predictor(path)


# --- Upper and lower case: the 62-class model (issue 7) -------------------------------------


def case_checkpoint(path, favourite="a", digit_prior=0.0):
    """An untrained 62-class model whose last layer prefers one class: enough to test plumbing."""
    import torch

    from helpers.model import build_model

    net = build_model("baseline", num_classes=len(CASE_CLASS_NAMES), seed=0)
    last = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias.zero_()
        last.bias[CASE_CLASS_NAMES.index(favourite)] = 50.0
    return checkpoint.save_checkpoint(path, net, "baseline", class_names=CASE_CLASS_NAMES,
                                      extra={"digit_prior": digit_prior})


@pytest.fixture
def case_model(tmp_path, monkeypatch):
    """A 62-class checkpoint standing in for checkpoints/case.pt."""
    path = case_checkpoint(tmp_path / "case.pt")
    monkeypatch.setattr(checkpoint, "SHIPPED_CASE", path)
    monkeypatch.setattr(checkpoint, "TRAINED_CASE", tmp_path / "runs" / "case.pt")
    return path


def test_case_sensitive_predictor_answers_small_letters(case_model, drawings):
    predictor = Predictor(case_sensitive=True)
    assert predictor.path == case_model and predictor.class_names == CASE_CLASS_NAMES
    p = predictor.predict(drawings["7"])
    assert p.label == "a" and len(p.top3) == 3 and all(label in CASE_CLASS_NAMES for label, _ in p.top3)
    assert predictor.probabilities(p.image[None]).shape == (1, 62)


def test_the_digit_prior_of_a_case_model_lifts_the_first_ten_classes(tmp_path, drawings):
    favours_a = Predictor(case_checkpoint(tmp_path / "a.pt"))
    with_prior = Predictor(case_checkpoint(tmp_path / "prior.pt", digit_prior=80.0))
    image = favours_a.predict(drawings["7"]).image
    assert favours_a.logit_bias is None and with_prior.logit_bias.tolist() == [80.0] * 10 + [0.0] * 52
    assert with_prior.predict(drawings["7"]).label in "0123456789"
    np.testing.assert_allclose(with_prior.probabilities(image[None])[0, 10:].sum(), 0.0, atol=1e-6)


def test_from_model_takes_class_names(drawings):
    from helpers.model import build_model

    net = build_model("baseline", num_classes=62, seed=0)
    predictor = Predictor.from_model(net, class_names=CASE_CLASS_NAMES)
    assert predictor.predict(drawings["7"]).label in CASE_CLASS_NAMES
    assert Predictor.from_model(build_model("baseline", seed=0)).class_names == CLASS_NAMES


def test_case_sensitive_without_the_case_model_says_how_to_get_it(tmp_path, monkeypatch, capsys, drawings):
    from helpers.predict import main

    monkeypatch.setattr(checkpoint, "SHIPPED_CASE", tmp_path / "checkpoints" / "case.pt")
    monkeypatch.setattr(checkpoint, "TRAINED_CASE", tmp_path / "runs" / "case.pt")
    with pytest.raises(HCRError, match="case-sensitive model is missing .*checkpoints/case.pt"):
        Predictor(case_sensitive=True)
    assert main(["--case-sensitive", str(drawings["7"])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "notebook" in err


def test_cli_case_sensitive_json_keys_stay_the_same(tmp_path, drawings, tiny_checkpoint, capsys):
    case = case_checkpoint(tmp_path / "case.pt", favourite="q")
    run = cli("--case-sensitive", "--json", drawings["7"], "--checkpoint", case)
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert set(record) == {"path", "label", "confidence", "top3", "unsure"} and record["label"] == "q"
    status, _, err = in_process(capsys, "--case-sensitive", drawings["7"], "--checkpoint", tiny_checkpoint)
    assert status == 2 and err.count("\n") == 1  # a 36-class model
    assert "trained for 36 classes (0-9, A-Z), not the 62 classes (0-9, A-Z, a-z)" in err
    assert in_process(capsys, "--json", drawings["7"], "--checkpoint", case)[0] == 0  # no flag: the file decides


def full_test_data(kinds=("MNIST", "EMNIST")):
    return not data.missing_files(train=False, kinds=kinds)


@pytest.mark.skipif(not full_test_data(), reason="needs the MNIST and EMNIST test files (set HCR_DATA_DIR)")
def test_the_shipped_checkpoint_reproduces_its_recorded_accuracy():
    import torch

    from helpers import evaluation

    net, info = checkpoint.load_checkpoint(checkpoint.SHIPPED)
    test_set = data.load_characters(train=False)
    if len(test_set) != info["metrics"]["test_images"]["digits"] + info["metrics"]["test_images"]["letters"]:
        pytest.skip("these are not the test files the checkpoint was measured on")
    logits = evaluation.predict_logits(net, test_set.to_float(), torch.device("cpu"))
    logits = logits + checkpoint.stored_bias(info)  # the digit prior, stored as one logit bias
    measured = evaluation.summarise(logits, test_set.labels, test_set.sources)
    for key in ("digits_acc", "letters_acc", "overall_acc"):
        assert measured[key] == pytest.approx(info["metrics"][key], abs=0.02), key
    results = json.loads((ROOT / "assets" / "results.json").read_text())
    assert results["overall_acc"] == pytest.approx(measured["overall_acc"], abs=0.02)


@pytest.mark.skipif(not full_test_data(("BYCLASS",)), reason="needs the EMNIST ByClass test files (set HCR_DATA_DIR)")
def test_the_shipped_case_checkpoint_reproduces_its_recorded_accuracy():
    import torch

    from helpers import evaluation

    net, info = checkpoint.load_checkpoint(checkpoint.SHIPPED_CASE, class_names=CASE_CLASS_NAMES)
    test_set = data.load_case_characters(train=False)
    if len(test_set) != info["metrics"]["test_images"]:
        pytest.skip("these are not the ByClass test files the checkpoint was measured on")
    measured = evaluation.summarise_case(evaluation.predict_logits(net, test_set.to_float(), torch.device("cpu")),
                                         test_set.labels)
    for key in ("case_acc", "bymerge_acc", "nocase_acc", "macro_case_acc"):
        assert measured[key] == pytest.approx(info["metrics"][key], abs=0.02), key
    assert len(info["extra"]["logit_bias"]) == len(CASE_CLASS_NAMES)  # the class bias ships with it


@pytest.mark.skipif(not full_test_data(("MNIST", "BYCLASS")), reason="needs the MNIST and ByClass test files")
def test_the_shipped_line_reader_reproduces_its_recorded_error_rate():
    """The real val lines, read from their files like a user's pictures, as benchmarks.lines scores them."""
    from helpers import crnn, real_lines, records

    try:
        val = real_lines.read_manifest().split("val")
    except HCRError as error:
        pytest.skip(str(error))
    scores = records.read("lines.json")["scores"]
    recorded = scores["real handwriting, val split"]
    if len(val) != recorded["lines"]:
        pytest.skip("these are not the real lines the line reader was measured on")
    reader = crnn.TextReader(crnn.SHIPPED)  # decoded as users get it: with the shipped beam search, if any
    if reader.lm is not None:
        beam = scores["beam_search"]
        recorded = {"cer": beam["val_grid"][beam["chosen_on_val"]]}
        listed = beam.get("word_list", {})
        if listed.get("chosen"):  # then a wider beam (or a word list) was chosen on val too
            recorded = {"cer": listed["grid"][listed["chosen"]]["val"]["cer"]}
        if hasattr(reader.lm[0], "parts"):  # then that model mixed with another (benchmarks.lines mix)
            mix = records.read("lines_mix.json")
            recorded = {"cer": mix["grid"][mix["chosen"]]["val"]["cer"]}
    texts = []
    for entry in val:
        try:
            texts.append(reader.read(str(entry.path)).text)
        except HCRError:
            texts.append("")
    assert 100 * crnn.cer(texts, [e.text for e in val]) == pytest.approx(recorded["cer"], abs=0.05)


# --- --text: one line of writing per image -------------------------------------------------------


@pytest.fixture
def tiny_reader(tmp_path):
    """An untrained line reader: its text is arbitrary, but it goes through every real step."""
    from helpers.crnn import CRNN, save_reader

    return save_reader(tmp_path / "lines.pt", CRNN())


def test_cli_reads_lines_as_text_with_json(tmp_path, tiny_reader, capsys):
    line = tmp_path / "line.png"
    image = Image.new("L", (400, 80), 255)
    for k, char in enumerate("7A3"):
        image.paste(render(wobbly_strokes(char, np.random.default_rng(k)), canvas=80, width=6), (20 + 90 * k, 0))
    image.save(line)
    blank = tmp_path / "blank.png"
    Image.new("L", (300, 60), 255).save(blank)
    status, out, err = in_process(capsys, "--text", "--json", "--checkpoint", tiny_reader, line, blank)
    record = json.loads(out.strip())
    assert set(record) == {"path", "text", "lines"} and record["path"] == str(line)
    assert isinstance(record["text"], str) and len(record["lines"]) == 1
    assert {"text", "confidence", "unsure", "box"} == set(record["lines"][0])
    assert 0.0 <= record["lines"][0]["confidence"] <= 1.0
    assert status == 1 and err.count("\n") == 1 and "blank.png" in err and "Traceback" not in err


def test_text_and_case_sensitive_do_not_mix(tiny_reader, capsys):
    status, out, err = in_process(capsys, "--text", "--case-sensitive", "--checkpoint", tiny_reader, "x.png")
    assert status == 2 and out == "" and err.startswith("error: Lines are always read with case")


def test_the_predictor_api_reads_text_too(tmp_path, tiny_reader):
    reader = Predictor(tiny_reader, text=True)
    path = tmp_path / "word.png"
    render(wobbly_strokes("A", np.random.default_rng(0)), canvas=80, width=6).resize((240, 80)).save(path)
    result = reader.predict(path)
    assert isinstance(result.text, str) and result.to_dict("p")["path"] == "p"
    [(source, error)] = reader.predict_many([tmp_path / "missing.png"])
    assert isinstance(error, HCRError) and "does not exist" in str(error)


def test_a_line_reader_given_for_characters_says_to_use_text(tiny_reader, drawings, capsys):
    status, out, err = in_process(capsys, "--checkpoint", tiny_reader, drawings["7"])
    assert status == 2 and "not a character model" in err and "--text" in err


# --- Hardening (issue 16): outputs that are not finite, the command line's output, the API ---


def cli_to(stdout, *args, env=None):
    """The command line with its stdout sent to `stdout` (a file, a pipe's end); (exit status, stderr)."""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    run = subprocess.run([sys.executable, "-m", "helpers.predict", *map(str, args)], stdout=stdout,
                         stderr=subprocess.PIPE, env=env, text=True, timeout=120)
    return run.returncode, run.stderr


def overflowing_checkpoint(path):
    """Finite weights that overflow: a first weight of 3e38 makes the logits infinite or NaN."""
    from helpers.model import build_model

    net = build_model("baseline", seed=0)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.fill_(3e38)
    return checkpoint.save_checkpoint(path, net, "baseline")


def test_an_output_that_is_not_finite_is_refused_never_shown(tmp_path, drawings):
    path = overflowing_checkpoint(tmp_path / "overflow.pt")
    predictor = Predictor(path)
    with pytest.raises(HCRError) as error:
        predictor.predict(drawings["7"])
    message = str(error.value)
    assert "is not a finite number" in message and str(drawings["7"]) in message and "\n" not in message
    results = predictor.predict_many([drawings["7"], tmp_path / "missing.png"])
    assert all(isinstance(result, HCRError) for _, result in results)
    with pytest.raises(HCRError, match="not a finite number"):
        predictor.probabilities(np.zeros((2, 28, 28), np.float32))
    code, stderr = cli_to(subprocess.PIPE, "--json", drawings["7"], "--checkpoint", path)
    assert code == 1 and "not a finite number" in stderr and "Traceback" not in stderr


def test_complex_weights_in_memory_give_no_nan_answer(drawings):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 36))
    with torch.no_grad():
        net[1].weight.data = net[1].weight.data.to(torch.complex64) * complex("nan")
        net[1].bias.data = net[1].bias.data.to(torch.complex64)

    class Real(torch.nn.Module):  # complex weights on a real input
        def forward(self, x):
            return net[1](net[0](x).to(torch.complex64))

    with pytest.raises(HCRError, match="not a finite number"):
        Predictor.from_model(Real()).predict(drawings["7"])


def test_a_file_name_that_is_not_utf8_is_escaped_and_the_next_files_answered(tmp_path, drawings, tiny_checkpoint):
    import os
    import shutil

    odd = os.fsdecode(bytes(tmp_path) + b"/caf\xe9.png")  # Latin-1, as an old camera or archive names it
    shutil.copy(drawings["7"], odd)
    run = subprocess.run([sys.executable, "-m", "helpers.predict", odd, str(drawings["K"]), "--checkpoint",
                          str(tiny_checkpoint)], capture_output=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8:strict"})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.decode("utf-8").splitlines()  # strict UTF-8 throughout
    assert len(lines) == 2 and "caf\\udce9.png: " in lines[0] and lines[1].startswith(str(drawings["K"]))


def test_a_closed_pipe_ends_the_command_quietly(drawings, tiny_checkpoint):
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first answer, like `| head -1` after its line
    try:
        code, stderr = cli_to(write_end, *[drawings[c] for c in "7AK3"], "--checkpoint", tiny_checkpoint)
    finally:
        os.close(write_end)
    assert (code, stderr) == (0, "")


def test_a_full_disk_on_stdout_gives_one_sentence(drawings, tiny_checkpoint):
    with open("/dev/full", "w") as full:
        code, stderr = cli_to(full, drawings["7"], drawings["K"], "--checkpoint", tiny_checkpoint)
    assert code == 1 and "Traceback" not in stderr and stderr.count("\n") == 1
    assert stderr.startswith("error: the answers could not be written because the disk is full")


def test_a_lone_picture_where_a_list_is_expected_is_refused(tiny_checkpoint, drawings):
    predictor = Predictor(tiny_checkpoint)
    for lone in (str(drawings["7"]), drawings["7"], drawings["7"].read_bytes(), np.zeros((28, 28))):
        with pytest.raises(HCRError, match="predict_many takes a list of pictures, not one"):
            predictor.predict_many(lone)
    with pytest.raises(HCRError, match="not int"):
        predictor.predict_many(5)
    results = predictor.predict_many(iter([drawings["7"]]))  # any iterable of pictures is fine
    assert len(results) == 1 and not isinstance(results[0][1], HCRError)


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "8", None])
def test_a_batch_size_below_one_is_refused(tiny_checkpoint, drawings, size):
    with pytest.raises(HCRError, match="batch_size is .*, not a whole number of at least 1"):
        Predictor(tiny_checkpoint).predict_many([drawings["7"]], batch_size=size)


def test_a_batch_size_of_one_answers_everything(tiny_checkpoint, drawings):
    results = Predictor(tiny_checkpoint).predict_many(list(drawings.values()), batch_size=1)
    assert [source for source, _ in results] == list(drawings.values())


def test_what_is_not_a_picture_is_named_by_its_type(tiny_checkpoint, drawings):
    predictor = Predictor(tiny_checkpoint)
    with open(drawings["7"], "rb") as opened:
        cases = {None: "Got NoneType", 7: "Got int", 2.5: "Got float", opened: "Got an open file (BufferedReader)",
                 object(): "Got object"}
        for source, expected in cases.items():
            with pytest.raises(HCRError) as error:
                predictor.predict(source)
            message = str(error.value)
            assert message.startswith(expected) and "damaged" not in message and "\n" not in message, message
        results = predictor.predict_many([None, opened, drawings["7"]])
    assert [type(r).__name__ for _, r in results] == ["HCRError", "HCRError", "Prediction"]
    assert "Got NoneType" in str(results[0][1])


def test_arrays_over_the_pixel_limit_are_refused(tiny_checkpoint, monkeypatch):
    from helpers import preprocess

    predictor = Predictor(tiny_checkpoint)
    huge = np.broadcast_to(np.zeros(1, np.uint8), (12000, 12000))  # 144 megapixels that take no memory
    with pytest.raises(HCRError, match="The array is too large \\(12000x12000 pixels\\)"):
        predictor.predict(huge)
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 100 * 100)
    with pytest.raises(HCRError, match="The array is too large \\(120x101 pixels\\): shrink it below"):
        predictor.predict(np.zeros((101, 120, 3), np.uint8))


def test_a_predictor_given_a_wrong_argument_says_so_in_one_sentence():
    with pytest.raises(HCRError, match="is not a path: pass the path of a .pt file"):
        Predictor(5)
    for text in (False, True):
        with pytest.raises(HCRError, match="'banana' is not a device PyTorch knows"):
            Predictor(device="banana", text=text)
