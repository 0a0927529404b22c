"""Turn any picture of one character into the 28x28 input the model was trained on.

A photo, a scan or a drawing becomes an ink map (bright ink on black, whatever the paper,
light and polarity), which `framing.frame_ink` then frames exactly like the training images.
"""

import contextlib
import errno
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from .errors import HCRError
from .framing import frame_ink, grow

MAX_PIXELS = 60_000_000  # a 60-megapixel photo is fine; beyond that, refuse instead of stalling
WORKING_SIDE = 512  # big photos are shrunk to this before looking for ink, for speed
STRIPE_PIXELS = 4_000_000  # big images are converted and shrunk this many pixels at a time

# EXIF orientation -> the transpose that makes the picture upright (the EXIF standard's table).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# --- From a user's file to a small grey picture ---------------------------------------------


def picture_label(source, name):
    """How messages call an image: the given name, else the path, else "The image"."""
    if name:
        return name
    return str(source) if isinstance(source, (str, Path)) else "The image"


def _too_large(name, size=None):
    pixels = f"{size[0]}x{size[1]} pixels" if size else f"more than {MAX_PIXELS // 1_000_000} megapixels"
    limit = MAX_PIXELS // 1_000_000
    return HCRError(f"{name} is too large ({pixels}): shrink it below {limit} megapixels and try again.")


def _brief(exc):
    """An exception as a short one-line reason, for the end of an error sentence."""
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def open_image(source, name=None, working_side=WORKING_SIDE):
    """Open a path, bytes or PIL image and return it small, upright and grey ('L', 'LA' or 'F').

    Refuses what is not a usable picture in one sentence. The full-size pixels are decoded
    once and never copied: every conversion works on stripes that are shrunk at once, so
    memory stays bounded for any picture under MAX_PIXELS. `name` is how messages call the
    image (a file name for uploads); paths speak for themselves.
    """
    if isinstance(source, Image.Image):
        return _working_image(source, working_side)
    name = picture_label(source, name)
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise HCRError(f"{name} is empty (0 bytes): send a PNG or JPEG file.")
            data = io.BytesIO(source)
        else:
            if str(source) == "":
                raise HCRError("The path is empty: give the path of a PNG or JPEG file.")
            path = Path(source)
            if not path.exists():
                raise HCRError(f"{name} does not exist: check the path.")
            if path.is_dir():
                raise HCRError(f"{name} is a folder, not an image: give the path of a PNG or JPEG.")
            if not path.is_file():
                raise HCRError(f"{name} is not a regular file (a pipe or a device): give the path of a PNG or "
                               "JPEG file.")
            if path.stat().st_size == 0:
                raise HCRError(f"{name} is empty (0 bytes): give a PNG or JPEG file.")
            data = path
        with warnings.catch_warnings():
            # Pillow warns about big images (MAX_PIXELS below is our lower limit) and about damaged
            # metadata (which we skip): the user gets a prediction or one sentence, not warnings.
            warnings.simplefilter("ignore")
            with Image.open(data) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise _too_large(name, image.size)
                image.draft("L", (working_side * 2, working_side * 2))  # JPEG: decode small, fast
                image.load()
                return _working_image(image, working_side)
    except HCRError:
        raise
    except Image.DecompressionBombError:
        raise _too_large(name) from None
    except PermissionError:
        raise HCRError(
            f"{name} cannot be read (permission denied): check the file's permissions, or copy it "
            "to a folder you can read."
        ) from None
    except UnidentifiedImageError:
        raise HCRError(f"{name} is not an image that can be read: give a PNG or JPEG file.") from None
    except MemoryError:
        raise HCRError(f"{name} needs more memory than is free to open: shrink it and try again.") from None
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):
            shown = name if len(name) <= 60 else name[:60] + "..."
            raise HCRError(f"{shown} is not a path that can be opened (too long, or its links loop): "
                           "check the path.") from None
        raise HCRError(
            f"{name} could not be read ({_brief(exc)}): the file may be cut short or damaged; save it again."
        ) from None
    except Exception as exc:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, ...)
        raise HCRError(
            f"{name} could not be read ({_brief(exc)}): the file may be cut short or damaged; save it again."
        ) from None


