"""Reading whole lines: train the CRNN line reader, and score it on lines it has never seen.

    python -m benchmarks.fonts                            # once: the handwriting fonts, with npm
    python -m benchmarks.lines train --minutes 15         # -> runs/lines.pt (the shipped recipe)
    python -m benchmarks.lines train --style fsdl --out runs/lines-fsdl.pt   # the EMNIST Lines recipe
    python -m benchmarks.lines score runs/lines.pt runs/lines-fsdl.pt        # -> assets/lines.json

Scored sets (none of them used for training or for choosing anything):
- synthetic test lines: EMNIST ByClass and MNIST *test* images, words held out of all training text;
- lines in handwriting fonts from npm's @fontsource packages, as clean scans (PNG) and as phone
  photos (JPEG), read from the files like a user's pictures. The fonts are split as everywhere
  (`benchmarks.fonts`): DEV_FONTS may be used to develop and, with --font-share, to train;
  HELD_OUT_FONTS (every third font) are never used for anything but this score.
No real handwritten lines were available: these numbers say how well the reader handles
EMNIST-like writing and fonts, not how well it reads a person's handwriting.
"""

import argparse
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from helpers import crnn, lines, records
from helpers.paths import ASSETS, BUILD, RUNS

from .common import machine, run
from .fonts import DEV_FONTS, HELD_OUT_FONTS, font_paths

IMAGES_DIR = BUILD / "lines"
SPEED_CHARS = 20  # the target: a line of 20 characters from PNG to text


def render_font_line(font_path, text, rng):
    """`text` in a font, dark on white paper, at a random size, pen weight, margin and small tilt."""
    size = int(rng.integers(28, 90))
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


def build_font_sets(out, fonts, per_font=30, seed=0):
    """Write font lines under `out`; returns {set name: [(path, text), ...]}.

    Every font gets `per_font` test-split lines, each saved as a clean PNG and as a photo JPEG.
    """
    paths = font_paths()
    chars = font_chars({name: paths[name] for name in fonts})
    rng = np.random.default_rng(seed)
    sets = {}
    halves = (("dev", [f for f in fonts if f in DEV_FONTS]), ("held-out", [f for f in fonts if f in HELD_OUT_FONTS]))
    for half, names in halves:
        clean, photo = [], []
        for name in names:
            for k in range(per_font):
                text = lines.sample_text(rng, "test")
                while not set(text) - {" "} <= chars[name]:
                    text = lines.sample_text(rng, "test")
                image = render_font_line(paths[name], text, rng)
                target = out / half / f"{name}_{k:03d}"
                target.parent.mkdir(parents=True, exist_ok=True)
                image.save(target.with_suffix(".png"))
                clean.append((target.with_suffix(".png"), text))
                photo_image = photograph(image, image.info["font_size"], rng)
                photo_image.save(target.with_suffix(".jpg"), quality=int(rng.integers(60, 92)))
                photo.append((target.with_suffix(".jpg"), text))
        if names:
            sets[f"fonts {half}, clean"] = clean
            sets[f"fonts {half}, photographed"] = photo
    return sets


def speed_files(out, count=30, seed=1):
    """PNG files of lines of exactly SPEED_CHARS characters (held-out fonts), for timing."""
    paths = font_paths()
    rng = np.random.default_rng(seed)
    files = []
    while len(files) < count:
        text = lines.sample_text(rng, "test")
        if len(text) != SPEED_CHARS:
            continue
        name = HELD_OUT_FONTS[len(files) % len(HELD_OUT_FONTS)]
        path = out / "speed" / f"{len(files):03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        render_font_line(paths[name], text, rng).save(path)
        files.append(path)
    return files


def score_files(reader, items):
    results = reader.read_many([str(path) for path, _ in items])
    texts = [r.text if isinstance(r, crnn.TextResult) else "" for _, r in results]
    out = crnn.score(texts, [text for _, text in items])
    out["unreadable"] = sum(not isinstance(r, crnn.TextResult) for _, r in results)
    out["examples"] = [[text, read] for (_, text), read in list(zip(items, texts))[:8]]
    return out


def score_checkpoint(path, sets, synthetic, speed):
    """Every set's scores for one checkpoint, and its time per line from PNG to text."""
    return score_reader(crnn.TextReader(path), sets, synthetic, speed)


def score_reader(reader, sets, synthetic, speed):
    """Every set's scores for one reader, and its time per line from PNG to text."""
    result = {}
    for style, line_set in synthetic.items():
        texts = [text for text, _, _ in crnn.read_lines(reader.model, line_set)]
        result[f"synthetic test lines ({style})"] = {**crnn.score(texts, line_set.texts),
                                                     "examples": [[t, r] for t, r in zip(line_set.texts[:8], texts)]}
    for name, items in sets.items():
        result[name] = score_files(reader, items)
    reader.read(speed[0])  # warm up
    times = []
    for file in speed:
        started = time.perf_counter()
        reader.read(file)
        times.append(1000 * (time.perf_counter() - started))
    result["ms_per_line"] = {"chars": SPEED_CHARS, "median": statistics.median(times), "max": max(times)}
    return result


def print_scores(name, result):
    print(f"\n{name}")
    for set_name, r in result.items():
        if set_name == "ms_per_line":
            print(f"  {SPEED_CHARS}-character line from PNG to text: {r['median']:.1f} ms (median), "
                  f"{r['max']:.1f} ms max")
            continue
        print(f"  {set_name:42s} {r['lines']:5d} lines  CER {r['cer']:6.2f}%  ignoring case "
              f"{r['cer_ignore_case']:6.2f}%  words {r['word_acc']:6.2f}%  lines exact {r['line_acc']:6.2f}% "
              f"({r['line_acc_ignore_case']:.2f}% ignoring case)")


