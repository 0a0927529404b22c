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
