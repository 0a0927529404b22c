"""What every chapter's setup shares: its packages, the quick test mode, where its output goes, and
the font sets.

    from helpers import course
    course.prepare_notebook(PROJECT_DIR)   # installs what is missing, shows figures on the page
    SMOKE = course.smoke()             # HCR_SMOKE=1: small subsets, one epoch (the tests set it)
    FIGURES, RUNS = course.folders()   # assets/ and runs/, or one temporary folder in smoke mode

The switch is read here and nowhere else, so a chapter never parses the environment itself.
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import paths

SMOKE_ENV = "HCR_SMOKE"
# module -> its name on PyPI: what the chapters import (helpers pulls in the rest through these)
NOTEBOOK_NEEDS = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "PIL": "pillow",
                  "scipy": "scipy", "matplotlib": "matplotlib", "pandas": "pandas", "seaborn": "seaborn",
                  "sklearn": "scikit-learn", "tqdm": "tqdm", "ipywidgets": "ipywidgets", "anywidget": "anywidget"}


def prepare_notebook(project_dir, also=None):
    """Make a fresh Python (Colab, a bare kernel) ready for a chapter: install the packages it lacks at
    the versions requirements.txt pins, turn on Colab's widget manager (the drawing pad is a custom
    widget), and show every figure on the page (matplotlib's inline backend), not as text.
    `also`: more {module: PyPI name} that this chapter needs."""
    needs = {**NOTEBOOK_NEEDS, **(also or {})}
    pins = dict(word.split("==", 1) for word in (Path(project_dir) / "requirements.txt").read_text().split()
                if "==" in word)
    missing = [f"{name}=={pins[name]}" if name in pins else name
               for module, name in needs.items() if importlib.util.find_spec(module) is None]
    if missing:
        print("installing", ", ".join(missing))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    if "google.colab" in sys.modules:
        from google.colab import output

        output.enable_custom_widget_manager()
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python, where the cell is tested: figures are saved, nothing to show
        return
    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")


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