def _orientation(image):
    """The EXIF orientation (1 = upright); damaged EXIF is ignored, the pixels are still good."""
    try:
        return int(image.getexif().get(0x0112, 1))
    except Exception:
        return 1


def _grey_mode(image):
    """The mode a stripe is converted to: grey with alpha, 32-bit float, or 8-bit grey."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return "LA"
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return "F"
    return "L"


def _convert(stripe, mode):
    if mode == "LA":
        return stripe.convert("RGBA").convert("LA")
    if mode == "F":
        return stripe.convert("I").convert("F") if stripe.mode.startswith("I;16") else stripe.convert("F")
    if stripe.mode in ("L", "1", "RGB"):
        return stripe.convert("L")
    return stripe.convert("RGB").convert("L")


def _working_image(image, working_side=WORKING_SIDE):
    """Upright, grey, at most a few times WORKING_SIDE: converted and shrunk stripe by stripe.

    Shrinking by an integer factor averages whole blocks of pixels (with premultiplied alpha
    for transparent pictures), so nothing is lost that the model could see at 28x28.
    """
    orientation = _orientation(image)
    width, height = image.size
    mode = _grey_mode(image)
    factor = max(1, max(width, height) // working_side)
    rows = factor * max(1, STRIPE_PIXELS // max(1, width * factor))  # whole blocks per stripe
    small = Image.new(mode, (math.ceil(width / factor), math.ceil(height / factor)))
    for top in range(0, height, rows):
        stripe = _convert(image.crop((0, top, width, min(top + rows, height))), mode)
        small.paste(stripe.reduce(factor) if factor > 1 else stripe, (0, top // factor))
    return small.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else small


def _to_grey(image):
    """Grey float array in [0, 1] of a working image; transparent areas become the colour that contrasts with ink."""
    if image.mode == "LA":
        la = np.asarray(image, dtype=np.float32) / 255.0
        grey, alpha = la[..., 0], la[..., 1]
        if alpha.min() < 0.99:
            opaque = alpha > 0.5
            # Ink drawn on a transparent canvas: put it on a background that contrasts with it.
            ink_is_light = opaque.any() and grey[opaque].mean() > 0.5
            backdrop = 0.0 if ink_is_light else 1.0
            grey = grey * alpha + backdrop * (1.0 - alpha)
        return grey
    grey = np.asarray(image, dtype=np.float32)
    if image.mode == "L":
        return grey / 255.0
    grey = np.nan_to_num(grey, nan=0.0, posinf=0.0, neginf=0.0)
    top = grey.max()
    return grey / top if top > 1 else grey


def _shrink(grey):
    """Shrink big images (antialiased) so that finding the ink takes milliseconds."""
    h, w = grey.shape
    if max(h, w) <= WORKING_SIDE:
        return grey
    scale = WORKING_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(grey, mode="F").resize(size, Image.Resampling.BOX))


def _otsu(values):
    """Otsu's threshold for values in [0, 1]."""
    hist = np.bincount(np.clip(values.ravel() * 64, 0, 63).astype(np.intp), minlength=64).astype(np.float64)
    edges = np.linspace(0.0, 1.0, 65)  # the same 64 bins as np.histogram's, counted faster
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[1:][np.argmax(between)])


def _cell_percentiles(image, cells, q):
    """The q-th percentile of each cell of a cells x cells grid, in a few numpy calls, not one per cell.

    The grid's cells take at most two heights and two widths, so cells of one shape are stacked
    and reduced together (a web request spent half its time in 64 separate percentile calls).
    """
    h, w = image.shape
    ys = np.linspace(0, h, cells + 1).astype(int)
    xs = np.linspace(0, w, cells + 1).astype(int)
    heights, widths = np.diff(ys), np.diff(xs)
    out = np.empty((cells, cells))
    for height in np.unique(heights):
        rows = np.flatnonzero(heights == height)
        for width in np.unique(widths):
            cols = np.flatnonzero(widths == width)
            yi = ys[rows][:, None] + np.arange(height)
            xi = xs[cols][:, None] + np.arange(width)
            tiles = image[yi[:, None, :, None], xi[None, :, None, :]]
            out[np.ix_(rows, cols)] = np.percentile(tiles.reshape(len(rows), len(cols), -1), q, axis=2)
    return out


