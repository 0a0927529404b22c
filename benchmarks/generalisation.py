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

    python benchmarks/generalisation.py            # writes assets/generalisation.json
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import data, records, strokes  # noqa: E402
from helpers.labels import CLASS_NAMES, LOOKALIKE_KEY  # noqa: E402

FONTS = [
    "caveat", "indie-flower", "patrick-hand", "kalam", "shadows-into-light", "gloria-hallelujah",
    "architects-daughter", "handlee", "schoolbell", "gochi-hand", "coming-soon", "just-another-hand",
    "covered-by-your-grace", "nanum-pen-script", "reenie-beanie", "neucha", "short-stack", "itim", "mali",
    "pangolin", "gaegu", "delius", "annie-use-your-telescope", "nothing-you-could-do", "the-girl-next-door",
    "walter-turncoat", "just-me-again-down-here", "crafty-girls", "fuzzy-bubbles", "edu-sa-beginner",
    "playpen-sans", "shantell-sans", "comic-neue", "mynerve", "sue-ellen-francisco", "permanent-marker",
    "rock-salt", "caveat-brush", "swanky-and-moo-moo", "loved-by-the-king", "over-the-rainbow",
    "waiting-for-the-sunrise",
]
FONT_VERSION = "5.3.0"
GLYPHS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def install_fonts(folder):
    """npm-install the font packages once into `folder` (needs the npm registry)."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [f for f in FONTS if not (folder / "node_modules" / "@fontsource" / f).is_dir()]
    if missing:
        if not (folder / "package.json").exists():
            (folder / "package.json").write_text('{"name": "hcr-fonts", "private": true}\n')
        cmd = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder)]
        subprocess.run(cmd + [f"@fontsource/{f}@{FONT_VERSION}" for f in missing], check=True)
    paths = {}
    for f in FONTS:
        files = sorted((folder / "node_modules" / "@fontsource" / f / "files").glob(f"{f}-latin-*-normal.woff2"))
        regular = [p for p in files if "-400-" in p.name] or files
        paths[f] = regular[0]
    return paths


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
    # Digits by writers outside the training set, framed the EMNIST way (crop, pad 2, fill the frame).
    test = data.load_mnist(train=False, root=root)
    pick = rng.choice(len(test), size=min(mnist_digits, len(test)), replace=False)
    for n, i in enumerate(pick):
        img = test.images[i].numpy()
        ys, xs = np.nonzero(img > 0)
        crop = np.pad(img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], 2)
        side = max(crop.shape)
        square = np.zeros((side, side), np.uint8)
        top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
        square[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
        big = Image.fromarray(255 - square).resize((28, 28), Image.Resampling.LANCZOS)
        big = big.resize((112, 112), Image.Resampling.BICUBIC)
        label = CLASS_NAMES[int(test.labels[i])]
        sets["digits: MNIST test, EMNIST framing"].append((save(big, out / "mnist-emnist" / f"{n:05d}_{label}", rng), label))
    for name, path in fonts.items():
        font = ImageFont.truetype(str(path), 100)
        for char in GLYPHS:
            if not glyph_exists(font, char):
                continue
            label = char.upper()
            tag = f"{name}_{'lower' if char.islower() else ''}{char}"
            clean = render_glyph(path, char, rng)
            photo = photograph(render_glyph(path, char, rng), rng)
            if char.isdigit():
                sets["digits: handwriting fonts"].append((save(clean, out / "fonts" / f"{tag}_clean", rng), label))
                sets["digits: handwriting fonts"].append((save(photo, out / "fonts" / f"{tag}_photo", rng, jpeg=True), label))
            sets["characters: handwriting fonts, clean"].append((save(clean, out / "fonts" / f"{tag}_clean", rng), label))
            sets["characters: handwriting fonts, photographed"].append(
                (save(photo, out / "fonts" / f"{tag}_photo", rng, jpeg=True), label))
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


def predict_json(paths, checkpoint=None):
    """Run the real command line in batches; returns {path: prediction dict}."""
    out = {}
    for start in range(0, len(paths), 500):
        cmd = [sys.executable, "-m", "helpers.predict", "--json", *map(str, paths[start : start + 500])]
        if checkpoint:
            cmd += ["--checkpoint", str(checkpoint)]
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        for line in run.stdout.splitlines():
            record = json.loads(line)
            out[record["path"]] = record
    return out


def score(items, predictions):
    strict = tolerant = answered = 0
    for path, label in items:
        record = predictions.get(str(path))
        if record is None:
            continue
        answered += 1
        strict += record["label"] == label
        tolerant += LOOKALIKE_KEY[CLASS_NAMES.index(record["label"])] == LOOKALIKE_KEY[CLASS_NAMES.index(label)]
    n = len(items)
    return {"images": n, "answered": answered, "strict_acc": round(100 * strict / n, 2),
            "tolerant_acc": round(100 * tolerant / n, 2)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "generalisation")
    parser.add_argument("--fonts", type=Path, default=ROOT / "build" / "fonts")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--json", type=Path, default=ROOT / "assets" / "generalisation.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    sets = build_sets(args.out, install_fonts(args.fonts), seed=args.seed)
    paths = sorted({str(p) for items in sets.values() for p, _ in items})
    started = time.perf_counter()
    predictions = predict_json(paths, args.checkpoint)
    seconds = time.perf_counter() - started
    results = {name: score(items, predictions) for name, items in sets.items()}
    digits = [x for name, items in sets.items() if name.startswith("digits") for x in items]
    chars = [x for name, items in sets.items() if name.startswith("characters") for x in items]
    results["ALL digits from other sources"] = score(digits, predictions)
    results["ALL handwriting-style characters"] = score(chars, predictions)
    for name, r in results.items():
        print(f"{name:48s} {r['images']:6d} images  strict {r['strict_acc']:6.2f}%  look-alikes ok {r['tolerant_acc']:6.2f}%")
    print(f"{len(paths)} images through the predict command in {seconds:.1f} s")
    if args.json:
        payload = {"seed": args.seed, "fonts": FONTS, "checkpoint": args.checkpoint or "default",
                   "predict_seconds": round(seconds, 1), "results": results}
        records.write(args.json.name, payload, folder=args.json.parent)
    return results


if __name__ == "__main__":
    main()
