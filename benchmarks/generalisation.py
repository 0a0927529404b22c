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
from PIL import Image, ImageDraw, ImageFont

from helpers import data, records, strokes
from helpers.framing import emnist_framing
from helpers.labels import CASE_CLASS_NAMES, CLASS_NAMES
from helpers.paths import ASSETS, BUILD, PROJECT_DIR
from helpers.preprocess import prepare

from .common import run, score_sets
from .fonts import DEV_FONTS, FONTS, HELD_OUT_FONTS, font_paths

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
    path.parent.mkdir(parents=True, exist_ok=True)
    if jpeg:
        image.save(path.with_suffix(".jpg"), quality=int(rng.integers(55, 92)))
        return path.with_suffix(".jpg")
    image.save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def build_sets(out, fonts, seed=0, strokes_per_char=12, mnist_digits=2000, root=None):
    """Write every test image under `out`; return {set name: [(path, true character), ...]}.

    The true character keeps its case ("a" is a small a); a 36-class model is scored on its
    capital. Fonts are split into dev fonts (which may be used to choose things, such as a
    prior) and held-out fonts (never used to choose anything): see `benchmarks.fonts`.
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


def prepared_images(seed=0):
    """Every set's images prepared as a user's files are, for scoring models in memory.

    Returns (images float (N, 28, 28), labels 0..61 in CASE_CLASS_NAMES order, set names, set
    index of each image); cached in build/.
    """
    cache = BUILD / f"generalisation-prepared-case-{seed}.npz"  # delete it after changing `build_sets`
    if not cache.exists():
        sets = build_sets(IMAGES_DIR, font_paths(), seed=seed)
        items = [(path, label, g) for g, paths in enumerate(sets.values()) for path, label in paths]
        np.savez(cache, images=np.stack([prepare(path).image for path, _, _ in items]),
                 labels=np.array([CASE_CLASS_NAMES.index(label) for _, label, _ in items]),
                 names=np.array(list(sets)), groups=np.array([g for _, _, g in items]))
    z = np.load(cache, allow_pickle=False)
    return z["images"], z["labels"], [str(n) for n in z["names"]], z["groups"]


def predict_json(paths, checkpoint=None, case_sensitive=False):
    """Run the real command line in batches; returns {path: prediction dict}."""
    out = {}
    for start in range(0, len(paths), 500):
        cmd = [sys.executable, "-m", "helpers.predict", "--json", *map(str, paths[start : start + 500])]
        if case_sensitive:
            cmd.append("--case-sensitive")
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
    parser.add_argument("--case-sensitive", action="store_true", help="score the 62-class model (0-9, A-Z, a-z)")
    parser.add_argument("--json", type=Path, default=None,
                        help="record (default: assets/generalisation.json, or generalisation_case.json)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    record = args.json or ASSETS / ("generalisation_case.json" if args.case_sensitive else "generalisation.json")
    fonts = font_paths()
    if args.out.exists():
        shutil.rmtree(args.out)
    sets = build_sets(args.out, fonts, seed=args.seed)
    items = [(str(path), label, g) for g, paths in enumerate(sets.values()) for path, label in paths]
    started = time.perf_counter()
    predictions = predict_json(sorted({path for path, _, _ in items}), args.checkpoint, args.case_sensitive)
    seconds = time.perf_counter() - started
    # The command's answers as class indices (-1 where it gave none), scored like any model.
    pred = [CASE_CLASS_NAMES.index(predictions[path]["label"]) if path in predictions else -1 for path, _, _ in items]
    labels = [CASE_CLASS_NAMES.index(label) for _, label, _ in items]
    results = score_sets(pred, labels, list(sets), [g for _, _, g in items], case_sensitive=args.case_sensitive)
    print_results(results)
    print(f"{len(predictions)} of {len({p for p, _, _ in items})} images answered by the predict command "
          f"in {seconds:.1f} s")
    payload = {"seed": args.seed, "fonts": FONTS, "dev_fonts": DEV_FONTS, "held_out_fonts": HELD_OUT_FONTS,
               "checkpoint": args.checkpoint or ("case" if args.case_sensitive else "default"),
               "predict_seconds": round(seconds, 1), "results": results}
    records.write(record.name, payload, folder=record.parent)
    return results


def print_results(results):
    for name, r in results.items():
        cells = "  ".join(f"{k} {v:6.2f}%" for k, v in r.items() if k.endswith("_acc"))
        print(f"{name:40s} {r['images']:6d} images  {cells}")


if __name__ == "__main__":
    run(main)
