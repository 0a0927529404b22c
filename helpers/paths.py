"""Every folder the project reads or writes, found from this file, never from the working directory.

So the notebook, `python -m helpers.predict`, the web demo and the benchmarks behave the same
whether they are started in the project folder, elsewhere, or in Colab.
"""

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ASSETS = PROJECT_DIR / "assets"  # figures and the JSON records of recorded runs, kept in git
CHECKPOINTS = PROJECT_DIR / "checkpoints"  # the shipped models, kept in git
RUNS = PROJECT_DIR / "runs"  # models trained on your machine (not in git)
BUILD = PROJECT_DIR / "build"  # caches and generated test images (not in git)
DATA_ENV = "HCR_DATA_DIR"


def shown(path):
    """A project path as the user sees it in the repository (checkpoints/lines.pt), others as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def data_root(root=None):
    """The folder holding `MNIST/` and `EMNIST/`: the argument, else $HCR_DATA_DIR, else data/."""
    if root is None:
        root = os.environ.get(DATA_ENV) or PROJECT_DIR / "data"
    return Path(root).expanduser().resolve()
