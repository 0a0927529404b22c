"""Any picture of a character -> the same 28x28 framing as the training data."""

import io
import os

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
    ys, xs = np.nonzero(out >= framing.INK_THRESHOLD)
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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_an_empty_path_a_pipe_and_a_path_too_long_each_get_their_own_sentence(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it would wait for a writer forever
    with pytest.raises(HCRError, match="is not a regular file"):
        preprocess.prepare(tmp_path / "pipe.png")
    with pytest.raises(HCRError, match="^The path is empty"):
        preprocess.prepare("")
    with pytest.raises(HCRError, match="is not a path that can be opened") as info:
        preprocess.prepare("a" * 5000)
    assert len(str(info.value)) < 200


def test_huge_image_is_refused_without_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, "MAX_PIXELS", 1000 * 1000)
    path = tmp_path / "big.png"
    Image.new("L", (2000, 1000), 255).save(path)
    with pytest.raises(HCRError, match="too large"):
        preprocess.prepare(path)


def test_blank_drawing_from_bytes():
    with pytest.raises(HCRError, match="The drawing shows no character"):
        preprocess.prepare(png_bytes(Image.new("RGBA", (280, 280), (255, 255, 255, 255))), name="The drawing")


# --- Hardening (issue 9): damaged files, huge files, unreadable files -----------------------


def png_chunk(kind, body):
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width, height):
    """A PNG that claims width x height (RGBA) but holds one row: opening it costs nothing."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 5))
            + png_chunk(b"IEND", b""))


def big_rgba_png(path, side):
    """A side x side RGBA PNG (white paper, one dark bar), written row by row in little memory."""
    import zlib

    white, dark = b"\xff\xff\xff\xff", b"\x20\x20\x20\xff"
    paper = b"\0" + white * side
    inked = b"\0" + white * (2 * side // 5) + dark * (side // 5) + white * (side - 3 * side // 5)
    squeeze = zlib.compressobj(1)
    rows = [squeeze.compress(inked if side // 10 <= y < 9 * side // 10 else paper) for y in range(side)]
    rows.append(squeeze.flush())
    ihdr = (side.to_bytes(4, "big") * 2) + bytes([8, 6, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(rows))
                     + png_chunk(b"IEND", b""))
    return path


def jpeg_with_exif(image, orientation=1):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Phone"
    return png_bytes(image.convert("RGB"), format="JPEG", quality=90, exif=exif.tobytes())


def test_damaged_exif_is_ignored_and_the_pixels_are_read():
    """One changed byte in the EXIF header (`MM\\0*` -> `MM\\xe9*`) must not stop the picture."""
    good = jpeg_with_exif(seven())
    assert b"MM\x00*" in good
    damaged = good.replace(b"MM\x00*", b"MM\xe9*", 1)
    assert similar(preprocess.prepare(damaged).image, reference()) > 0.9


def test_exif_orientation_is_applied():
    upright = seven()
    turned = jpeg_with_exif(upright.transpose(Image.Transpose.ROTATE_90), orientation=6)
    assert similar(preprocess.prepare(turned).image, reference()) > 0.9


def test_a_59_megapixel_rgba_png_is_prepared_in_bounded_memory(tmp_path):
    """Decoded once, then converted and shrunk in stripes: no float copy of 59 megapixels.

    Measured in a fresh process: the peak of Python allocations (numpy included) and the growth
    of the resident memory while preparing. Before, this took 1.8 GB and 2.2 GB more.
    """
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = big_rgba_png(tmp_path / "huge.png", 7680)  # 59 megapixels, 1.2 MB on disk
    probe = (
        "import resource, sys, tracemalloc\n"
        "from helpers import preprocess\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "tracemalloc.start()\n"
        "out = preprocess.prepare(sys.argv[1]).image\n"
        "peak = tracemalloc.get_traced_memory()[1]\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(peak // 2**20, grown // 1024, round(float(out.max()), 2))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    traced_mb, grown_mb, top = run.stdout.split()
    assert int(traced_mb) < 200, f"peak Python allocation {traced_mb} MB"
    # The decoded RGBA pixels (236 MB) are unavoidable; nothing else of that size may follow.
    assert int(grown_mb) < 600, f"resident memory grew by {grown_mb} MB"
    assert float(top) == 1.0  # the bar was found


@pytest.mark.parametrize("side", [14000, 10000])
def test_an_image_too_large_for_pillow_is_called_too_large_without_a_warning(tmp_path, side, recwarn):
    """14000x14000 trips Pillow's own bomb error; 10000x10000 only its warning. Both are ours to refuse."""
    path = tmp_path / "poster.png"
    path.write_bytes(png_header_only(side, side))
    with pytest.raises(HCRError, match="too large") as info:
        preprocess.prepare(path)
    assert str(path) in str(info.value) and "not an image" not in str(info.value)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    import os

    path = tmp_path / "secret.png"
    seven().save(path)
    if os.geteuid() == 0:  # root reads everything: make Pillow meet the error a user would
        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(Image, "open", denied)
    else:
        path.chmod(0)
    with pytest.raises(HCRError, match="cannot be read \\(permission denied\\)") as info:
        preprocess.prepare(path)
    assert "cut short" not in str(info.value) and str(path) in str(info.value)


def test_any_failure_while_preparing_becomes_one_sentence(monkeypatch):
    def bug(grey):
        raise IndexError("index 3 is out of bounds\nfor axis 0")

    monkeypatch.setattr(preprocess, "grey_to_ink", bug)
    with pytest.raises(HCRError, match="^upload.png could not be prepared") as info:
        preprocess.prepare(png_bytes(seven()), name="upload.png")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("array", [np.zeros((0, 5)), np.zeros((3, 4, 5, 6))])
def test_broken_arrays_give_one_sentence(array):
    with pytest.raises(HCRError):
        preprocess.prepare(array)


def test_grow_is_scipys_binary_dilation_with_its_default_cross():
    from scipy import ndimage

    from helpers.framing import grow

    rng = np.random.default_rng(1)
    for shape in [(280, 280), (1, 5), (5, 1), (2, 2), (100, 37)]:
        mask = rng.random(shape) > 0.9
        assert np.array_equal(grow(mask), ndimage.binary_dilation(mask))
        assert np.array_equal(grow(grow(mask)), ndimage.binary_dilation(mask, iterations=2))