def _paper_level(ink, cells=8):
    """Smooth estimate of the paper under the ink, for photos with uneven light.

    Each cell of a coarse grid votes with a low percentile (paper, not strokes); taking the
    minimum over neighbouring cells keeps thick strokes from being mistaken for paper.
    """
    h, w = ink.shape
    if min(h, w) < 4 * cells:
        return 0.0
    coarse = _cell_percentiles(ink, cells, 25).astype(np.float32)
    coarse = ndimage.minimum_filter(coarse, size=3, mode="nearest")
    coarse = ndimage.uniform_filter(coarse, size=3, mode="nearest")
    return np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BILINEAR))


def grey_to_ink(grey):
    """Bright ink on a zero background, whatever the polarity, lighting and noise of the photo.

    Returns the ink map and a flag: False when the image holds no character-like ink at all.
    """
    h, w = grey.shape
    margin = max(1, min(h, w) // 20)
    border = np.concatenate(
        [grey[:margin].ravel(), grey[-margin:].ravel(), grey[:, :margin].ravel(), grey[:, -margin:].ravel()]
    )
    background = float(np.median(border))
    # Ink is whatever differs from the paper; paper is what the border mostly shows.
    ink = (background - grey) if background >= 0.5 else (grey - background)
    ink = np.clip(ink - _paper_level(ink), 0.0, None)
    peak = float(np.percentile(ink, 99.9))
    if peak < 0.08:  # less contrast than faint pencil on white: nothing is written here
        return np.zeros_like(grey), False
    ink = np.clip(ink / peak, 0.0, 1.0)
    mask = ink > max(_otsu(ink), 0.25)
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return np.zeros_like(grey), False
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:]  # pixels per piece of ink
    # Keep strokes and dots (the dot of an i is small), drop specks of dust and paper grain.
    keep = areas >= max(areas.max() / 40.0, mask.size * 2e-5, 2)
    kept = keep[labels - 1] & (labels > 0)
    if areas.max() < mask.size * 1e-4 or not kept.any():
        return np.zeros_like(grey), False
    # Soft edges of the kept strokes survive; everything else is set to paper.
    near = grow(grow(kept))
    return np.where(near, ink, 0.0).astype(np.float32), True


@dataclass
class Prepared:
    """The 28x28 input and the intermediate pictures, so the notebook can show each step."""

    image: np.ndarray  # 28x28 float32, what the model sees
    grey: np.ndarray = field(repr=False, default=None)  # the picture as grey levels
    ink: np.ndarray = field(repr=False, default=None)  # bright ink on black, cleaned


