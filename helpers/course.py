"""What every chapter's setup shares: the quick test mode, where its output goes, and the font sets.

    from helpers import course
    SMOKE = course.smoke()             # HCR_SMOKE=1: small subsets, one epoch (the tests set it)
    FIGURES, RUNS = course.folders()   # assets/ and runs/, or one temporary folder in smoke mode

The switch is read here and nowhere else, so a chapter never parses the environment itself.
"""

import os
import tempfile
from pathlib import Path

from . import paths

SMOKE_ENV = "HCR_SMOKE"


def smoke():
    """True in the tests' quick mode (HCR_SMOKE=1): small subsets, one epoch, nothing written to assets/."""
    return os.environ.get(SMOKE_ENV) == "1"


def folders():
    """(figures and records, trained models): assets/ and runs/, or one fresh temporary folder in smoke mode."""
    if smoke():
        folder = Path(tempfile.mkdtemp(prefix="hcr-"))
        return folder, folder
    return paths.ASSETS, paths.RUNS


def fonts_ready():
    """Can the characters in handwriting fonts be built? If not, say so in one sentence and return False.

    The fonts come from npm (`make fonts`); without them a chapter goes on without its font parts
    and shows the recorded results instead.
    """
    from . import font_characters

    missing = font_characters.unavailable()
    if missing:
        print(f"{missing} This chapter goes on without the font parts and shows their recorded results.")
        return False
    return True
