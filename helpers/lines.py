"""Synthetic handwritten lines: text, and character images placed as in handwriting.

Real handwritten lines are few (`real_lines`), so the reader also learns from lines made of
single characters: text from the `wordfreq` word list (installed with pip, nothing downloaded
at run time), each character a random EMNIST ByClass or MNIST image of its class. Unlike the
"EMNIST Lines" recipe of Full Stack Deep Learning (every character the same size, neighbours
overlapping, a space a blank image), the characters keep the SIZE and PLACE they have in
handwriting: capitals, digits and ascenders reach cap height, x-height letters about 0.6 of
it, descenders hang below the baseline. That is what lets the neighbours tell o from O and 0.

Every line, synthetic, drawn in a font, real or a user's photo, is then framed the same way
(`framing.frame_line`). `LineSet` keeps framed lines compactly for training and reading.
"""

import functools
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from . import alphabet
from .errors import HCRError
from .framing import INK_THRESHOLD, LINE_HEIGHT, frame_line, grow, stroke_width
from .labels import CASE_CLASS_NAMES

# --- The alphabet (helpers/alphabet.py) and the line height (framing.LINE_HEIGHT) -------------

ALPHABET, BLANK, NUM_CTC_CLASSES = alphabet.ALPHABET, alphabet.BLANK, alphabet.NUM_CTC_CLASSES
encode, decode = alphabet.encode, alphabet.decode
HEIGHT = LINE_HEIGHT


# --- Text ------------------------------------------------------------------------------------------

WORDS = 30_000  # how many of the most frequent English words wordfreq gives
TEST_ONE_IN = 10  # one word in ten (by a stable hash) is held out of all training text
FREQUENCY_POWER = 0.6  # sample words by frequency**0.6: common words often, rare ones too
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
PLACES = ("room", "flat", "gate", "platform", "bus", "seat", "floor", "row", "table", "box", "line", "door",
          "page", "route", "level", "unit", "block", "house")
UNITS = ("euro", "euros", "dollars", "pounds", "pence", "cents", "km", "kg", "min", "am", "pm", "items", "days")
SPLITS = ("train", "test")


def is_test_word(word):
    """True for the words held out of the training text: a stable hash, the same on every machine."""
    return zlib.crc32(word.lower().encode()) % TEST_ONE_IN == 0


def in_split(word, split):
    return is_test_word(word) == (split == "test")


@functools.cache
def vocabulary(split, language="en"):
    """(words, cumulative weights, {length: (words, cumulative weights)}) of one split, alphabetic words
    only; English unless told (the beam search's language model also counts French words)."""
    if split not in SPLITS:
        raise HCRError(f"split={split!r} is unknown: use 'train' or 'test'.")
    try:
        import wordfreq
    except ImportError:
        raise HCRError("The word list is missing: run `pip install wordfreq==3.1.1` "
                       "(or `pip install -r requirements.txt`).") from None
    words = [w for w in wordfreq.top_n_list(language, WORDS)
             if w.isalpha() and (w.isascii() if language == "en" else all(c in ALPHABET for c in w))
             and in_split(w, split)]
    weights = np.array([wordfreq.word_frequency(w, language) for w in words]) ** FREQUENCY_POWER
    by_length = {}
    for n in range(1, 20):
        pick = [i for i, w in enumerate(words) if len(w) == n]
        if pick:
            by_length[n] = ([words[i] for i in pick], _cumulative(weights[pick]))
    return words, _cumulative(weights), by_length


def _cumulative(weights):
    c = np.cumsum(weights)
    return c / c[-1]


def _draw(rng, cumulative):
    """An index drawn with the given cumulative weights (much faster than rng.choice(p=...))."""
    return min(int(np.searchsorted(cumulative, rng.random(), side="right")), len(cumulative) - 1)


def _word(rng, split, room, fill=True):
    """A word of at most `room` characters, drawn by frequency; None if none came and not `fill`.

    `fill` picks a length that fits when the drawn words are too long (for the first word of
    a short line only: filling every line to the brim would end many with "a" or "o").
    """
    words, weights, by_length = vocabulary(split)
    for _ in range(4):
        word = words[_draw(rng, weights)]
        if len(word) <= room:
            return word
    if not fill:
        return None
    lengths = [n for n in by_length if n <= room]
    if not lengths:
        return None
    n = lengths[rng.integers(len(lengths))]
    options, p = by_length[n]
    return options[_draw(rng, p)]


