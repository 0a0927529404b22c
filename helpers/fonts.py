"""The handwriting fonts from npm's @fontsource packages, and the split that keeps some of them honest.

    python -m benchmarks.fonts      # npm-installs the @fontsource packages into build/fonts (needs npm)

Every third font is held out: no prior, threshold, recipe or checkpoint is ever chosen on it, so
its figures are the honest ones. The others ("dev" fonts) may be used to choose and to train.
"""

import shutil
import subprocess

from .errors import HCRError
from .paths import BUILD

FONTS_DIR = BUILD / "fonts"
FONT_VERSION = "5.3.0"
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

HELD_OUT_FONTS = tuple(FONTS[2::3])
DEV_FONTS = tuple(f for f in FONTS if f not in HELD_OUT_FONTS)

# Script and cursive families: joined, slanted, calligraphic. Unseen, they read worst (about 14%
# CER ignoring case, against 3% for the fonts above), so the line reader may learn from some of
# them. Only the line reader draws with them (the characters' records keep the 42 above); every
# third, in this alphabetical order, is held out the same way.
SCRIPT_FONTS = [
    "allura", "bad-script", "calligraffitti", "cedarville-cursive", "cookie", "courgette", "dancing-script",
    "dawning-of-a-new-day", "grape-nuts", "herr-von-muellerhoff", "homemade-apple", "kristi", "la-belle-aurore",
    "marck-script", "meddon", "merienda", "mr-dafoe", "ms-madi", "nanum-brush-script", "oooh-baby", "rancho",
    "sacramento", "satisfy", "sedgwick-ave", "square-peg", "yesteryear", "zeyada",
]
HELD_OUT_SCRIPT_FONTS = tuple(SCRIPT_FONTS[2::3])
DEV_SCRIPT_FONTS = tuple(f for f in SCRIPT_FONTS if f not in HELD_OUT_SCRIPT_FONTS)


def _regular(folder, font):
    """The font's regular (400) latin file, or None if the package is not installed."""
    files = sorted((folder / "node_modules" / "@fontsource" / font / "files").glob(f"{font}-latin-*-normal.woff2"))
    return ([p for p in files if "-400-" in p.name] or files or [None])[0]


def font_paths(folder=FONTS_DIR, names=None):
    """{font name: path of its regular latin file} of `names` (default: FONTS); stops with the
    command to run if any is missing."""
    names = FONTS if names is None else names
    paths = {font: _regular(folder, font) for font in names}
    missing = [font for font, path in paths.items() if path is None]
    if missing:
        raise HCRError(f"{len(missing)} of the {len(names)} handwriting fonts are not in {folder}: "
                       "run `python -m benchmarks.fonts` first (it installs them with npm).")
    return paths


def install(folder=FONTS_DIR):
    """npm-install the font packages that are not in `folder` yet; returns how many were installed."""
    missing = [font for font in FONTS + SCRIPT_FONTS if _regular(folder, font) is None]
    if not missing:
        return 0
    if shutil.which("npm") is None:
        raise HCRError("npm is not installed: install Node.js (it brings npm), then run `python -m benchmarks.fonts`.")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "package.json").exists():
        (folder / "package.json").write_text('{"name": "hcr-fonts", "private": true}\n')
    command = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(folder)]
    subprocess.run(command + [f"@fontsource/{font}@{FONT_VERSION}" for font in missing], check=True)
    return len(missing)