def _array_to_grey(array):
    """A grey or RGB(A) array (0-1 or 0-255) as grey floats in [0, 1]; refused over MAX_PIXELS, like files."""
    shape = np.shape(array)
    if len(shape) >= 2 and int(shape[0]) * int(shape[1]) > MAX_PIXELS:
        raise _too_large("The array", (shape[1], shape[0]))
    grey = np.nan_to_num(np.asarray(array, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if grey.ndim == 3:
        grey = grey[..., :3].mean(axis=2)
    if grey.ndim != 2 or min(grey.shape) == 0:
        raise HCRError(f"The array has shape {np.shape(array)}: pass a 2-D grey image or an RGB(A) image.")
    return grey / 255.0 if grey.max() > 1.0 else grey


def prepare(source, name=None):
    """Any PNG/JPEG/array of one dark-on-light or light-on-dark character -> `Prepared`.

    Raises HCRError with one sentence when the file is not a usable image or holds no ink.
    Whatever goes wrong with one picture becomes such a sentence, so a caller that handles
    many pictures (the command line, the web page) can keep answering the others.
    """
    label = picture_label(source, name)
    with one_sentence_errors(label):
        grey = _shrink(to_grey(source, name))
        ink, found = grey_to_ink(grey)
        if not found:
            raise HCRError(f"{label} shows no character (it looks blank): draw or photograph one and try again.")
        return Prepared(image=frame_ink(ink), grey=grey, ink=ink)


def to_grey(source, name=None, working_side=WORKING_SIDE):
    """Any PNG/JPEG file, bytes, PIL image or array -> grey float image in [0, 1] (HCRError if unusable)."""
    if isinstance(source, np.ndarray):
        grey = _array_to_grey(source)
        factor = max(1, max(grey.shape) // working_side)  # shrunk as files are, so memory stays bounded
        if factor > 1:
            h, w = grey.shape
            h, w = max(factor, h - h % factor), max(factor, w - w % factor)
            grey = np.pad(grey, ((0, max(0, h - grey.shape[0])), (0, max(0, w - grey.shape[1]))), mode="edge")
            grey = grey[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        return grey
    return _to_grey(open_image(source, name, working_side))


MAX_LINE_ASPECT = 100  # real lines are at most about 27 times as wide as they are tall


def refuse_slivers(grey, label):
    """A picture far thinner than any line of writing would be shrunk to nothing (or read for minutes):
    say so in one sentence instead of calling it blank."""
    h, w = np.shape(grey)
    if max(h, w) > MAX_LINE_ASPECT * max(1, min(h, w)):
        raise HCRError(f"{label} is {max(h, w) // max(1, min(h, w))} times as long as it is thick, far longer than "
                       "any line of writing: cut it into shorter pieces and try again.")


@contextlib.contextmanager
def one_sentence_errors(label):
    """Whatever goes wrong with one picture becomes one HCRError sentence naming it, so a caller
    that handles many pictures (the command line, the web page) can keep answering the others."""
    try:
        yield
    except HCRError:
        raise
    except MemoryError:
        raise HCRError(f"{label} needs more memory than is free: shrink it and try again.") from None
    except Exception as exc:
        raise HCRError(f"{label} could not be prepared ({_brief(exc)}): save it again as a PNG or JPEG file.") from None


# --- Lines of writing ---------------------------------------------------------------------------

LINE_WORKING_SIDE = 2048  # photos of a line or a page are shrunk to at most about this before finding the ink


def _stroke_width(mask):
    """A pen's width (px): the median length of the shorter of the horizontal and vertical ink runs."""
    def runs(m):
        padded = np.pad(m.astype(np.int8), ((0, 0), (1, 1)))
        d = np.diff(padded, axis=1)
        starts, ends = np.nonzero(d == 1), np.nonzero(d == -1)
        return ends[1] - starts[1]

    across, down = runs(mask), runs(mask.T)
    if across.size == 0 or down.size == 0:
        return 2.0
    return float(max(1.0, min(np.median(across), np.median(down))))


# Real lines (the 10,204 of the handwritten collection, measured on their ink boxes) have a pen at most
# 0.53 of the ink's height, cross at most 11 strokes per column on average, and keep at least 41% of
# their ink in marks longer than a speck (but 26 bold short words, whose ink is in bold blobs). A bar
# or a blob is its own height thick, noise or paper texture crosses dozens of strokes, scattered specks
# have next to no long mark. Thresholds far outside.
MAX_PEN_SHARE = 0.75
MAX_STROKES_ACROSS = 20.0
MIN_LONG_MARKS = 0.1


BOLD_SHARE, BOLD_PIXELS = 1.25, 64  # a blob this many pens square and pixels may be a bold short word
BOLD_INK = 0.5  # ... when such blobs hold this much of the ink: dust is many small marks, a word a few big ones


def long_mark(pen):
    """The fewest pixels of a mark longer than a speck: four pen widths square (at two, dense dust
    was read as a line of writing)."""
    return max(8.0, 4 * pen * pen)


def mostly_bold_blobs(areas, pen):
    """Whether the marks (their areas in pixels) are a bold short word. Printed in bold, "de" or "du"
    merge into one blob only one or two of its (over-estimated) pens long, under `long_mark`: 27 real
    lines were called blank for it. Dust has blobs that big too, but they hold little of its ink."""
    areas = np.asarray(areas, dtype=np.float64)
    bold = (areas >= BOLD_SHARE * pen * pen) & (areas >= BOLD_PIXELS)
    return bool(areas.sum() > 0 and areas[bold].sum() >= BOLD_INK * areas.sum())


def not_writing(mask):
    """Why the marks of one line are not writing (None when they may be): a bar or blob, noise or
    texture, or scattered specks.

    The reader would otherwise invent letters for them (a black bar read as "MIRRRRRRR", sure)."""
    mask = np.asarray(mask, bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    box = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    pen = _stroke_width(box)
    height, width = box.shape
    if pen > MAX_PEN_SHARE * height and (height >= 8 or width >= 8 * height):  # a few pixels tall, tiny writing
        return "a solid bar or blob"  # is as thick as it is tall: only a long rule counts then
    if box.mean() * height / pen > MAX_STROKES_ACROSS:
        return "noise or texture"
    labels, count = ndimage.label(box, structure=np.ones((3, 3)))
    areas = ndimage.sum_labels(box, labels, np.arange(1, count + 1))
    if areas[areas >= long_mark(pen)].sum() < MIN_LONG_MARKS * areas.sum() and not mostly_bold_blobs(areas, pen):
        return "scattered specks"
    return None


def line_to_ink(grey):
    """Bright ink on black for a picture of writing (a line or a page); (ink, found).

    Like `grey_to_ink`, but built for lines: the paper is estimated by a morphological closing
    wider than the strokes (so uneven light and shadows go), and small marks are kept, since
    dots, commas and apostrophes are characters. Only specks much smaller than a dot go.
    """
    grey = np.asarray(grey, dtype=np.float32)
    h, w = grey.shape
    if min(h, w) < 4:
        return np.zeros_like(grey), False
    margin = max(1, min(h, w) // 20)
    border = np.concatenate([grey[:margin].ravel(), grey[-margin:].ravel(),
                             grey[:, :margin].ravel(), grey[:, -margin:].ravel()])
    ink = (1.0 - grey) if float(np.median(border)) >= 0.5 else grey.copy()
    sample = ink[:: max(1, h // 400), :: max(1, w // 400)]  # thresholds from a few hundred thousand pixels at most
    threshold = _otsu(sample)
    mask = ink > threshold
    if mask.mean() > 0.4 and (sample > threshold).any():  # two papers (a scan pasted on white): the ink is
        mask = ink > _otsu(sample[sample > threshold])  # the darkest part of the darker one
    stroke = _stroke_width(mask)
    size = int(min(max(7, 3 * stroke + 3), max(7, min(h, w))))
    paper = ndimage.grey_opening(ink, size=(size, size))  # the ink's complement: lowest level near each pixel
    ink = np.clip(ink - ndimage.uniform_filter(paper, size=size), 0.0, None)
    peak = float(np.percentile(ink[:: max(1, h // 400), :: max(1, w // 400)], 99.5))
    if peak < 0.08:  # less contrast than faint pencil on white: nothing is written here
        return np.zeros_like(grey), False
    ink = np.clip(ink / peak, 0.0, 1.0)
    floor = 0.5 * _otsu(ink[:: max(1, h // 400), :: max(1, w // 400)])
    ink = np.clip((ink - floor) / (1.0 - floor), 0.0, 1.0)
    marks = ink > 0.3
    labels, count = ndimage.label(marks, structure=np.ones((3, 3)))
    if count == 0:
        return np.zeros_like(grey), False
    areas = ndimage.sum_labels(marks, labels, index=np.arange(1, count + 1))
    keep = areas >= max(2.0, 0.25 * stroke * stroke)
    kept = keep[labels - 1] & (labels > 0)
    if areas.max() < long_mark(stroke) and not mostly_bold_blobs(areas[keep], stroke):
        return np.zeros_like(grey), False
    near = grow(kept)
    return np.where(near, ink, 0.0).astype(np.float32), True


def prepare_line(source, name=None, height=None, tidy=True):
    """Any PNG/JPEG/array of ONE line of writing, dark on light or light on dark -> framed line.

    The same road as a character (`open_image`, grey, ink), then `framing.frame_line` (levelled
    and without its neighbours' pieces unless `tidy` is False). Raises
    HCRError with one sentence for files that are not usable images and for blank pictures.
    """
    from .framing import LINE_HEIGHT, frame_line

    label = picture_label(source, name)
    with one_sentence_errors(label):
        grey = to_grey(source, name, LINE_WORKING_SIDE)
        refuse_slivers(grey, label)
        ink, found = line_to_ink(grey)
        if not found:
            raise HCRError(f"{label} shows no writing (it looks blank): write or photograph a line and try again.")
        why = not_writing(ink > 0.3)
        if why:
            raise HCRError(f"{label} shows no writing (it looks like {why}, not letters): write or photograph a line "
                           "and try again.")
        return frame_line(ink, height or LINE_HEIGHT, tidy=tidy)
