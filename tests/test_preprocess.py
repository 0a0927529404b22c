"""Any picture of a character -> the same 28x28 framing as the training data."""

import io

import numpy as np
import pytest
from PIL import Image

from helpers import framing, preprocess
from helpers.errors import HCRError
from helpers.strokes import render, wobbly_strokes


def seven(canvas=200, width=14):
    """A dark-on-white drawing of a 7."""
    return render(wobbly_strokes("7", np.random.default_rng(1), jitter=0), canvas=canvas, width=width)


def reference():
    return preprocess.prepare(seven()).image


def similar(a, b):
    """Correlation after a light blur: a one-pixel shift does not matter to the model."""
    from scipy.ndimage import gaussian_filter

    return np.corrcoef(gaussian_filter(a, 1).ravel(), gaussian_filter(b, 1).ravel())[0, 1]


def png_bytes(image, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, format=kwargs.pop("format", "PNG"), **kwargs)
    return buffer.getvalue()


def test_frame_ink_box_and_centre_of_mass():
    ink = np.zeros((100, 60), np.float32)
    ink[10:90, 20:30] = 1.0  # a tall bar
    out = framing.frame_ink(ink)
    assert out.shape == (28, 28) and out.dtype == np.float32
    ys, xs = np.nonzero(out >= preprocess.INK_THRESHOLD)
    assert ys.max() - ys.min() + 1 == 20  # longer side scaled to 20 px
    assert 2 <= xs.max() - xs.min() + 1 <= 4  # aspect ratio kept
    cy = (out.sum(1) * np.arange(28)).sum() / out.sum()
    cx = (out.sum(0) * np.arange(28)).sum() / out.sum()
    assert abs(cy - 14) < 0.6 and abs(cx - 14) < 0.6


def test_frame_ink_leaves_an_mnist_style_image_nearly_unchanged():
    img = np.zeros((28, 28), np.float32)
    img[4:24, 11:17] = 1.0  # 20 px tall, centred at (13.5, 13.5)
    out = framing.frame_ink(img)
    # the half pixel rounded up; edges may gain a faint antialiasing fringe
    assert np.abs(out - np.roll(img, (1, 1), axis=(0, 1))).max() < 0.05


def test_frame_ink_of_nothing_is_blank():
    assert not framing.frame_ink(np.zeros((28, 28))).any()


def test_frame_batch_keeps_uint8():
    batch = np.zeros((3, 28, 28), np.uint8)
    batch[:, 2:26, 3:25] = 200
    out = framing.frame_batch(batch)
    assert out.dtype == np.uint8 and out.shape == (3, 28, 28)
    assert out.max() == 255  # redrawn as a pen shape: grey 200 of 255 becomes full ink


@pytest.mark.parametrize(
    "variant",
    ["grey png", "rgb jpeg", "light on dark", "rgba black on transparent", "rgba white on transparent",
     "palette", "huge canvas", "tiny", "16-bit", "photo with uneven light and noise"],
)
def test_every_kind_of_picture_gives_the_same_input(variant):
    base = seven()
    if variant == "grey png":
        source = png_bytes(base)
    elif variant == "rgb jpeg":
        source = png_bytes(base.convert("RGB"), format="JPEG", quality=80)
    elif variant == "light on dark":
        source = png_bytes(Image.eval(base, lambda v: 255 - v))
    elif variant == "rgba black on transparent":
        alpha = Image.eval(base, lambda v: 255 - v)
        rgba = Image.new("RGBA", base.size, (0, 0, 0, 0))
        rgba.putalpha(alpha)
        source = png_bytes(rgba)
    elif variant == "rgba white on transparent":
        alpha = Image.eval(base, lambda v: 255 - v)
        rgba = Image.new("RGBA", base.size, (255, 255, 255, 0))
        rgba.putalpha(alpha)
        source = png_bytes(rgba)
    elif variant == "palette":
        source = png_bytes(base.convert("P"))
    elif variant == "huge canvas":
        source = png_bytes(seven(canvas=3000, width=200))
    elif variant == "tiny":
        source = png_bytes(seven(canvas=24, width=3))
    elif variant == "16-bit":
        source = png_bytes(Image.fromarray(np.asarray(base).astype(np.uint16) * 257))
    else:
        rng = np.random.default_rng(0)
        ink = 1 - np.asarray(base, np.float32) / 255
        yy, xx = np.mgrid[0:200, 0:200] / 200
        light = 0.65 + 0.35 * xx + 0.1 * yy
        rgb = (np.array([0.92, 0.9, 0.8]) * (1 - ink[..., None]) + np.array([0.1, 0.1, 0.3]) * ink[..., None])
        rgb = rgb * light[..., None] + rng.normal(0, 0.02, rgb.shape)
        source = png_bytes(Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)), format="JPEG", quality=70)
    out = preprocess.prepare(source).image
    threshold = 0.8 if variant in ("tiny", "photo with uneven light and noise") else 0.9
    assert similar(out, reference()) > threshold, variant


def test_noise_specks_are_ignored_but_the_dot_of_an_i_is_kept():
    img = np.full((200, 200), 255, np.uint8)
    img[60:180, 95:107] = 0  # stem
    img[25:40, 93:109] = 0  # dot
    img[5, 5] = img[190, 12] = img[100, 190] = 0  # dust
    prepared = preprocess.prepare(img)
    ink = prepared.ink
    assert ink[30, 100] > 0.5  # dot kept
    assert ink[5, 5] == 0 and ink[100, 190] == 0  # dust dropped
    ys, _ = np.nonzero(prepared.image > 0.1)
    assert ys.max() - ys.min() + 1 == 20


def test_file_path_and_pil_image_work(tmp_path):
    path = tmp_path / "seven.png"
    seven().save(path)
    assert similar(preprocess.prepare(path).image, reference()) > 0.99
    assert similar(preprocess.prepare(str(path)).image, reference()) > 0.99
    assert similar(preprocess.prepare(seven()).image, reference()) > 0.99


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"this is not a picture", "not an image"),
        (None, "no character"),  # a blank white page
        ("flat-grey", "no character"),
        ("truncated", "could not be read"),
    ],
)
def test_bad_inputs_give_one_clear_sentence(tmp_path, content, message):
    path = tmp_path / "input.png"
    if content is None:
        Image.new("L", (300, 300), 255).save(path)
    elif content == "flat-grey":
        Image.new("RGB", (64, 64), (120, 120, 120)).save(path)
    elif content == "truncated":
        path.write_bytes(png_bytes(seven().convert("RGB"), format="JPEG")[:400])
    else:
        path.write_bytes(content)
    with pytest.raises(HCRError, match=message) as info:
        preprocess.prepare(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(HCRError, match="does not exist"):
        preprocess.prepare(tmp_path / "nope.png")
    with pytest.raises(HCRError, match="is a folder"):
        preprocess.prepare(tmp_path)


def test_huge_image_is_refused_without_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 1000 * 1000)
    path = tmp_path / "big.png"
    Image.new("L", (2000, 1000), 255).save(path)
    with pytest.raises(HCRError, match="too large"):
        preprocess.prepare(path)


def test_blank_drawing_from_bytes():
    with pytest.raises(HCRError, match="The drawing shows no character"):
        preprocess.prepare(png_bytes(Image.new("RGBA", (280, 280), (255, 255, 255, 255))), name="The drawing")
