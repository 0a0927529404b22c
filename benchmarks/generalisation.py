"""Does the model read characters that come from neither MNIST nor EMNIST? Through the command line.

Writes the sets of `helpers.font_characters` (MNIST test digits framed the EMNIST way, characters
in handwriting fonts, clean and photographed, and script strokes) to disk as PNG and JPEG files,
and scores them through the real command line, `python -m helpers.predict --json`, exactly as a
user's files would be. None of these fonts or images is used for training. Run:

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

from helpers import records
from helpers.evaluation import score_sets
from helpers.font_characters import (  # noqa: F401  (the image sets live in helpers)
    GLYPHS,
    IMAGES_DIR,
    SET_NAMES,
    build_sets,
    glyph_exists,
    prepared_images,
    render_glyph,
    save,
)
from helpers.fonts import DEV_FONTS, FONTS, HELD_OUT_FONTS, font_paths
from helpers.labels import CASE_CLASS_NAMES
from helpers.paths import ASSETS, PROJECT_DIR

from .common import run


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
