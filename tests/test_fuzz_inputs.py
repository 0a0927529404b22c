"""Bounded fuzzing: damaged PNG and JPEG bytes give a prediction or one clear sentence, never a crash.

Fixed seed and a few hundred cases, so the test is the same on every run and takes seconds.
"""

import io

import numpy as np
import pytest
from PIL import Image

from helpers import preprocess
from helpers.errors import HCRError
from helpers.predict import Prediction, Predictor
from helpers.strokes import render, wobbly_strokes

CASES = 600


def originals():
    """Small valid files of the kinds users send: grey, RGBA and palette PNG, JPEG with EXIF."""
    drawing = render(wobbly_strokes("K", np.random.default_rng(3)), canvas=96, width=8)
    rgba = Image.new("RGBA", drawing.size, (0, 0, 0, 0))
    rgba.putalpha(Image.eval(drawing, lambda v: 255 - v))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Phone"
    files = []
    for image, kwargs in ((drawing, {"format": "PNG"}), (rgba, {"format": "PNG"}),
                          (drawing.convert("P"), {"format": "PNG"}),
                          (drawing.convert("RGB"), {"format": "JPEG", "quality": 85, "exif": exif.tobytes()}),
                          (drawing, {"format": "JPEG", "quality": 60, "progressive": True})):
        buffer = io.BytesIO()
        image.save(buffer, **kwargs)
        files.append(buffer.getvalue())
    return files


def mutate(data, rng):
    """One damaged copy: bit flips, a cut, inserted bytes, or a damaged header (sizes, EXIF, chunks)."""
    data = bytearray(data)
    kind = rng.integers(5)
    if kind == 0:  # a few flipped bits anywhere
        for _ in range(rng.integers(1, 9)):
            i = rng.integers(len(data))
            data[i] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # cut short
        data = data[: rng.integers(1, len(data))]
    elif kind == 2:  # bytes inserted
        i = rng.integers(len(data))
        data[i:i] = rng.integers(0, 256, rng.integers(1, 64)).astype(np.uint8).tobytes()
    elif kind == 3:  # the header: magic, sizes, EXIF and first chunks
        for _ in range(rng.integers(1, 5)):
            data[rng.integers(min(len(data), 80))] = int(rng.integers(256))
    else:  # extreme values where sizes are stored: 0x00 or 0xff runs
        i = rng.integers(min(len(data), 200))
        data[i : i + 4] = (b"\xff" if rng.integers(2) else b"\x00") * 4
    return bytes(data)


@pytest.fixture(scope="module")
def damaged():
    rng = np.random.default_rng(20240909)
    files = originals()
    return [mutate(files[i % len(files)], rng) for i in range(CASES)]


def test_every_damaged_file_is_prepared_or_refused_in_one_sentence(damaged, recwarn):
    outcomes = {"prepared": 0, "refused": 0}
    for data in damaged:
        try:
            prepared = preprocess.prepare(data, name="upload.png")
        except HCRError as error:
            message = str(error)
            assert message.startswith("upload.png ") and "\n" not in message, message
            outcomes["refused"] += 1
        else:
            assert prepared.image.shape == (28, 28) and np.isfinite(prepared.image).all()
            outcomes["prepared"] += 1
    assert outcomes["prepared"] > 0 and outcomes["refused"] > 0, outcomes  # both paths were exercised
    assert not [str(w.message) for w in recwarn]  # Pillow's warnings about damaged files stay quiet


def test_predict_many_answers_every_damaged_file(damaged, tiny_checkpoint):
    results = Predictor(tiny_checkpoint).predict_many(damaged, batch_size=64)
    assert len(results) == len(damaged)
    assert all(isinstance(result, (Prediction, HCRError)) for _, result in results)


# --- Damaged and crafted checkpoints (issue 16): refused in one sentence, never a crash or NaN ---


CHECKPOINT_CASES = 150


def test_every_damaged_checkpoint_is_refused_in_one_sentence(tmp_path):
    """Flipped bits, cuts, inserted bytes and overwritten runs anywhere in a checkpoint: all refused."""
    from helpers import checkpoint
    from helpers.model import build_model

    original = checkpoint.save_checkpoint(tmp_path / "m.pt", build_model("baseline", seed=0), "baseline",
                                          extra={"digit_prior": 0.5}).read_bytes()
    rng = np.random.default_rng(16)
    damaged = tmp_path / "damaged.pt"
    loaded = []
    for _ in range(CHECKPOINT_CASES):
        data = mutate(original, rng)
        if rng.integers(2):  # the header-focused mutations above, or somewhere in the whole file
            data = bytearray(original)
            at = int(rng.integers(len(data) - 8))
            data[at : at + 8] = rng.integers(0, 256, 8).astype(np.uint8).tobytes()
            data = bytes(data)
        if data == original:
            continue
        damaged.write_bytes(data)
        try:
            checkpoint.load_checkpoint(damaged)
        except HCRError as error:
            assert "\n" not in str(error) and str(error).endswith("."), str(error)
        else:
            loaded.append(data)
    assert loaded == []


JUNK = [None, 0, -1, 2**63, 1e300, float("nan"), "", "x" * 5000, [], [None], {}, {"a": 1}, b"\x00", True]


def test_crafted_checkpoint_fields_give_a_model_or_one_sentence(tmp_path, tiny_checkpoint):
    """Every field replaced by junk of every kind: a working Predictor whose answers are finite, or one sentence."""
    import torch

    from helpers import checkpoint

    base = torch.load(tiny_checkpoint, weights_only=True)
    keys = [(k,) for k in base if k not in ("state_dict",)] + [("extra", k) for k in ("digit_prior", "logit_bias")]
    image = np.zeros((28, 28), np.float32)
    image[6:22, 12:16] = 1.0
    path = tmp_path / "crafted.pt"
    outcomes = {"answered": 0, "refused": 0}
    for key in keys:
        for junk in JUNK:
            payload = torch.load(tiny_checkpoint, weights_only=True)
            target = payload if len(key) == 1 else payload["extra"]
            target[key[-1]] = junk
            if key != ("weights_sha256",):
                payload["weights_sha256"] = checkpoint.weights_sha256(payload["state_dict"])
            torch.save(payload, path)
            try:
                prediction = Predictor(path).predict(image)
            except HCRError as error:
                assert "\n" not in str(error), str(error)
                outcomes["refused"] += 1
            else:
                assert np.isfinite(prediction.confidence) and 0 <= prediction.confidence <= 1
                outcomes["answered"] += 1
    assert outcomes["refused"] > 0 and outcomes["answered"] > 0, outcomes
