"""Does the model read characters that come from neither MNIST nor EMNIST?

Builds test images that no training file contains, and scores them through the real command
line, `python -m helpers.predict --json`, exactly as a user's files would be:

- digits written by other people and framed another way: MNIST *test* digits (writers disjoint
  from the training writers) cropped, padded and scaled the EMNIST way, dark on light, enlarged;
- characters in handwriting fonts from npm's @fontsource packages (upper case, lower case and
  digits), at random size, position, thickness and slant, once as clean scans and once as
  photographs (tinted paper, uneven light, blur, noise, JPEG);
- characters drawn by a script (`helpers.strokes`), with random wobble and pen width.

None of these fonts or images is used for training or tuning. Run:

    python -m benchmarks.fonts             # once: the fonts, with npm
    python -m benchmarks.generalisation    # writes assets/generalisation.json
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from helpers import data, records, strokes
from helpers.framing import emnist_framing
from helpers.labels import CLASS_NAMES
from helpers.paths import ASSETS, BUILD, PROJECT_DIR
from helpers.preprocess import prepare

from .common import run, score_sets
from .fonts import FONTS, font_paths

GLYPHS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
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


def photograph(image, rng):
    """Make a clean dark-on-white picture look like a phone photo of ink on paper."""
    ink = 1.0 - np.asarray(image, dtype=np.float32) / 255.0
    h, w = ink.shape
    paper = np.array([0.93, 0.92, 0.86]) * rng.uniform(0.8, 1.05) + rng.uniform(-0.04, 0.04, 3)
    pen = [np.array([0.08, 0.1, 0.35]), np.array([0.1, 0.1, 0.12]), np.array([0.25, 0.25, 0.28])][rng.integers(3)]
    rgb = paper[None, None] * (1 - ink[..., None]) + pen[None, None] * ink[..., None]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1 + rng.uniform(-0.25, 0.25) * (xx - 0.5) + rng.uniform(-0.25, 0.25) * (yy - 0.5)
    light -= rng.uniform(0, 0.2) * ((xx - rng.uniform(0.2, 0.8)) ** 2 + (yy - rng.uniform(0.2, 0.8)) ** 2)
    rgb = rgb * light[..., None] + rng.normal(0, rng.uniform(0.005, 0.03), size=rgb.shape)
    photo = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5) * max(h, w) / 200))
    return photo


def save(image, path, rng, jpeg=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if jpeg:
        image.save(path.with_suffix(".jpg"), quality=int(rng.integers(55, 92)))
        return path.with_suffix(".jpg")
    image.save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def build_sets(out, fonts, seed=0, strokes_per_char=12, mnist_digits=2000, root=None):
    """Write every test image under `out`; return {set name: [(path, true label), ...]}."""
    rng = np.random.default_rng(seed)
    sets = {"digits: MNIST test, EMNIST framing": [], "digits: handwriting fonts": [], "digits: script strokes": [],
            "characters: handwriting fonts, clean": [], "characters: handwriting fonts, photographed": [],
            "characters: script strokes": []}
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
        for char in GLYPHS:
            if not glyph_exists(font, char):
                continue
            label = char.upper()
            tag = f"{name}_{'lower' if char.islower() else ''}{char}"
            clean = save(render_glyph(path, char, rng), out / "fonts" / f"{tag}_clean", rng)
            photo = save(photograph(render_glyph(path, char, rng), rng), out / "fonts" / f"{tag}_photo", rng, jpeg=True)
            if char.isdigit():
                sets["digits: handwriting fonts"] += [(clean, label), (photo, label)]
            sets["characters: handwriting fonts, clean"].append((clean, label))
            sets["characters: handwriting fonts, photographed"].append((photo, label))
    for char in CLASS_NAMES:
        for k in range(strokes_per_char):
            canvas = int(rng.integers(64, 400))
            image = strokes.render(strokes.wobbly_strokes(char, rng), canvas=canvas,
                                   width=max(2, int(canvas * rng.uniform(0.03, 0.1))), margin=rng.uniform(0.08, 0.3))
            if k % 3 == 2:
                image = Image.eval(image, lambda v: 255 - v)  # chalk on a blackboard
            path = save(image, out / "strokes" / f"{char}_{k:02d}", rng)
            sets["digits: script strokes" if char.isdigit() else "characters: script strokes"].append((path, char))
    sets["characters: script strokes"] += sets["digits: script strokes"]
    return sets


def prepared_images(seed=0):
    """Every set's images prepared as a user's files are, for scoring models in memory.

    Returns (images float (N, 28, 28), labels, set names, set index of each image); cached in build/.
    """
    cache = BUILD / f"generalisation-prepared-{seed}.npz"  # delete it after changing `build_sets`
    if not cache.exists():
        sets = build_sets(IMAGES_DIR, font_paths(), seed=seed)
        items = [(path, label, g) for g, paths in enumerate(sets.values()) for path, label in paths]
        np.savez(cache, images=np.stack([prepare(path).image for path, _, _ in items]),
                 labels=np.array([CLASS_NAMES.index(label) for _, label, _ in items]),
                 names=np.array(list(sets)), groups=np.array([g for _, _, g in items]))
    z = np.load(cache, allow_pickle=False)
    return z["images"], z["labels"], [str(n) for n in z["names"]], z["groups"]


def predict_json(paths, checkpoint=None):
    """Run the real command line in batches; returns {path: prediction dict}."""
    out = {}
    for start in range(0, len(paths), 500):
        cmd = [sys.executable, "-m", "helpers.predict", "--json", *map(str, paths[start : start + 500])]
        if checkpoint:
            cmd += ["--checkpoint", str(checkpoint)]
        result = subprocess.run(cmd, cwd=PROJECT_DIR, capture_output=True, text=True)
        for line in result.stdout.splitlines():
            record = json.loads(line)
            out[record["path"]] = record
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=IMAGES_DIR)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--json", type=Path, default=ASSETS / "generalisation.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    fonts = font_paths()
    if args.out.exists():
        shutil.rmtree(args.out)
    sets = build_sets(args.out, fonts, seed=args.seed)
    items = [(str(path), label, g) for g, paths in enumerate(sets.values()) for path, label in paths]
    started = time.perf_counter()
    predictions = predict_json(sorted({path for path, _, _ in items}), args.checkpoint)
    seconds = time.perf_counter() - started
    # The command's answers as class indices (-1 where it gave none), scored like any model.
    pred = [CLASS_NAMES.index(predictions[path]["label"]) if path in predictions else -1 for path, _, _ in items]
    labels = [CLASS_NAMES.index(label) for _, label, _ in items]
    results = score_sets(pred, labels, list(sets), [g for _, _, g in items])
    for name, r in results.items():
        print(f"{name:48s} {r['images']:6d} images  strict {r['strict_acc']:6.2f}%  "
              f"look-alikes ok {r['tolerant_acc']:6.2f}%")
    print(f"{len(predictions)} of {len({p for p, _, _ in items})} images answered by the predict command "
          f"in {seconds:.1f} s")
    if args.json:
        payload = {"seed": args.seed, "fonts": FONTS, "checkpoint": args.checkpoint or "default",
                   "predict_seconds": round(seconds, 1), "results": results}
        records.write(args.json.name, payload, folder=args.json.parent)
    return results


if __name__ == "__main__":
    run(main)