def _split_words(words, split):
    return [w for w in words if in_split(w, split)]


def _with_unit(words, units, rng):
    """Three times in ten, a unit word after the number ("10 30 am", "4 50 euros")."""
    if units and rng.random() < 0.3:
        words.append(units[rng.integers(len(units))])
    return words


def _digits(rng, low, high):
    return str(int(rng.integers(low, high + 1)))


def _code(rng):
    """Letters and digits mixed, always with a digit: B12, A4, 3F, SW1A 2AA, X7K2."""
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    kind = rng.integers(5)
    if kind == 0:
        return [letters[rng.integers(len(letters))] + _digits(rng, 1, 99)]
    if kind == 1:
        return [_digits(rng, 1, 99) + letters[rng.integers(len(letters))]]
    if kind == 2:  # a postcode
        first = "".join(rng.choice(list(letters), size=rng.integers(1, 3))) + _digits(rng, 1, 20)
        return [first, _digits(rng, 1, 9) + "".join(rng.choice(list(letters), size=2))]
    n = int(rng.integers(2, 6))
    chars = [rng.choice(list(letters + "0123456789")) for _ in range(n)]
    chars[rng.integers(n)] = str(rng.integers(10))
    if kind == 4:
        chars = [c.lower() if c.isalpha() and rng.random() < 0.5 else c for c in chars]
    return ["".join(chars)]


def _number(rng, split):
    """Dates, times, room numbers, prices without symbols, codes, years and plain numbers."""
    months = _split_words(MONTHS, split)
    places = _split_words(PLACES, split)
    units = _split_words(UNITS, split)
    kind = rng.choice(["date", "time", "place", "price", "code", "year", "number", "phone"],
                      p=[0.17, 0.12, 0.14, 0.12, 0.15, 0.1, 0.15, 0.05])
    day = f"{rng.integers(1, 32):0{rng.integers(1, 3)}d}"
    if kind == "date":
        month = f"{rng.integers(1, 13):02d}"
        year = _digits(rng, 1950, 2035) if rng.random() < 0.7 else f"{rng.integers(0, 100):02d}"
        if months and rng.random() < 0.4:
            name = months[rng.integers(len(months))]
            name = name[:3] if rng.random() < 0.3 and in_split(name[:3], split) else name
            return [day, name.capitalize()] + ([year] if rng.random() < 0.6 else [])
        return [day, month, year] if rng.random() < 0.8 else [day, month]
    if kind == "time":
        return _with_unit([_digits(rng, 0, 23), f"{rng.integers(0, 60):02d}"], units, rng)
    if kind == "place":
        number = _digits(rng, 1, 999) if rng.random() < 0.7 else _code(rng)[0]
        return [places[rng.integers(len(places))].capitalize(), number] if places else [number]
    if kind == "price":
        return _with_unit([_digits(rng, 0, 999), f"{rng.integers(0, 100):02d}"], units, rng)
    if kind == "code":
        return _code(rng)
    if kind == "year":
        return [_digits(rng, 1900, 2040)]
    if kind == "phone":
        return [f"0{rng.integers(100, 10000)}", _digits(rng, 100, 999), f"{rng.integers(0, 10000):04d}"]
    return [_digits(rng, 0, 10 ** int(rng.integers(1, 5)))]


CASES = ("lower", "sentence", "title", "upper")
CASE_WEIGHTS = (0.35, 0.3, 0.15, 0.2)


def _cased(tokens, style, rng):
    """Apply a case style to the alphabetic words (numbers and codes are left as they are)."""
    out = []
    for n, token in enumerate(tokens):
        if not token.isalpha():
            out.append(token)
        elif style == "upper":
            out.append(token.upper())
        elif style == "title" or (style == "sentence" and (n == 0 or token[0].isupper() or rng.random() < 0.08)):
            out.append(token.capitalize())  # sentence case keeps months and places, and adds a few names
        elif token == "i" and rng.random() < 0.7:
            out.append("I")
        else:
            out.append(token.lower())
    return out


