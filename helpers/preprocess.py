"""Turn any picture of one character into the 28x28 input the model was trained on.

A photo, a scan or a drawing becomes an ink map (bright ink on black, whatever the paper,
light and polarity), which `framing.frame_ink` then frames exactly like the training images.
"""

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from .errors import HCRError
from .framing import frame_ink

MAX_PIXELS = 60_000_000  # a 60-megapixel photo is fine; beyond that, refuse instead of stalling
WORKING_SIDE = 512  # big photos are shrunk to this before looking for ink, for speed


# --- From a user's file to an ink map -------------------------------------------------------


def open_image(source, name=None):
    """Open a path, bytes or PIL image, refusing what is not a usable picture in one sentence.

    `name` is how messages call the image (a file name for uploads); paths speak for themselves.
    """
    if isinstance(source, Image.Image):
        return source
    name = name or ("The image" if isinstance(source, (bytes, bytearray)) else str(source))
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise HCRError(f"{name} is empty (0 bytes): send a PNG or JPEG file.")
        data = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise HCRError(f"{name} does not exist: check the path.")
        if path.is_dir():
            raise HCRError(f"{name} is a folder, not an image: give the path of a PNG or JPEG.")
        if path.stat().st_size == 0:
            raise HCRError(f"{name} is empty (0 bytes): give a PNG or JPEG file.")
        data = path
    try:
        with Image.open(data) as probe:
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise HCRError(
                    f"{name} is too large ({width}x{height} pixels): shrink it below "
                    f"{MAX_PIXELS // 1_000_000} megapixels and try again."
                )
            probe.draft("L", (WORKING_SIDE * 2, WORKING_SIDE * 2))  # JPEG: decode small, fast
            image = probe.copy()
            image.load()
    except HCRError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise HCRError(f"{name} is not an image that can be read: give a PNG or JPEG file.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise HCRError(f"{name} could not be read ({exc}): the file may be cut short; save it again.") from None
    return image


def _to_grey(image):
    """Grey float array in [0, 1]; transparent areas become the colour that contrasts with ink."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        rgba = np.asarray(image, dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        if alpha.min() < 0.99:
            opaque = alpha > 0.5
            # Ink drawn on a transparent canvas: put it on a background that contrasts with it.
            ink_is_light = opaque.any() and grey[opaque].mean() > 0.5
            backdrop = 0.0 if ink_is_light else 1.0
            grey = grey * alpha + backdrop * (1.0 - alpha)
        return grey
    if image.mode not in ("L", "F"):
        image = image.convert("RGB").convert("L")
    grey = np.asarray(image, dtype=np.float32)
    if image.mode == "L":
        grey = grey / 255.0
    else:
        top = grey.max()
        grey = grey / top if top > 1 else grey
    return grey


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
    hist, edges = np.histogram(values, bins=64, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(edges[1:][np.argmax(between)])


def _paper_level(ink, cells=8):
    """Smooth estimate of the paper under the ink, for photos with uneven light.

    Each cell of a coarse grid votes with a low percentile (paper, not strokes); taking the
    minimum over neighbouring cells keeps thick strokes from being mistaken for paper.
    """
    h, w = ink.shape
    if min(h, w) < 4 * cells:
        return 0.0
    ys = np.linspace(0, h, cells + 1).astype(int)
    xs = np.linspace(0, w, cells + 1).astype(int)
    coarse = np.array(
        [[np.percentile(ink[ys[i] : ys[i + 1], xs[j] : xs[j + 1]], 25) for j in range(cells)] for i in range(cells)],
        dtype=np.float32,
    )
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
    areas = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    # Keep strokes and dots (the dot of an i is small), drop specks of dust and paper grain.
    keep = areas >= max(areas.max() / 40.0, mask.size * 2e-5, 2)
    kept = keep[labels - 1] & (labels > 0)
    if areas.max() < mask.size * 1e-4 or not kept.any():
        return np.zeros_like(grey), False
    # Soft edges of the kept strokes survive; everything else is set to paper.
    near = ndimage.binary_dilation(kept, iterations=2)
    return np.where(near, ink, 0.0).astype(np.float32), True


@dataclass
class Prepared:
    """The 28x28 input and the intermediate pictures, so the notebook can show each step."""

    image: np.ndarray  # 28x28 float32, what the model sees
    grey: np.ndarray = field(repr=False, default=None)  # the picture as grey levels
    ink: np.ndarray = field(repr=False, default=None)  # bright ink on black, cleaned


def prepare(source, name=None):
    """Any PNG/JPEG/array of one dark-on-light or light-on-dark character -> `Prepared`.

    Raises HCRError with one sentence when the file is not a usable image or holds no ink.
    """
    if isinstance(source, np.ndarray):
        grey = source.astype(np.float32)
        if grey.ndim == 3:
            grey = grey[..., :3].mean(axis=2)
        if grey.max() > 1.0:
            grey = grey / 255.0
    else:
        grey = _to_grey(open_image(source, name))
    grey = _shrink(grey)
    ink, found = grey_to_ink(grey)
    if not found:
        label = name or ("The image" if not isinstance(source, (str, Path)) else str(source))
        raise HCRError(f"{label} shows no character (it looks blank): draw or photograph one and try again.")
    return Prepared(image=frame_ink(ink), grey=grey, ink=ink)
