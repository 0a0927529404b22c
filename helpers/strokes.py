"""Pen strokes for the 36 characters (and a few small letters), as a person would draw them, with random wobble.

Used to test the model on characters that come from no dataset (see benchmarks/), by the
browser test, which draws these strokes with the mouse on the web demo's canvas, and by the
notebook, which shows how a phone photo or a transparent drawing is prepared for the model.
Coordinates are in a unit box: x to the right, y downwards, (0, 0) at the top left.
"""

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps


def _arc(cx, cy, rx, ry, start, end, n=24):
    """Points on an ellipse arc, angles in degrees (0 = right, 90 = down, as y grows down)."""
    t = np.radians(np.linspace(start, end, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


def _line(*points):
    return list(points)


TEMPLATES = {
    "0": [_arc(0.5, 0.5, 0.3, 0.5, -90, 270)],
    "1": [_line((0.3, 0.22), (0.55, 0.0), (0.55, 1.0))],
    "2": [_arc(0.5, 0.27, 0.36, 0.27, 195, 370) + _line((0.1, 1.0), (0.92, 1.0))],
    "3": [_arc(0.45, 0.25, 0.37, 0.25, 210, 450) + _arc(0.45, 0.74, 0.42, 0.26, -90, 150)],
    "4": [_line((0.68, 1.0), (0.68, 0.0), (0.05, 0.68), (0.95, 0.68))],
    "5": [_line((0.85, 0.0), (0.22, 0.0), (0.16, 0.45)) + _arc(0.47, 0.69, 0.4, 0.31, -130, 150)],
    "6": [_arc(0.62, 0.55, 0.5, 0.55, 250, 180, 12) + _arc(0.5, 0.72, 0.38, 0.28, 180, 540)],
    "7": [_line((0.08, 0.0), (0.92, 0.0), (0.38, 1.0))],
    "8": [_arc(0.5, 0.25, 0.3, 0.25, 90, 450) + _arc(0.5, 0.74, 0.37, 0.26, -90, 270)],
    "9": [_arc(0.5, 0.28, 0.38, 0.28, 0, 360) + _line((0.88, 0.28), (0.8, 1.0))],
    "A": [_line((0.0, 1.0), (0.5, 0.0), (1.0, 1.0)), _line((0.22, 0.6), (0.78, 0.6))],
    "B": [_line((0.12, 1.0), (0.12, 0.0))
          + _arc(0.12, 0.24, 0.62, 0.24, -90, 90) + _arc(0.12, 0.74, 0.75, 0.26, -90, 90)],
    "C": [_arc(0.55, 0.5, 0.47, 0.5, -45, -315)],
    "D": [_line((0.12, 1.0), (0.12, 0.0)) + _arc(0.12, 0.5, 0.8, 0.5, -90, 90)],
    "E": [_line((0.9, 0.0), (0.1, 0.0), (0.1, 1.0), (0.9, 1.0)), _line((0.1, 0.5), (0.72, 0.5))],
    "F": [_line((0.9, 0.0), (0.1, 0.0), (0.1, 1.0)), _line((0.1, 0.48), (0.72, 0.48))],
    "G": [_arc(0.52, 0.5, 0.46, 0.5, -40, -360) + _line((0.98, 0.6), (0.55, 0.6))],
    "H": [_line((0.1, 0.0), (0.1, 1.0)), _line((0.9, 0.0), (0.9, 1.0)), _line((0.1, 0.5), (0.9, 0.5))],
    "I": [_line((0.5, 0.0), (0.5, 1.0)), _line((0.2, 0.0), (0.8, 0.0)), _line((0.2, 1.0), (0.8, 1.0))],
    "J": [_line((0.3, 0.0), (0.95, 0.0)), _line((0.68, 0.0), (0.68, 0.72)) + _arc(0.4, 0.72, 0.28, 0.28, 0, 160)],
    "K": [_line((0.12, 0.0), (0.12, 1.0)), _line((0.88, 0.0), (0.12, 0.58)), _line((0.35, 0.42), (0.9, 1.0))],
    "L": [_line((0.15, 0.0), (0.15, 1.0), (0.85, 1.0))],
    "M": [_line((0.02, 1.0), (0.1, 0.0), (0.5, 0.65), (0.9, 0.0), (0.98, 1.0))],
    "N": [_line((0.1, 1.0), (0.1, 0.0), (0.9, 1.0), (0.9, 0.0))],
    "O": [_arc(0.5, 0.5, 0.5, 0.5, -90, 270)],
    "P": [_line((0.12, 1.0), (0.12, 0.0)) + _arc(0.12, 0.27, 0.75, 0.27, -90, 90)],
    "Q": [_arc(0.5, 0.5, 0.5, 0.5, -90, 270), _line((0.55, 0.65), (1.0, 1.05))],
    "R": [_line((0.12, 1.0), (0.12, 0.0)) + _arc(0.12, 0.27, 0.72, 0.27, -90, 90) + _line((0.12, 0.54), (0.9, 1.0))],
    "S": [_arc(0.5, 0.26, 0.4, 0.26, -20, -270) + _arc(0.5, 0.74, 0.42, 0.26, -90, 160)],
    "T": [_line((0.0, 0.0), (1.0, 0.0)), _line((0.5, 0.0), (0.5, 1.0))],
    "U": [_line((0.1, 0.0), (0.1, 0.6)) + _arc(0.5, 0.6, 0.4, 0.4, 180, 0) + _line((0.9, 0.6), (0.9, 0.0))],
    "V": [_line((0.0, 0.0), (0.5, 1.0), (1.0, 0.0))],
    "W": [_line((0.0, 0.0), (0.22, 1.0), (0.5, 0.3), (0.78, 1.0), (1.0, 0.0))],
    "X": [_line((0.05, 0.0), (0.95, 1.0)), _line((0.95, 0.0), (0.05, 1.0))],
    "Y": [_line((0.0, 0.0), (0.5, 0.5), (1.0, 0.0)), _line((0.5, 0.5), (0.5, 1.0))],
    "Z": [_line((0.08, 0.0), (0.92, 0.0), (0.08, 1.0), (0.92, 1.0))],
    # A few small letters whose shape differs from their capital (the case-sensitive browser test).
    "a": [_arc(0.45, 0.62, 0.4, 0.38, -30, 330), _line((0.88, 0.22), (0.88, 1.0))],
    "b": [_line((0.12, 0.0), (0.12, 1.0)), _arc(0.5, 0.68, 0.38, 0.32, 180, 540)],
    "d": [_line((0.88, 0.0), (0.88, 1.0)), _arc(0.5, 0.68, 0.38, 0.32, 0, 360)],
    "e": [_line((0.1, 0.62), (0.9, 0.62)) + _arc(0.5, 0.62, 0.4, 0.38, 0, -300)],
    "h": [_line((0.12, 0.0), (0.12, 1.0)), _arc(0.5, 0.62, 0.38, 0.3, 180, 360) + _line((0.88, 0.62), (0.88, 1.0))],
    "n": [_line((0.12, 0.3), (0.12, 1.0)), _arc(0.5, 0.62, 0.38, 0.3, 180, 360) + _line((0.88, 0.62), (0.88, 1.0))],
    "r": [_line((0.15, 0.3), (0.15, 1.0)), _arc(0.6, 0.62, 0.45, 0.3, 180, 290)],
    "t": [_line((0.45, 0.0), (0.45, 0.85)) + _arc(0.7, 0.85, 0.25, 0.15, 180, 90), _line((0.1, 0.3), (0.85, 0.3))],
}

# Width of each template relative to its height, so an O is round and a 1 is narrow.
ASPECT = {c: 0.75 for c in TEMPLATES}
ASPECT.update({"0": 0.62, "1": 0.45, "I": 0.55, "L": 0.6, "O": 0.95, "Q": 0.95, "M": 0.9, "W": 1.0, "7": 0.7})


def wobbly_strokes(char, rng, size=1.0, jitter=0.02, slant=0.15, rotate=8.0):
    """The strokes of `char` in a box of height `size`, randomly slanted, rotated and shaken."""
    strokes = TEMPLATES[char]
    aspect = ASPECT[char] * rng.uniform(0.85, 1.15)
    shear = rng.uniform(-slant, slant)
    angle = math.radians(rng.uniform(-rotate, rotate))
    cos, sin = math.cos(angle), math.sin(angle)
    out = []
    for stroke in strokes:
        pts = np.array(stroke, dtype=float)
        pts = pts + rng.normal(0, jitter, size=pts.shape).cumsum(axis=0) * 0.3  # drifting hand
        x = (pts[:, 0] - 0.5) * aspect + shear * (pts[:, 1] - 0.5)
        y = pts[:, 1] - 0.5
        out.append(np.stack([cos * x - sin * y, sin * x + cos * y], axis=1) * size)
    return out


def render(strokes, canvas=200, width=12, margin=0.15, ink=0, paper=255):
    """Draw strokes (centred, scaled into the canvas) as a greyscale PIL image."""
    pts = np.concatenate(strokes)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    scale = canvas * (1 - 2 * margin) / max((hi - lo).max(), 1e-6)
    centre = (lo + hi) / 2
    image = Image.new("L", (canvas, canvas), paper)
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        xy = [tuple(p) for p in (stroke - centre) * scale + canvas / 2]
        draw.line(xy, fill=ink, width=width, joint="curve")
        r = width / 2
        for x, y in (xy[0], xy[-1]):  # round pen caps
            draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    return image


def fake_photo(image, rng):
    """A clean dark-on-white picture made to look like a phone photo of ink on paper.

    Tinted paper and pen, light falling off across the page and in a patch, sensor noise and a
    little blur: what `preprocess.prepare` must see through in a user's photo.
    """
    ink = 1.0 - np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    h, w = ink.shape
    paper = np.array([0.93, 0.92, 0.86]) * rng.uniform(0.8, 1.05) + rng.uniform(-0.04, 0.04, 3)
    pen = [np.array([0.08, 0.1, 0.35]), np.array([0.1, 0.1, 0.12]), np.array([0.25, 0.25, 0.28])][rng.integers(3)]
    rgb = paper[None, None] * (1 - ink[..., None]) + pen[None, None] * ink[..., None]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1 + rng.uniform(-0.25, 0.25) * (xx - 0.5) + rng.uniform(-0.25, 0.25) * (yy - 0.5)
    light -= rng.uniform(0, 0.2) * ((xx - rng.uniform(0.2, 0.8)) ** 2 + (yy - rng.uniform(0.2, 0.8)) ** 2)
    rgb = rgb * light[..., None] + rng.normal(0, rng.uniform(0.005, 0.03), size=rgb.shape)
    photo = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    return photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5) * max(h, w) / 200))


def on_transparent(image):
    """A dark-on-white picture as black ink on a transparent canvas, as a drawing app saves it."""
    drawing = Image.new("RGBA", image.size, (0, 0, 0, 0))
    drawing.putalpha(ImageOps.invert(image.convert("L")))
    return drawing
