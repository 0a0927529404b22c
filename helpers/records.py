"""The recorded runs: JSON files in assets/ that the benchmarks write and the notebook reads.

Some experiments take too long to repeat inside the notebook (three seeds of two recipes,
an ablation of thirteen variants); they are run once by a script and their numbers recorded.
"""

import json
import time
from pathlib import Path

from .errors import HCRError
from .paths import ASSETS

MADE_BY = {
    "benchmark.json": "python benchmarks/speed_accuracy.py",
    "specialists.json": "python benchmarks/specialists.py",
    "framing.json": "python benchmarks/framing.py",
    "ablation.json": "python benchmarks/ablation.py",
    "generalisation.json": "python benchmarks/generalisation.py",
    "results.json": "make run",
}


def read(name, folder=ASSETS):
    """A recorded run as a dict; a missing or damaged file names the command that makes it."""
    path = Path(folder) / name
    command = MADE_BY.get(name, "the script that writes it")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise HCRError(f"{path} is missing: record it with `{command}` (or restore it with git).") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HCRError(f"{path} is damaged: record it again with `{command}` (or restore it with git).") from None


def write(name, payload, folder=ASSETS):
    """Write a record atomically, stamped with its date and the command that made it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"command": MADE_BY.get(name, ""), "written": time.strftime("%Y-%m-%d"), **payload}
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(folder / name)
    return folder / name
