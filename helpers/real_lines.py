"""Real handwritten lines: the manifest, its splits, and the lines framed for the reader.

The collection (`handwritten_lines/` beside MNIST and EMNIST, see its README) holds line images
cut from pages of openly licensed ground-truth collections, with a `manifest.tsv` that splits
them by document or writer into train, val and test. Each transcription is folded onto the
reader's alphabet (`alphabet.fold`); a line that still holds a character without a place is
dropped and counted, never silently changed.
"""

import csv
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import alphabet, data
from .errors import HCRError

FOLDER = "handwritten_lines"
MANIFEST = "manifest.tsv"
COLUMNS = ("file", "text", "source", "page", "writer", "split")
SPLITS = ("train", "val", "test")
CACHE_VERSION = 6  # bump when the line framing changes (6: bold short words are no longer blank)

# What each collection asks to be credited with; it ships in every checkpoint and record made from the lines.
ATTRIBUTION = (
    "Real handwritten lines (French, CC BY 4.0) from: LECTAUREP (Notaires de Paris - Répertoires; "
    "Mariages et divorces; Bronod), Archives nationales; Time Us Corpus (ANR TIME US); CREMMA-MSS-18, "
    "-19 and -20; HTRomance modern roman languages (BnF / Gallica); Peraire Ground Truth (Bibliothèque "
    "Sébert, Espéranto-France); GT Celestine Doniau-Danest (Archives départementales de la Somme). "
    "Line images cropped, grayscaled and resized. Licence: https://creativecommons.org/licenses/by/4.0/. Full "
    "credits (authors, titles, versions, URLs): the Credits section of this project's README.md."
)


@dataclass
class Entry:
    path: Path
    text: str  # folded onto the alphabet
    source: str
    page: str
    writer: str
    split: str


@dataclass
class Manifest:
    entries: list
    dropped: Counter = field(default_factory=Counter)  # characters that had no place, and how many lines held them

    def split(self, name):
        if name not in SPLITS:
            raise HCRError(f"split={name!r} is unknown: use one of {', '.join(SPLITS)}.")
        return [e for e in self.entries if e.split == name]


def folder(root=None):
    """The collection's folder under the data root (HCR_DATA_DIR, or data/)."""
    return data.data_root(root) / FOLDER


def read_manifest(root=None, max_chars=None):
    """Every usable line of the manifest, texts folded; HCRError with one sentence if it is missing or broken."""
    base = folder(root)
    path = base / MANIFEST
    if not path.is_file():
        raise HCRError(f"The real handwritten lines are missing ({path} not found): put the handwritten_lines "
                       "folder beside MNIST and EMNIST, or set HCR_DATA_DIR to the folder that holds it.")
    entries, dropped = [], Counter()
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(rows, None)
            if header is None or tuple(header[: len(COLUMNS)]) != COLUMNS:
                raise HCRError(f"{path} does not start with the header {' '.join(COLUMNS)}: it is not the "
                               "collection's manifest; copy the folder again.")
            for number, row in enumerate(rows, 2):
                if len(row) < len(COLUMNS):
                    raise HCRError(f"{path} line {number} has {len(row)} fields instead of {len(COLUMNS)}: the "
                                   "manifest is damaged; copy the folder again.")
                file, text, source, page, writer, split = row[: len(COLUMNS)]
                if split not in SPLITS:
                    raise HCRError(f"{path} line {number} names the split {split!r}: the manifest is damaged; "
                                   "copy the folder again.")
                folded, unknown = alphabet.fold(text)
                if unknown:
                    dropped.update(unknown)
                    continue
                if not folded or (max_chars is not None and len(folded) > max_chars):
                    continue
                entries.append(Entry(base / file, folded, source, page, writer, split))
    except UnicodeDecodeError:
        raise HCRError(f"{path} is not UTF-8 text: the manifest is damaged; copy the folder again.") from None
    except OSError as error:
        raise HCRError(f"{path} cannot be read ({error.strerror or error}): check its permissions.") from None
    return Manifest(entries, dropped)


@dataclass
class RealLines:
    """Framed real lines of one split, with where each came from."""

    images: list  # float32 (height, width) framed lines
    texts: list
    sources: list
    writers: list
    seconds: float = 0.0
    no_ink: int = 0  # lines left out because framing found no ink in them


