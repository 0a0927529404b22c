"""Framing: how a character is placed in the 28x28 frame the model reads.

MNIST digits were fitted into a 20x20 box and centred by their centre of mass; EMNIST letters
were blurred, cropped, padded and scaled to fill the frame. A model trained on both can learn
"which dataset" instead of "which character", and neither pipeline matches a photo or a
drawing. So every image, from the training files or from a user, goes through the same
`frame_ink`, which redraws the character as a pen shape framed the MNIST way. `emnist_framing`
is the other way, used to test whether a model reads the character or the framing.

A line of writing is framed by `frame_line`: levelled if it is tilted (`level_line`), rid of the
pieces of its neighbours that a tight crop cuts through (`drop_neighbours`), cropped to its ink
and scaled to the reader's height.
"""

import math

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

SIZE = 28  # side of the model's input
BOX = 20  # the longer side of the character after framing, as in MNIST
CENTRE = 14.0  # where MNIST puts the centre of mass (measured: 13.99, 14.00)
INK_THRESHOLD = 0.1  # ink below this (0..1) does not count when finding the character's box
MIN_SHAPE = 80  # characters are binarised at this size or larger, for smooth edges
MIN_STROKE = 1.6  # thinnest stroke (px, at 28x28) before it is thickened


def frame_ink(ink):
    """Crop to the ink, scale the longer side to 20 px, pad to 28x28, centre by mass.

    `ink` is a 2-D float array in [0, 1] with bright ink on a dark (0) background. The character
    is redrawn the way MNIST was made: as a binary pen shape (upsampled, cut at half intensity)
    scaled down with antialiasing. So a blurry EMNIST letter, a crisp font and a phone photo
    all reach the model with the same edge profile, and style cannot tell digits from letters.
    Returns float32 28x28; an image without ink comes back all zero.
    """
    ink = np.asarray(ink, dtype=np.float32)
    out = np.zeros((SIZE, SIZE), np.float32)
    rows = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        return out
    ink = ink[max(rows[0] - 1, 0) : rows[-1] + 2, max(cols[0] - 1, 0) : cols[-1] + 2]
    h, w = ink.shape
    up = max(1, int(np.ceil(MIN_SHAPE / max(h, w))))  # small images: binarise on a finer grid
    if up > 1:
        ink = np.asarray(Image.fromarray(ink, mode="F").resize((w * up, h * up), Image.Resampling.BILINEAR))
    shape = ink >= 0.5
    if not shape.any():
        return out
    rows, cols = np.flatnonzero(shape.any(axis=1)), np.flatnonzero(shape.any(axis=0))
    shape = shape[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = shape.shape
    scale = BOX / max(h, w)
    shape = _thicken(shape, scale)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    crop = np.asarray(
        Image.fromarray(shape.astype(np.uint8) * 255).resize((new_w, new_h), Image.Resampling.BILINEAR),
        dtype=np.float32,
    ) / 255.0
    mass = crop.sum()
    if mass <= 0:
        return out
    cy = (crop.sum(axis=1) @ np.arange(new_h)) / mass
    cx = (crop.sum(axis=0) @ np.arange(new_w)) / mass
    top = int(np.clip(np.floor(CENTRE - cy + 0.5), 0, SIZE - new_h))  # halves round up, always
    left = int(np.clip(np.floor(CENTRE - cx + 0.5), 0, SIZE - new_w))
    out[top : top + new_h, left : left + new_w] = crop
    return out


def stroke_width(shape):
    """Mean stroke width of a binary shape in pixels: twice its area over its outline."""
    area = shape.sum()
    inner = ndimage.binary_erosion(shape, border_value=0)
    outline = area - inner.sum()
    return 2.0 * area / max(outline, 1)


def _thicken(shape, scale):
    """Widen strokes that would be thinner than MIN_STROKE px after scaling (a thin pen on a
    big canvas would otherwise fade to grey); strokes of normal width are left alone."""
    width = stroke_width(shape)
    missing = MIN_STROKE / scale - width
    if missing <= 1:
        return shape
    radius = int(np.ceil(missing / 2))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = xx**2 + yy**2 <= radius**2
    padded = np.pad(shape, radius)
    return ndimage.binary_dilation(padded, structure=disk)[radius:-radius, radius:-radius]


def frame_batch(images):
    """`frame_ink` over a uint8 array (N, 28, 28) of dataset images; returns uint8 again."""
    images = np.asarray(images)
    out = np.empty_like(images, dtype=np.uint8)
    scale = 1.0 / 255.0
    for i, img in enumerate(images):
        out[i] = np.rint(frame_ink(img.astype(np.float32) * scale) * 255.0).astype(np.uint8)
    return out


def framing_stats(images):
    """How a dataset frames its characters: mean longer side of the ink box (px), ink pixels,
    and the share of ink pixels that are grey (soft edges), for uint8 (N, 28, 28) images."""
    images = torch.as_tensor(images)
    ink = images > 25
    rows, cols = ink.any(dim=2), ink.any(dim=1)

    def extent(mask):
        idx = torch.arange(28)
        first = torch.where(mask, idx, 28).min(dim=1).values
        last = torch.where(mask, idx, -1).max(dim=1).values
        return (last - first + 1).clamp(min=0)

    side = torch.maximum(extent(rows), extent(cols)).float()
    grey = (ink & (images < 230)).sum(dim=(1, 2)).float() / ink.sum(dim=(1, 2)).clamp(min=1)
    return {"box_px": round(side.mean().item(), 1), "ink_px": round(ink.sum(dim=(1, 2)).float().mean().item(), 1),
            "grey_share": round(grey.mean().item(), 3)}


def grow(mask):
    """The mask grown by one pixel up, down, left and right: scipy's binary_dilation with its default
    cross, in four numpy operations (which, unlike scipy's, let another thread run meanwhile)."""
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def emnist_framing(images):
    """Frame characters the way EMNIST was made from NIST scans: blur (sigma 1 at 4x scale),
    crop, pad 2 px, square, downsample to 28x28. Dataset-style images in, uint8 (N, 28, 28) out.

    MNIST digits framed like this are "digits framed another way": the test of whether a
    model reads the digit or recognises the dataset.
    """
    from PIL import Image, ImageFilter

    out = np.zeros((len(images), 28, 28), np.uint8)
    for i, img in enumerate(np.asarray(images)):
        big = Image.fromarray(img).resize((112, 112), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(1))
        arr = np.asarray(big)
        ys, xs = np.nonzero(arr > 25)
        if ys.size == 0:
            continue
        crop = np.pad(arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], 2)
        side = max(crop.shape)
        square = np.zeros((side, side), np.uint8)
        top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
        square[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
        out[i] = np.asarray(Image.fromarray(square).resize((28, 28), Image.Resampling.BICUBIC))
    return out


# --- Lines ---------------------------------------------------------------------------------------

LINE_HEIGHT = 48  # a framed line is this many pixels tall (chosen on val: `benchmarks.lines designs`)
LINE_MARGIN = 3  # black rows above and below the ink, and columns before and after it


MAX_SKEW = 6.0  # degrees: a line tilted more than this is not levelled (it is more likely a column)
SKEW_STEP = 0.5  # degrees between the tilts tried
MIN_SKEW = 1.0  # degrees: a smaller tilt is left alone (many training lines tilt as much, and read well)


def line_skew(ink):
    """The tilt (degrees; positive falls to the right) that makes a line's ink fall into the fewest rows.

    Every tilt from -MAX_SKEW to MAX_SKEW is tried as a shear of the ink's points (for a few
    degrees, shear and rotation differ by less than a pixel); the one whose row profile is
    sharpest (largest sum of squares) wins. 0 when no tilt is clearly sharper than none.
    """
    ys, xs = np.nonzero(ink >= INK_THRESHOLD)
    if ys.size < 20:
        return 0.0
    weights = ink[ys, xs].astype(np.float64)
    xs = xs - xs.mean()
    angles = np.arange(-MAX_SKEW, MAX_SKEW + SKEW_STEP / 2, SKEW_STEP)
    offset = int(np.ceil(np.abs(xs).max() * np.tan(np.radians(MAX_SKEW)))) + 1
    scores = []
    for angle in angles:
        rows = np.round(ys - xs * np.tan(np.radians(angle))).astype(np.int64) + offset
        scores.append(float(np.square(np.bincount(rows, weights)).sum()))
    best = int(np.argmax(scores))
    level = int(np.argmin(np.abs(angles)))
    if abs(angles[best]) < MIN_SKEW or scores[best] < 1.05 * scores[level]:
        return 0.0
    return float(angles[best])


def level_line(ink):
    """The line's ink turned level (see `line_skew`); a level line comes back as it was.

    A small picture is enlarged before it is turned, to at least twice the reader's height, so the
    turn does not blur strokes a few pixels wide (a line scanned at 32 px read worse levelled).
    """
    angle = line_skew(ink)
    if angle == 0.0:
        return ink
    h, w = ink.shape
    image = Image.fromarray(np.asarray(ink, dtype=np.float32), mode="F")
    scale = max(1, math.ceil(2 * LINE_HEIGHT / h))
    if scale > 1:
        image = image.resize((w * scale, h * scale), Image.Resampling.BICUBIC)
    turned = image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=0.0)
    return np.clip(np.asarray(turned), 0.0, 1.0)


