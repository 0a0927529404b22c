"""Install the handwriting fonts that the font lines are drawn in: an explicit step.

    python -m benchmarks.fonts      # npm-installs the @fontsource packages into build/fonts (needs npm)

The fonts come from npm's @fontsource packages (none from Debian). Everything that draws with
them reads build/fonts; if it is empty it says to run this step first, so nothing is
downloaded behind your back. The list and the dev/held-out split live in helpers/fonts.py.
"""

from helpers.fonts import DEV_FONTS, FONTS, FONTS_DIR, HELD_OUT_FONTS, SCRIPT_FONTS, font_paths, install  # noqa: F401

from .common import run


def main():
    count = len(FONTS) + len(SCRIPT_FONTS)
    print(f"installing the {count} @fontsource handwriting fonts into {FONTS_DIR} with npm ...", flush=True)
    added = install()
    font_paths(names=FONTS + SCRIPT_FONTS)  # every font is there now
    print(f"{added} installed, {count - added} were there already: {FONTS_DIR}")


if __name__ == "__main__":
    run(main)