def _frame_file(args):
    """(framed line or None) of one file: the road every user's photo takes."""
    from .framing import frame_line
    from .preprocess import line_to_ink, to_grey

    path, height = args
    ink, found = line_to_ink(to_grey(path))
    return frame_line(ink, height) if found else None


def load_split(split, root=None, height=None, limit=None, seed=0, progress=False, manifest=None, workers=None):
    """The framed lines of one split (`limit` draws that many, seeded, for smoke runs and tests).

    Every image goes the way a user's photo goes (`preprocess.line_to_ink`, `framing.frame_line`),
    so what the reader learns from is what it later sees. A line in which no ink is found is left
    out and counted in `no_ink`, so that a score can count it as an empty reading. Framing runs in `workers` processes
    (default: one per core) once; the result is kept in build/cache for the next call.
    """
    import json
    import os
    from concurrent.futures import ProcessPoolExecutor

    from .framing import LINE_HEIGHT
    from .paths import BUILD

    started = time.perf_counter()
    height = height or LINE_HEIGHT
    manifest = manifest or read_manifest(root)
    entries = manifest.split(split)
    if limit is not None and limit < len(entries):
        pick = np.random.default_rng(seed).choice(len(entries), limit, replace=False)
        entries = [entries[i] for i in sorted(pick)]
    missing = [e.path for e in entries if not e.path.is_file()]
    if missing:
        raise HCRError(f"{len(missing)} line images of the {split} split are missing (first: {missing[0]}): the "
                       "real-lines folder is incomplete; copy it again.")
    manifest_file = folder(root) / MANIFEST
    # the manifest's bytes and place, not its size and time: two copies edited within one second differ
    digest = hashlib.sha1(str(manifest_file.resolve()).encode() + manifest_file.read_bytes()).hexdigest()[:16]
    key = f"{split}-{height}-{limit}-{seed}-{digest}-{CACHE_VERSION}"
    cache = BUILD / "cache" / f"real_lines-{key}.npz"
    if cache.is_file():
        try:
            stored = np.load(cache, allow_pickle=False)
            meta = json.loads(str(stored["meta"]))
            widths, pixels = stored["widths"], stored["pixels"]
            starts = np.cumsum(widths) - widths
            images = [pixels[:, s : s + w].astype(np.float32) / 255.0 for s, w in zip(starts, widths)]
            return RealLines(images, meta["texts"], meta["sources"], meta["writers"], time.perf_counter() - started,
                             meta["no_ink"])
        except Exception:  # a damaged cache is made again
            pass
    jobs = [(str(e.path), height) for e in entries]
    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 200:
        with ProcessPoolExecutor(workers) as pool:
            framed = list(pool.map(_frame_file, jobs, chunksize=64))
    else:
        framed = [_frame_file(job) for job in jobs]
    out = RealLines([], [], [], [])
    for entry, image in zip(entries, framed):
        if image is None:
            out.no_ink += 1
            continue
        out.images.append(image)
        out.texts.append(entry.text)
        out.sources.append(entry.source)
        out.writers.append(entry.writer)
    if out.images:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.concatenate([np.rint(im * 255).astype(np.uint8) for im in out.images], axis=1)
            meta = json.dumps({"texts": out.texts, "sources": out.sources, "writers": out.writers,
                               "no_ink": out.no_ink})
            np.savez(cache, pixels=pixels, widths=np.array([im.shape[1] for im in out.images]), meta=np.array(meta))
            out.images = [np.rint(im * 255).astype(np.uint8).astype(np.float32) / 255.0 for im in out.images]
        except OSError:
            pass  # no cache: the next call frames the lines again
    out.seconds = time.perf_counter() - started
    return out


def line_set(real):
    """A LineSet of framed real lines, each at least wide enough for CTC to place its text."""
    from .lines import LineSet, min_width

    images = []
    for image, text in zip(real.images, real.texts):
        need = min_width(text) + 6
        images.append(np.pad(image, ((0, 0), (0, need - image.shape[1]))) if image.shape[1] < need else image)
    height = images[0].shape[0] if images else None
    return replace(LineSet.from_images(images, real.texts, height), groups=list(real.sources))


def by_collection(real):
    """{collection: RealLines of its lines}: to draw each collection with a weight of its own."""
    out = {}
    for i, source in enumerate(real.sources):
        part = out.setdefault(source, RealLines([], [], [], []))
        part.images.append(real.images[i])
        part.texts.append(real.texts[i])
        part.sources.append(source)
        part.writers.append(real.writers[i])
    return out