def sample_text(rng, split="train", max_chars=32):
    """One line of text, 1..max_chars characters of the alphabet, words from one split only.

    Words are drawn by frequency (softened, so that rare words come too), in one of four case
    styles, with numbers mixed in: dates, times, room numbers, prices, codes and years.
    """
    target = int(rng.integers(1, max_chars + 1))
    number_share = rng.choice([0.0, 0.25, 0.6], p=[0.45, 0.4, 0.15])
    tokens, length = [], -1
    while target - length - 1 >= 1:
        room = target - length - 1
        piece = None
        if rng.random() < number_share:
            piece = _number(rng, split)
            if len(" ".join(piece)) > room:
                piece = None
        if piece is None:
            word = _word(rng, split, room, fill=not tokens)
            if word is None:
                break
            piece = [word]
        tokens += piece
        length += 1 + len(" ".join(piece))
    if not tokens:
        tokens = [str(rng.integers(10))]
    style = CASES[rng.choice(len(CASES), p=CASE_WEIGHTS)]
    return " ".join(_cased(tokens, style, rng))


AFTER_WORD = (",", ",", ",", ".", ";", ":", "!", "?")  # marks that follow a word, by how often people write them


def punctuate(text, rng, share=0.3):
    """Text with the punctuation of real sentences: marks after words, a closing mark, quotes,
    brackets, hyphens and apostrophes (the reader's alphabet has them; the word list has none)."""
    words = text.split(" ")
    out = []
    for k, word in enumerate(words):
        r = rng.random()
        if r < share * 0.08 and word.isalpha():
            word = f'"{word}"' if rng.random() < 0.5 else f"({word})"
        elif r < share * 0.14 and word.isalpha() and len(word) > 2:
            word = word[: len(word) // 2] + "-" + word[len(word) // 2 :] if rng.random() < 0.3 else f"{word}'s"
        elif r < share * 0.2 and word.isalpha() and k + 1 < len(words):
            word = word + rng.choice(["-", " /", " &", " -"])
        if k + 1 < len(words) and rng.random() < share * 0.5:
            word += AFTER_WORD[rng.integers(len(AFTER_WORD))]
        out.append(word)
    if rng.random() < share * 2:
        out[-1] += rng.choice([".", ".", ".", "!", "?", ":"])
    return " ".join(out)


# --- Character images --------------------------------------------------------------------------

CAP = 40  # cap height (px) of the glyphs in a CharacterBank; lines are drawn at this scale
PEN = 0.12  # pen width as a share of the cap height, before the line's own thickness is chosen
X_HEIGHT = 0.62  # x-height letters: a c e m n o r s u v w x z
DESCENT = 0.36  # descenders (g j p q y) go this far below the baseline
ASCENDERS, X_LETTERS, DESCENDERS = "bdfhklt", "acemnorsuvwxz", "gpqy"


def extent(char):
    """(top, bottom) of a character relative to the baseline, in cap heights (up is positive)."""
    if char.isupper() or char.isdigit():
        return 1.0, 0.0
    if char in ASCENDERS:
        return (0.88 if char == "t" else 1.02), 0.0
    if char == "i":
        return X_HEIGHT + 0.3, 0.0
    if char == "j":
        return X_HEIGHT + 0.3, -DESCENT
    if char in DESCENDERS:
        return X_HEIGHT, -DESCENT
    return X_HEIGHT, 0.0


def _crop(image, threshold=INK_THRESHOLD):
    rows = np.flatnonzero((image >= threshold).any(axis=1))
    cols = np.flatnonzero((image >= threshold).any(axis=0))
    if rows.size == 0:
        return None
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _erode(mask):
    """Binary erosion by a 3x3 cross (outside the picture is background): numpy only, fast."""
    out = np.zeros_like(mask)
    out[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return out


def _disk(radius):
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return xx**2 + yy**2 <= radius**2


def _pen_shape(grey, height, width, pen):
    """A grey glyph as a binary pen shape of the given size whose strokes are about `pen` px wide
    (`pen=None`: strokes as they are)."""
    from scipy import ndimage

    big = np.asarray(Image.fromarray(grey.astype(np.float32), mode="F").resize((width, height),
                                                                                Image.Resampling.BILINEAR))
    shape = big >= 0.5
    if not shape.any() or pen is None:
        return shape if shape.any() else None
    width_now = stroke_width(shape)
    if width_now < pen - 1.5:  # thin strokes (small letters, thin pens) are widened to the pen
        radius = int(round((pen - width_now) / 2))
        shape = ndimage.binary_dilation(np.pad(shape, radius), structure=_disk(radius))[radius:-radius, radius:-radius]
    elif width_now > pen + 2.5:  # very thick strokes are thinned, unless that breaks the shape
        thinner = ndimage.binary_erosion(shape)
        if thinner.sum() > 0.5 * shape.sum():
            shape = thinner
    return shape


@dataclass
class Glyph:
    """One character image as a binary pen shape, and where the baseline runs through it."""

    shape: np.ndarray  # bool (h, w)
    baseline: int  # row of the baseline (may lie below the shape for i, or inside it for g)


class CharacterBank:
    """Character images by class (the 62 of `labels.CASE_CLASS_NAMES`), sized as in handwriting.

    Build it from ONE split of the data: training lines from training images, test lines from
    test images. Each image is cropped to its ink and scaled so that its class reaches the
    height it has in handwriting (`extent`), at cap height CAP, as a binary pen shape.
    """

    def __init__(self, glyphs):
        self.glyphs = glyphs  # {char: [Glyph, ...]}
        self.raw = {}  # {char: uint8 (n, 28, 28)}: the images as they were, for the FSDL-style lines

    def __len__(self):
        return sum(len(v) for v in self.glyphs.values())

    def chars(self):
        return "".join(ch for ch in ALPHABET[1:] if self.glyphs.get(ch))

    @classmethod
    def from_images(cls, images, labels, per_class=None, seed=0):
        """From dataset images (uint8 (N, 28, 28), upright, bright on black) and labels 0..61."""
        rng = np.random.default_rng(seed)
        images, labels = np.asarray(images), np.asarray(labels)
        glyphs, raw = {}, {}
        for k, char in enumerate(CASE_CLASS_NAMES):
            index = np.flatnonzero(labels == k)
            if per_class is not None and len(index) > per_class:
                index = np.sort(rng.choice(index, per_class, replace=False))
            top, bottom = extent(char)
            height = max(4, round((top - bottom) * CAP))
            out = []
            for image in images[index]:
                crop = _crop(image.astype(np.float32) / 255.0)
                if crop is None:
                    continue
                aspect = float(np.clip(crop.shape[1] / crop.shape[0], 0.08, 2.5))
                shape = _pen_shape(crop, height, max(2, round(height * aspect)), PEN * CAP)
                if shape is not None:
                    out.append(Glyph(shape, round(top * CAP)))
            glyphs[char] = out
            raw[char] = images[index]
        bank = cls(glyphs)
        bank.raw = raw
        return bank

    @classmethod
    def from_font(cls, font, chars=None, sizes=(CAP,)):
        """One font's glyphs (a TTF/WOFF2 path, or a function size -> PIL font) on the font's baseline.

        Characters the font lacks (it would draw a box) are left out.
        """
        from PIL import ImageFont

        def load(size):
            return font(size) if callable(font) else ImageFont.truetype(str(font), size)

        glyphs = {ch: [] for ch in (chars or ALPHABET[1:])}
        for size in sizes:
            face = load(size * 2)
            scale = CAP / _cap_height(face)
            box = np.asarray(_draw_char(face, "\U000f0000", size))
            for char in glyphs:
                ink = _draw_char(face, char, size)
                rows = np.flatnonzero((ink >= 0.5).any(axis=1))
                if rows.size == 0 or np.array_equal(ink, box):
                    continue
                crop = _crop(ink, 0.5)
                height, width = max(2, round(crop.shape[0] * scale)), max(2, round(crop.shape[1] * scale))
                shape = _pen_shape(crop, height, width, None)  # a font's own pen
                if shape is not None:
                    glyphs[char].append(Glyph(shape, round((size * 5 - rows[0]) * scale)))
        return cls(glyphs)


def _draw_char(font, char, size):
    """A character drawn white on black with its baseline at row 5*size (float array)."""
    from PIL import ImageDraw

    image = Image.new("L", (size * 8, size * 8), 0)
    ImageDraw.Draw(image).text((size * 2, size * 5), char, font=font, fill=255, anchor="ls")
    return np.asarray(image, dtype=np.float32) / 255.0


def _cap_height(font):
    from PIL import ImageDraw

    image = Image.new("L", (400, 400), 0)
    ImageDraw.Draw(image).text((50, 300), "H", font=font, fill=255, anchor="ls")
    rows = np.flatnonzero((np.asarray(image) >= 128).any(axis=1))
    return max(1, 300 - rows[0]) if rows.size else font.size * 0.7


def load_bank(train=True, root=None, per_class=None, seed=0):
    """A CharacterBank of EMNIST ByClass (with case) and MNIST digits of one split."""
    from . import data

    emnist = data.load_emnist_byclass(train, root)
    mnist = data.load_mnist(train, root)
    images = np.concatenate([emnist.images.numpy(), mnist.images.numpy()])
    labels = np.concatenate([emnist.labels.numpy(), mnist.labels.numpy()])
    return CharacterBank.from_images(images, labels, per_class=per_class, seed=seed)


# --- Drawing a line ----------------------------------------------------------------------------

STYLES = ("handwriting", "fsdl")


def _resize_nearest(shape, height, width):
    rows = (np.arange(height) * shape.shape[0] / height).astype(np.intp)
    cols = (np.arange(width) * shape.shape[1] / width).astype(np.intp)
    return shape[rows[:, None], cols]


def render_line(text, bank, rng, style="handwriting"):
    """Draw `text` with the bank's character images; float32 bright ink on black, any size.

    "handwriting": sizes and baselines as in handwriting, with a wandering baseline, letters
    close together (sometimes touching), wider and uneven word gaps, a random pen width and
    sometimes a slant. "fsdl": the EMNIST Lines recipe, for comparison (every character the
    same 28x28 box, neighbours overlapping by a random share, a space a blank box).
    """
    if style == "fsdl":
        return _render_fsdl(text, bank, rng)
    if style != "handwriting":
        raise HCRError(f"style={style!r} is unknown: use one of {', '.join(STYLES)}.")
    cap = CAP
    x_scale = rng.uniform(0.85, 1.12)  # this writer's x-height against the cap height
    letter_gap = rng.uniform(-0.06, 0.14) * cap
    word_gap = rng.uniform(0.3, 0.75) * cap
    pieces = []
    x = 0.0
    for char in text:
        if char == " ":
            x += word_gap * rng.uniform(0.7, 1.3)
            continue
        options = bank.glyphs.get(char)
        if not options:
            raise HCRError(f"The character bank has no image of {char!r}: build it from data that holds every class.")
        glyph = options[rng.integers(len(options))]
        size = rng.uniform(0.9, 1.1) * (x_scale if char in X_LETTERS or char in DESCENDERS else 1.0)
        h = max(2, round(glyph.shape.shape[0] * size))
        w = max(2, round(glyph.shape.shape[1] * size * rng.uniform(0.88, 1.12)))
        shape = _resize_nearest(glyph.shape, h, w)
        # Narrow letters (i, l, 1) still take some room, as they do when written.
        pad = max(0.0, 0.22 * cap - w) / 2
        x += pad
        pieces.append((shape, x, glyph.baseline * size))
        x += w + pad + letter_gap + rng.normal(0, 0.03 * cap)
    if not pieces:
        return np.zeros((HEIGHT, HEIGHT), np.float32)
    width = int(x + 2 * cap)
    height = int(3 * cap)
    canvas = np.zeros((height, width), bool)
    drift = rng.uniform(0, 0.08 * cap), rng.uniform(150, 600), rng.uniform(0, 2 * np.pi)
    slope = rng.uniform(-0.02, 0.02)
    for shape, left, above in pieces:
        base = 2 * cap + drift[0] * np.sin(left / drift[1] + drift[2]) + slope * left + rng.normal(0, 0.025 * cap)
        top, col = int(round(base - above)), int(round(left + cap // 2))
        h, w = shape.shape
        top = min(max(top, 0), height - h)
        np.logical_or(canvas[top : top + h, col : col + w], shape, out=canvas[top : top + h, col : col + w])
    rows = np.flatnonzero(canvas.any(axis=1))
    pad = cap // 4  # room for the slant and the thicker pen; the rest of the canvas is empty
    canvas = canvas[max(rows[0] - pad, 0) : rows[-1] + pad + 1, : int(x + cap)]
    canvas = _pen_width(canvas, rng)
    return _slant(canvas, rng)


def _pen_width(canvas, rng):
    """A thinner or thicker pen for the whole line: one pixel less or more all round."""
    choice = rng.random()
    if choice < 0.25:
        thinner = _erode(canvas)
        return thinner if thinner.sum() > 0.45 * canvas.sum() else canvas
    if choice < 0.55:
        return grow(canvas)
    if choice < 0.65:
        return grow(grow(canvas))
    return canvas


def _slant(canvas, rng):
    """Sometimes slant (shear) the line and turn it a little; returns float32 in [0, 1]."""
    image = Image.fromarray(canvas.astype(np.uint8) * 255)
    if rng.random() < 0.6:
        shear = rng.uniform(-0.15, 0.35) if rng.random() < 0.8 else 0.0
        angle = np.deg2rad(rng.uniform(-2, 2))
        h, w = canvas.shape
        cos, sin = np.cos(angle), np.sin(angle)
        # output (x, y) -> input: rotate about the centre, then shear around the middle row
        cx, cy = w / 2, h / 2
        a, b = cos, -sin + shear
        d, e = sin, cos
        c = cx - a * cx - b * cy
        f = cy - d * cx - e * cy
        image = image.transform((w, h), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def _render_fsdl(text, bank, rng):
    size = 28
    overlap = rng.uniform(0, 0.33)
    step = size - int(overlap * size)
    canvas = np.zeros((size, step * len(text) + size), np.float32)
    for n, char in enumerate(text):
        if char == " ":
            continue
        raw = bank.raw.get(char)
        if raw is None or not len(raw):
            raise HCRError(f"The character bank has no image of {char!r}: build it with CharacterBank.from_images.")
        image = raw[rng.integers(len(raw))].astype(np.float32) / 255.0
        np.maximum(canvas[:, n * step : n * step + size], image, out=canvas[:, n * step : n * step + size])
    return canvas


# --- Line sets ----------------------------------------------------------------------------------


@dataclass
class LineSet:
    """Framed lines kept side by side in one uint8 strip (height, total width), and their text.

    Compact (a line of 32 characters is about 16 kB) and quick to batch: `batch` pads only to
    the widest line of the batch.
    """

    pixels: torch.Tensor  # uint8 (height, sum of widths)
    starts: torch.Tensor  # int64 (N,): where each line begins in `pixels`
    widths: torch.Tensor  # int64 (N,)
    texts: list
    groups: list = None  # where each line comes from (real lines: the collection), for per-collection scores

    def __len__(self):
        return len(self.texts)

    def image(self, i):
        """Line i as float32 (height, width) in [0, 1]."""
        s, w = int(self.starts[i]), int(self.widths[i])
        return self.pixels[:, s : s + w].float().numpy() / 255.0

    def batch(self, index, with_targets=True):
        """(images float (B, 1, HEIGHT, max width), widths, targets concatenated, target lengths)."""
        index = [int(i) for i in index]
        widths = self.widths[index]
        x = torch.zeros(len(index), 1, self.height, int(widths.max()), dtype=torch.uint8)
        for row, i in enumerate(index):
            s, w = int(self.starts[i]), int(self.widths[i])
            x[row, 0, :, :w] = self.pixels[:, s : s + w]
        if not with_targets:
            return x.float().div_(255.0), widths, None, None
        codes = [encode(self.texts[i]) for i in index]
        targets = torch.tensor([c for code in codes for c in code], dtype=torch.long)
        lengths = torch.tensor([len(c) for c in codes], dtype=torch.long)
        return x.float().div_(255.0), widths, targets, lengths

    @property
    def height(self):
        return int(self.pixels.shape[0])

    @staticmethod
    def from_images(images, texts, height=None):
        """From float (height, w) images in [0, 1], all of one height, and their texts."""
        widths = torch.tensor([im.shape[1] for im in images], dtype=torch.long)
        starts = torch.cumsum(widths, 0) - widths
        strip = np.concatenate([np.rint(np.clip(im, 0, 1) * 255).astype(np.uint8) for im in images], axis=1) \
            if images else np.zeros((height or HEIGHT, 0), np.uint8)
        return LineSet(torch.from_numpy(strip), starts, widths, list(texts))

    def save(self, path):
        """Keep the set in one .npz file (pixels, widths and texts), to skip drawing it next time."""
        import json

        np.savez(path, pixels=self.pixels.numpy(), widths=self.widths.numpy(), texts=np.array(json.dumps(self.texts)))

    @staticmethod
    def load(path):
        import json

        with np.load(path, allow_pickle=False) as stored:
            widths = torch.from_numpy(stored["widths"].astype(np.int64))
            return LineSet(torch.from_numpy(stored["pixels"].copy()), torch.cumsum(widths, 0) - widths, widths,
                           json.loads(str(stored["texts"])))

    def resized(self, height):
        """The same lines scaled to another height (keeping each line's aspect)."""
        images = []
        for i in range(len(self)):
            image = Image.fromarray(self.pixels[:, int(self.starts[i]) : int(self.starts[i] + self.widths[i])].numpy())
            width = max(height, round(image.width * height / self.height))
            images.append(np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=2.0),
                                     dtype=np.float32) / 255.0)
        return LineSet.from_images(images, self.texts, height)

    @staticmethod
    def concat(sets):
        """One LineSet of several (of one height)."""
        sets = [s for s in sets if len(s)]
        pixels = torch.cat([s.pixels for s in sets], dim=1)
        widths = torch.cat([s.widths for s in sets])
        return LineSet(pixels, torch.cumsum(widths, 0) - widths, widths, [t for s in sets for t in s.texts])


def min_width(text, stride=4):
    """Narrowest line (px) in which CTC can place `text`: one frame per character, one more per repeat."""
    repeats = sum(a == b for a, b in zip(text, text[1:]))
    return stride * (len(text) + repeats)


def make_line(text, bank, rng, style="handwriting", stride=4, height=LINE_HEIGHT):
    """One synthetic line, framed like a user's, at least wide enough for CTC to read `text`."""
    line = frame_line(render_line(text, bank, rng, style), height)
    need = min_width(text, stride) + 6
    if line.shape[1] < need:
        line = np.pad(line, ((0, 0), (0, need - line.shape[1])))
    return line


def _text_for(bank, rng, split, max_chars, tries=1000):
    """A sample text that the bank can draw (a small bank, or a font, may lack a class)."""
    chars = set(bank.chars())
    for _ in range(tries):
        text = sample_text(rng, split, max_chars)
        if set(text) - {" "} <= chars:
            return text
    missing = "".join(sorted(set(ALPHABET[1:]) - chars))
    raise HCRError(f"The character bank lacks {missing!r}: build it from data that holds every class.")


def make_line_set(bank, count, split="train", seed=0, max_chars=32, style="handwriting", progress=False,
                  font_banks=(), font_share=0.0, height=LINE_HEIGHT):
    """`count` synthetic lines: text from `split`'s words, drawn with `bank` (build it from the same split).

    With `font_banks` (one CharacterBank per font, `CharacterBank.from_font`), a share
    `font_share` of the lines is written in one of those fonts instead, a whole line per font.
    """
    rng = np.random.default_rng([seed, SPLITS.index(split) if split in SPLITS else 0])
    texts, images = [], []
    iterator = range(count)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"{split} lines", leave=False, unit="line")
    for _ in iterator:
        source = bank
        if font_banks and rng.random() < font_share:
            source = font_banks[rng.integers(len(font_banks))]
        text = _text_for(source, rng, split, max_chars)
        texts.append(text)
        images.append(make_line(text, source, rng, style if source is bank else "handwriting", height=height))
    return LineSet.from_images(images, texts, height)