def drop_neighbours(ink):
    """The ink without the pieces of the lines above and below that a tight crop cuts through.

    A line crop from a page often holds the tails of the line above and the tops of the line
    below, cut by the crop's edge. They are dropped when they touch the top or the bottom edge
    and never reach the line's own band: the rows around the row profile's peak that hold at
    least a third of its ink. A letter's ascender reaches the band through its letter, so it stays.
    """
    marks = ink >= INK_THRESHOLD
    profile = ndimage.uniform_filter1d(ink.sum(axis=1).astype(np.float64), size=max(3, ink.shape[0] // 16))
    if profile.max() <= 0:
        return ink
    peak = int(np.argmax(profile))
    runs, _ = ndimage.label(profile >= profile[peak] / 3)
    band = np.flatnonzero(runs == runs[peak])
    top, bottom = band[0], band[-1]
    labels, count = ndimage.label(marks, structure=np.ones((3, 3)))
    if count < 2:
        return ink
    edge = set(np.unique(labels[0])) | set(np.unique(labels[-1]))
    edge.discard(0)
    drop = [i for i, box in enumerate(ndimage.find_objects(labels), start=1)
            if i in edge and (box[0].stop <= top or box[0].start > bottom)]
    if not drop:
        return ink
    return np.where(np.isin(labels, drop), 0.0, ink).astype(np.float32)


def frame_line(ink, height=LINE_HEIGHT, margin=LINE_MARGIN, tidy=True):
    """Crop a line's ink map to its ink, scale it to `height` px keeping the aspect, pad with black.

    Unlike `frame_ink`, the grey levels are kept (a line is read at a scale where binarising
    would break thin strokes and dots); they are only stretched so the darkest ink is 1.
    `ink` is 2-D float in [0, 1], bright ink on black. Returns float32 (height, width) with
    width >= height; a picture without ink comes back all zero.
    """
    ink = np.asarray(ink, dtype=np.float32)
    if tidy:
        ink = drop_neighbours(level_line(ink))
    inner = height - 2 * margin
    rows = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=0))
    if rows.size == 0:
        return np.zeros((height, height), np.float32)
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = crop.shape
    new_w = max(1, round(w * inner / h))
    small = np.asarray(Image.fromarray(crop, mode="F").resize((new_w, inner), Image.Resampling.BILINEAR,
                                                             reducing_gap=2.0 if h > inner else None))
    peak = float(np.percentile(small[small > INK_THRESHOLD], 98)) if (small > INK_THRESHOLD).any() else 1.0
    small = np.clip(small / max(peak, 1e-3), 0.0, 1.0)
    out = np.zeros((height, max(height, new_w + 2 * margin)), np.float32)
    out[margin : margin + inner, margin : margin + new_w] = small
    return out