def score_main(args):
    checkpoints = args.checkpoints or [crnn.default_reader_checkpoint()]
    if args.out.exists():
        shutil.rmtree(args.out)
    fonts = DEV_FONTS + HELD_OUT_FONTS
    sets = build_font_sets(args.out, fonts, per_font=args.per_font, seed=args.seed)
    speed = speed_files(args.out)
    test_bank = lines.load_bank(False)
    synthetic = {style: lines.make_line_set(test_bank, args.synthetic, "test", seed=args.seed + 2, style=style)
                 for style in ("handwriting", "fsdl")}
    results = {}
    for path in checkpoints:
        info = crnn.load_reader(path)[1]
        results[str(path)] = {"recipe": info.get("recipe", {}), "training": info.get("metrics", {}),
                              "scores": score_checkpoint(path, sets, synthetic, speed)}
        print_scores(path, results[str(path)]["scores"])
    if args.json:
        records.write(args.json.name, {"seed": args.seed, "dev_fonts": DEV_FONTS, "held_out_fonts": HELD_OUT_FONTS,
                                       "machine": machine(), "checkpoints": results}, folder=args.json.parent)
        print(f"wrote {args.json}")
    return results


def score_model(model, per_font=30, synthetic=2000, seed=0):
    """Score a model trained in this session (the notebook's) like `score` scores a checkpoint."""
    if IMAGES_DIR.exists():
        shutil.rmtree(IMAGES_DIR)
    sets = build_font_sets(IMAGES_DIR, DEV_FONTS + HELD_OUT_FONTS, per_font=per_font, seed=seed)
    speed = speed_files(IMAGES_DIR)
    test_bank = lines.load_bank(False)
    lines_ = {"handwriting": lines.make_line_set(test_bank, synthetic, "test", seed=seed + 2)}
    reader = crnn.TextReader.from_model(model)
    return {"seed": seed, "dev_fonts": DEV_FONTS, "held_out_fonts": HELD_OUT_FONTS, "machine": machine(),
            "checkpoints": {"runs/lines.pt (the notebook's run)":
                            {"scores": score_reader(reader, sets, lines_, speed)}}}


def record(result):
    """Write a `score_model` result to assets/lines.json."""
    records.write("lines.json", result)


def table(result):
    """The first checkpoint's scores per set, in percent (a pandas DataFrame)."""
    import pandas as pd

    scores = next(iter(result["checkpoints"].values()))["scores"]
    keys = ("lines", "cer", "cer_ignore_case", "word_acc", "line_acc", "line_acc_ignore_case")
    rows = {name: {k: r[k] for k in keys} for name, r in scores.items() if name != "ms_per_line"}
    frame = pd.DataFrame(rows).T.round(2)
    speed = scores.get("ms_per_line")
    if speed:
        frame.attrs["ms_per_line"] = speed
        print(f"a {speed['chars']}-character line from PNG to text: {speed['median']:.1f} ms (median)")
    return frame


def train_main(args):
    fonts = tuple(str(font_paths()[name]) for name in DEV_FONTS) if args.font_share > 0 else ()
    recipe = crnn.LineRecipe(style=args.style, train_lines=args.lines, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, max_minutes=args.minutes, seed=args.seed, fonts=fonts,
                             font_share=args.font_share)
    model, history, seconds = crnn.train_reader(recipe, progress=not args.quiet)
    last = history.epochs[-1]
    metrics = {"train_seconds": round(history.train_seconds, 1), "total_seconds": round(seconds, 1),
               "lines_seen": history.lines_seen, "epochs_done": len(history.epochs),
               **{k: round(v, 3) for k, v in last.items() if k.startswith("val_")}, "history": history.epochs}
    crnn.save_reader(args.out, model, metrics=metrics, recipe=recipe.to_dict())
    print(f"trained in {seconds:.0f} s ({history.train_seconds:.0f} s of training): wrote {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lines", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a line reader on synthetic lines")
    train.add_argument("--style", choices=lines.STYLES, default="handwriting")
    train.add_argument("--lines", type=int, default=crnn.LineRecipe.train_lines)
    train.add_argument("--epochs", type=int, default=crnn.LineRecipe.epochs)
    train.add_argument("--batch-size", type=int, default=crnn.LineRecipe.batch_size)
    train.add_argument("--lr", type=float, default=crnn.LineRecipe.lr)
    train.add_argument("--minutes", type=float, default=None, help="stop training after this many minutes in all")
    train.add_argument("--font-share", type=float, default=0.0,
                       help="share of the training lines written in the DEV fonts (0: EMNIST and MNIST only)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=RUNS / "lines.pt")
    train.add_argument("--quiet", action="store_true")
    score = sub.add_parser("score", help="score checkpoints on held-out lines")
    score.add_argument("checkpoints", nargs="*", type=Path)
    score.add_argument("--per-font", type=int, default=30)
    score.add_argument("--synthetic", type=int, default=2000)
    score.add_argument("--seed", type=int, default=0)
    score.add_argument("--out", type=Path, default=IMAGES_DIR)
    score.add_argument("--json", type=Path, default=ASSETS / "lines.json")
    args = parser.parse_args(argv)
    return train_main(args) if args.command == "train" else score_main(args)


if __name__ == "__main__":
    run(main)
