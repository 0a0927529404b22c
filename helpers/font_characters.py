"""Characters from elsewhere: test images that no training file contains, built on disk.

- digits written by other people and framed another way: MNIST *test* digits (writers disjoint
  from the training writers) cropped, padded and scaled the EMNIST way, dark on light, enlarged;
- characters in handwriting fonts from npm's @fontsource packages (upper case, lower case and
  digits), at random size, position, thickness and slant, once as clean scans and once as
  photographs (tinted paper, uneven light, blur, noise, JPEG);
- characters drawn by a script (`helpers.strokes`), with random wobble and pen width.

The fonts are split into dev fonts (which may choose a class bias) and held-out fonts (which
choose nothing): see `helpers.fonts`. `prepared_images` gives every set prepared as a user's file
is, for scoring models in memory; `benchmarks.generalisation` scores the files through the
command line instead.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import data, strokes
from .errors import HCRError
from .fonts import HELD_OUT_FONTS, font_paths
from .framing import emnist_framing
from .labels import CASE_CLASS_NAMES, CLASS_NAMES
from .paths import BUILD
from .preprocess import prepare

GLYPHS = "".join(CASE_CLASS_NAMES)
SET_NAMES = ("digits: MNIST test, EMNIST framing", "dev fonts, clean", "dev fonts, photographed",
             "held-out fonts, clean", "held-out fonts, photographed", "script strokes")
IMAGES_DIR = BUILD / "generalisation"


def glyph_exists(font, char):
    """Fonts draw a box for characters they lack; compare with a certainly-missing one."""
    def draw(c):
        im = Image.new("L", (200, 200), 255)
        ImageDraw.Draw(im).text((100, 100), c, font=font, fill=0, anchor="mm")
        return np.asarray(im)
    return not np.array_equal(draw(char), draw("\U000f0000")) and draw(char).min() < 128


def render_glyph(font_path, char, rng):
    """One character in a font on white paper, at a random size, place, thickness and slant."""
    size = int(rng.integers(48, 160))
    font = ImageFont.truetype(str(font_path), size)
    canvas = int(size * rng.uniform(1.6, 2.6))
    image = Image.new("L", (canvas, canvas), 255)
    draw = ImageDraw.Draw(image)
    offset = rng.uniform(-0.12, 0.12, size=2) * canvas
    stroke = int(rng.integers(0, max(1, size // 28) + 1))
    draw.text((canvas / 2 + offset[0], canvas / 2 + offset[1]), char, font=font, fill=0, anchor="mm",
              stroke_width=stroke, stroke_fill=0)
    return image.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BICUBIC, fillcolor=255)


def save(image, path, rng, jpeg=False):
    """Write a test image as PNG, or as JPEG at a random quality; returns the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if jpeg:
        image.save(path.with_suffix(".jpg"), quality=int(rng.integers(55, 92)))
        return path.with_suffix(".jpg")
    image.save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def build_sets(out, fonts, seed=0, strokes_per_char=12, mnist_digits=2000, root=None):
    """Write every test image under `out`; return {set name: [(path, true character), ...]}.

    The true character keeps its case ("a" is a small a); a 36-class model is scored on its
    capital.
    """
    rng = np.random.default_rng(seed)
    sets = {name: [] for name in SET_NAMES}
    # Digits by writers outside the training set, framed the EMNIST way, dark on light and enlarged.
    test = data.load_mnist(train=False, root=root)
    pick = rng.choice(len(test), size=min(mnist_digits, len(test)), replace=False)
    for n, (img, y) in enumerate(zip(emnist_framing(test.images[pick].numpy()), test.labels[pick].tolist())):
        big = Image.fromarray(255 - img).resize((112, 112), Image.Resampling.BICUBIC)
        label = CLASS_NAMES[y]
        path = save(big, out / "mnist-emnist" / f"{n:05d}_{label}", rng)
        sets["digits: MNIST test, EMNIST framing"].append((path, label))
    for name, path in fonts.items():
        font = ImageFont.truetype(str(path), 100)
        part = "held-out fonts" if name in HELD_OUT_FONTS else "dev fonts"
        for char in GLYPHS:
            if not glyph_exists(font, char):
                continue
            tag = f"{name}_{'lower' if char.islower() else ''}{char}"
            clean = save(render_glyph(path, char, rng), out / "fonts" / f"{tag}_clean", rng)
            photo = strokes.fake_photo(render_glyph(path, char, rng), rng)
            photo = save(photo, out / "fonts" / f"{tag}_photo", rng, jpeg=True)
            sets[f"{part}, clean"].append((clean, char))
            sets[f"{part}, photographed"].append((photo, char))
    for char in CLASS_NAMES:
        for k in range(strokes_per_char):
            canvas = int(rng.integers(64, 400))
            image = strokes.render(strokes.wobbly_strokes(char, rng), canvas=canvas,
                                   width=max(2, int(canvas * rng.uniform(0.03, 0.1))), margin=rng.uniform(0.08, 0.3))
            if k % 3 == 2:
                image = Image.eval(image, lambda v: 255 - v)  # chalk on a blackboard
            sets["script strokes"].append((save(image, out / "strokes" / f"{char}_{k:02d}", rng), char))
    return sets


def _cache(seed):
    return BUILD / f"generalisation-prepared-case-{seed}.npz"  # delete it after changing `build_sets`


def unavailable(seed=0):
    """None when the prepared images can be had (cached, or fonts installed); else the one sentence why not."""
    if _cache(seed).exists():
        return None
    try:
        font_paths()
    except HCRError as error:
        return str(error)
    return None


def prepared_images(seed=0):
    """Every set's images prepared as a user's files are, for scoring models in memory.

    Returns (images float (N, 28, 28), labels 0..61 in CASE_CLASS_NAMES order, set names, set
    index of each image); cached in build/.
    """
    cache = _cache(seed)
    if not cache.exists():
        sets = build_sets(IMAGES_DIR, font_paths(), seed=seed)
        items = [(path, label, g) for g, paths in enumerate(sets.values()) for path, label in paths]
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=np.stack([prepare(path).image for path, _, _ in items]),
                 labels=np.array([CASE_CLASS_NAMES.index(label) for _, label, _ in items]),
                 names=np.array(list(sets)), groups=np.array([g for _, _, g in items]))
    z = np.load(cache, allow_pickle=False)
    return z["images"], z["labels"], [str(n) for n in z["names"]], z["groups"]
