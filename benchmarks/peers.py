"""The project's line reader side by side with the OCR engines a user would try instead.

    pip install -r requirements-peers.txt                      # EasyOCR and its English weights (offline)
    apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra   # Tesseract 5 (Debian), English and French
    python -m benchmarks.peers                                 # -> assets/peers.json

One run reads the same image files with every engine and scores them the same way
(`crnn.score`: CER case-sensitive and ignoring case, word accuracy), after folding every
engine's output onto the reader's alphabet (`alphabet.fold`: curly quotes, dashes), so that
typography is not counted as an error:
- the real test split of the handwritten lines (documents and writers never trained on, nor
  used to choose anything), per collection and in all;
- lines in the HELD-OUT handwriting fonts (never trained on), clean and photographed.
Tesseract runs with `--psm 7` (one line), once with its English model and once with its French one;
EasyOCR's English recogniser reads the whole image as one line (its French one has no offline weights).
An engine that is not installed is reported as missing, and the others still run.
"""

import argparse
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from helpers import alphabet, crnn, real_lines, records
from helpers.errors import HCRError
from helpers.paths import ASSETS, BUILD, shown

from .common import machine, run
from .fonts import HELD_OUT_FONTS
from .lines import build_font_sets


def fold_output(text):
    """An engine's output on the reader's alphabet; characters with no place are dropped (counted as errors)."""
    return alphabet.fold(text or "")[0]


class Ours:
    name = "this project (CRNN)"

    def __init__(self, checkpoint=None):
        self.reader = crnn.TextReader(checkpoint or crnn.SHIPPED)  # with the shipped LM, as users get it
        lm = self.reader.lm
        self.decoding = "greedy" if lm is None else f"beam search, LM weight {lm[1]}, bonus {lm[2]}"

    def read(self, path):
        try:
            return self.reader.read(str(path)).text
        except HCRError:
            return ""


class Tesseract:
    """Tesseract 5 on one line (`--psm 7`) with its English model: what an English user runs."""
    name = "Tesseract 5 (--psm 7)"
    language, package = "eng", "tesseract-ocr-eng"

    def __init__(self):
        if shutil.which("tesseract") is None:
            raise HCRError(f"tesseract is not installed: apt-get install tesseract-ocr {self.package}")
        listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout.split()
        if self.language not in listed:
            raise HCRError(f"tesseract has no {self.language!r} model: apt-get install {self.package}")
        self.version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.split("\n")[0]

    def read(self, path):
        result = subprocess.run(["tesseract", str(path), "stdout", "--psm", "7", "-l", self.language],
                                capture_output=True, text=True, timeout=60,
                                env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"})
        return " ".join(result.stdout.split())


class TesseractFrench(Tesseract):
    """The same with its French model, which a user with French writing would pick (EasyOCR's French
    recogniser has no offline weights on PyPI, so it is not compared)."""
    name = "Tesseract 5 (French model, --psm 7)"
    language, package = "fra", "tesseract-ocr-fra"


class EasyOCR:
    name = "EasyOCR 1.7 (English, recogniser on the whole line)"

    def __init__(self):
        try:
            import easyocr
            import easyocr_en_models
        except ImportError:
            raise HCRError("EasyOCR is not installed: pip install -r requirements-peers.txt") from None
        folder = Path(easyocr_en_models.__file__).parent / "models"
        self.reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=str(folder), download_enabled=False,
                                     verbose=False)

    def read(self, path):
        grey = np.asarray(Image.open(path).convert("L"))
        h, w = grey.shape
        return " ".join(self.reader.recognize(grey, horizontal_list=[[0, w, 0, h]], free_list=[], detail=0))


def image_sets(per_font=20, seed=0, limit=None):
    """{set name: [(path, truth, group)]}: the real test split, and the held-out font lines."""
    manifest = real_lines.read_manifest()
    test = manifest.split("test")
    if limit is not None:
        test = test[:: max(1, len(test) // limit)][:limit]
    sets = {"real handwriting, test split": [(e.path, e.text, e.source) for e in test]}
    out = BUILD / "peers"
    if out.exists():
        shutil.rmtree(out)
    try:
        for name, items in build_font_sets(out, HELD_OUT_FONTS, per_font=per_font, seed=seed).items():
            sets[name] = [(path, text, name) for path, text in items]
    except HCRError as error:  # no fonts (no npm): the real lines are still compared
        print(f"font lines left out: {error}")
    return sets


def score_engine(engine, items):
    started = time.perf_counter()
    readings = [fold_output(engine.read(path)) for path, _, _ in items]
    seconds = time.perf_counter() - started
    truths = [t for _, t, _ in items]
    out = {k: round(v, 2) for k, v in crnn.score(readings, truths).items()}
    groups = [group for _, _, group in items]
    if len(set(groups)) > 1:
        counts = Counter(groups)
        out["by_collection"] = {g: {"lines": counts[g], "cer": round(cer, 2)}
                                for g, cer in crnn.cer_by_group(readings, truths, groups).items()}
    out["ms_per_line"] = round(1000 * seconds / max(1, len(items)), 1)
    out["examples"] = [[t, r] for t, r in list(zip(truths, readings))[:6]]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="the line reader (default: the shipped one)")
    parser.add_argument("--per-font", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None, help="read only this many real test lines (a quick try)")
    parser.add_argument("--json", type=Path, default=ASSETS / "peers.json")
    args = parser.parse_args(argv)
    sets = image_sets(args.per_font, limit=args.limit)
    engines, missing = [], {}
    for kind in (Ours, Tesseract, TesseractFrench, EasyOCR):
        try:
            engines.append(kind(args.checkpoint) if kind is Ours else kind())
        except HCRError as error:
            missing[kind.name] = str(error)
            print(f"{kind.name}: {error}")
    results = {}
    for engine in engines:
        results[engine.name] = {}
        for set_name, items in sets.items():
            r = score_engine(engine, items)
            results[engine.name][set_name] = r
            print(f"{engine.name:52s} {set_name:36s} {r['lines']:4d} lines  CER {r['cer']:6.2f}%  ignoring case "
                  f"{r['cer_ignore_case']:6.2f}%  words {r['word_acc']:6.2f}%  {r['ms_per_line']:.0f} ms/line",
                  flush=True)
    record = {"machine": machine(), "engines": results, "missing": missing,
              "sets": {k: len(v) for k, v in sets.items()}, "held_out_fonts": list(HELD_OUT_FONTS),
              "checkpoint": shown(args.checkpoint or crnn.SHIPPED),
              "decoding": next((e.decoding for e in engines if isinstance(e, Ours)), None),
              "command": "python -m benchmarks.peers"}
    records.write(args.json.name, record, folder=args.json.parent)
    print(f"wrote {args.json}")
    return record


if __name__ == "__main__":
    run(main)
