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

from helpers import crnn, lines, records
from helpers.font_lines import font_chars, photograph, render_font_line
from helpers.paths import ASSETS, BUILD, RUNS

from .common import machine, run
from .fonts import DEV_FONTS, HELD_OUT_FONTS, font_paths

IMAGES_DIR = BUILD / "lines"
SPEED_CHARS = 20  # the target: a line of 20 characters from PNG to text


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
    recipe = crnn.LineRecipe(real_share=args.real, synthetic_share=args.synthetic, font_share=args.fonts,
                             height=args.height, hidden=args.hidden, channels=tuple(args.channels), lr=args.lr,
                             augment=args.augment, minutes=args.minutes, seed=args.seed)
    model, history, seconds = crnn.train_reader(recipe, progress=not args.quiet)
    metrics = {"train_seconds": round(history.train_seconds, 1), "total_seconds": round(seconds, 1),
               "lines_seen": history.lines_seen, "steps": history.steps, "sizes": history.sizes,
               "best": history.best, "evaluations": history.evaluations}
    crnn.save_reader(args.out, model, metrics=metrics, recipe=recipe.to_dict())
    print(f"trained in {seconds:.0f} s ({history.train_seconds:.0f} s of training): wrote {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lines", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a line reader on a mix of real, synthetic and font lines")
    defaults = crnn.LineRecipe()
    train.add_argument("--real", type=float, default=defaults.real_share, help="share of real training lines")
    train.add_argument("--synthetic", type=float, default=defaults.synthetic_share,
                       help="share of synthetic EMNIST lines")
    train.add_argument("--fonts", type=float, default=defaults.font_share, help="share of lines in the dev fonts")
    train.add_argument("--height", type=int, default=defaults.height)
    train.add_argument("--hidden", type=int, default=defaults.hidden)
    train.add_argument("--channels", type=int, nargs=4, default=list(defaults.channels))
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--augment", type=float, default=defaults.augment)
    train.add_argument("--minutes", type=float, default=defaults.minutes, help="training time (loading not included)")
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
