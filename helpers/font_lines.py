"""Lines written in handwriting fonts: drawn whole by the font (so joined scripts stay joined),
as clean scans or as phone photos, and framed like a user's picture.

The fonts come from `helpers.fonts` (npm's @fontsource packages). Lines in the DEV fonts may
train the reader; the HELD_OUT fonts only ever score it.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from . import lines


def render_font_line(font_path, text, rng, sizes=(28, 90)):
    """`text` in a font, dark on white paper, at a random size, pen weight, margin and small tilt."""
    size = int(rng.integers(*sizes))
    font = ImageFont.truetype(str(font_path), size)
    image = _draw_line(font, text, size, rng)
    image.info["font_size"] = size
    return image


def _draw_line(font, text, size, rng):
    stroke = int(rng.integers(0, max(1, size // 40) + 1))
    left, top, right, bottom = font.getbbox(text, anchor="ls", stroke_width=stroke)
    margin = (int(rng.uniform(0.3, 1.5) * size), int(rng.uniform(0.2, 1.0) * size))
    image = Image.new("L", (right - left + 2 * margin[0], bottom - top + 2 * margin[1]), 255)
    ImageDraw.Draw(image).text((margin[0] - left, margin[1] - top), text, font=font, fill=0, anchor="ls",
                               stroke_width=stroke, stroke_fill=0)
    return image.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)


def photograph(image, size, rng):
    """A clean dark-on-white line as a phone photo: tinted paper, coloured pen, uneven light, grain, blur.

    Like `strokes.fake_photo`, but the blur follows the letter size (`size`,
    the font size in px), not the picture's longer side, which for a line is its length.
    """
    ink = 1.0 - np.asarray(image, dtype=np.float32) / 255.0
    h, w = ink.shape
    paper = np.array([0.93, 0.92, 0.86]) * rng.uniform(0.8, 1.05) + rng.uniform(-0.04, 0.04, 3)
    pen = [np.array([0.08, 0.1, 0.35]), np.array([0.1, 0.1, 0.12]), np.array([0.25, 0.25, 0.28])][rng.integers(3)]
    rgb = paper[None, None] * (1 - ink[..., None]) + pen[None, None] * ink[..., None]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1 + rng.uniform(-0.25, 0.25) * (xx - 0.5) + rng.uniform(-0.5, 0.5) * (yy - 0.5) * h / max(h, w)
    light -= rng.uniform(0, 0.2) * ((xx - rng.uniform(0.2, 0.8)) ** 2 + ((yy - 0.5) * w / max(h, w)) ** 2 / 4)
    rgb = rgb * light[..., None] + rng.normal(0, rng.uniform(0.005, 0.03), size=rgb.shape)
    photo = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    return photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5) * size / 60))


def font_chars(paths):
    """{font name: the characters it really draws}."""
    return {name: set(lines.CharacterBank.from_font(path).chars()) for name, path in paths.items()}


class TrainingTexts:
    """Texts for training font lines: half English words with punctuation (training words only),
    half real training transcriptions. A class, so that worker processes can use it."""

    def __init__(self, real_texts, max_chars=48):
        self.real_texts, self.max_chars = list(real_texts), max_chars

    def __call__(self, rng):
        if not self.real_texts or rng.random() < 0.5:
            return lines.punctuate(lines.sample_text(rng, "train", self.max_chars), rng)
        return self.real_texts[int(rng.integers(len(self.real_texts)))]


TRAINING_SIZES = (22, 56)  # font sizes (px) of training lines: big enough for detail, small enough to be quick


def _draw_chunk(args):
    """Lines [(framed image, text)] of one chunk; its own seeded generator, so chunks run in any process."""
    import io

    from .framing import LINE_HEIGHT, frame_line
    from .preprocess import line_to_ink

    font_files, count, texts, seed, chunk, photo_share, height = args
    rng = np.random.default_rng([seed, chunk])
    chars = {path: set(lines.CharacterBank.from_font(path).chars()) | {" "} for path in font_files}
    out = []
    for k in range(count):
        path = font_files[(chunk * count + k) % len(font_files)]
        text = texts(rng)
        for _ in range(20):
            if set(text) <= chars[path]:
                break
            text = texts(rng)
        else:
            continue
        image = render_font_line(path, text, rng, TRAINING_SIZES)
        if rng.random() < photo_share:
            photo = photograph(image, image.info["font_size"], rng)
            buffer = io.BytesIO()
            photo.save(buffer, "JPEG", quality=int(rng.integers(40, 92)))
            image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
        ink, found = line_to_ink(np.asarray(image, dtype=np.float32) / 255.0)
        if not found:
            continue
        line = frame_line(ink, height or LINE_HEIGHT)
        need = lines.min_width(text) + 6
        if line.shape[1] < need:
            line = np.pad(line, ((0, 0), (0, need - line.shape[1])))
        out.append((line, text))
    return out


def make_font_line_set(font_files, count, texts, seed=0, photo_share=0.5, height=None, workers=None, chunk=500):
    """`count` lines in the given fonts (paths), framed like a user's picture; a LineSet.

    `texts(rng)` gives each line's text (a picklable callable, e.g. TrainingTexts). A share
    `photo_share` is photographed first (tinted paper, pen colour, uneven light, grain, blur,
    JPEG); the rest are clean scans. A text the font cannot draw is drawn again. Chunks of
    lines are drawn in `workers` processes (default: one per core).
    """
    import os
    from concurrent.futures import ProcessPoolExecutor

    from .framing import LINE_HEIGHT

    font_files = [str(f) for f in font_files]
    jobs = [(font_files, min(chunk, count - start), texts, seed, k, photo_share, height)
            for k, start in enumerate(range(0, count, chunk))]
    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            drawn = [item for part in pool.map(_draw_chunk, jobs) for item in part]
    else:
        drawn = [item for job in jobs for item in _draw_chunk(job)]
    return lines.LineSet.from_images([d[0] for d in drawn], [d[1] for d in drawn], height or LINE_HEIGHT)
