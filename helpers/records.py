"""The recorded runs: JSON files in assets/ that the benchmarks write and the notebook reads.

Some experiments take too long to repeat inside the notebook (three seeds of two recipes,
an ablation of a dozen variants); they are run once by a script and their numbers recorded.
The notebook's own run is recorded too (`write_results`), and `tidy_notebook` keeps a re-run
notebook from rewriting lines whose content did not change.
"""

import hashlib
import json
import re
import time
from pathlib import Path

from .errors import HCRError
from .paths import ASSETS

MADE_BY = {
    "benchmark.json": "python -m benchmarks.speed_accuracy",
    "specialists.json": "python -m benchmarks.specialists",
    "framing.json": "python -m benchmarks.framing",
    "ablation.json": "python -m benchmarks.ablation",
    "generalisation.json": "python -m benchmarks.generalisation",
    "generalisation_case.json": "python -m benchmarks.generalisation --case-sensitive",
    "case.json": "python -m benchmarks.case",
    "priors.json": "make run (chapter 1), or python -m benchmarks.priors",
    "priors_case.json": "make run-case (chapter 2), or python -m benchmarks.priors",
    "lines.json": "python -m benchmarks.lines score checkpoints/lines.pt --ship-lm",
    "peers.json": "python -m benchmarks.peers",
    "results.json": "make run",
    "case_results.json": "make run-case",
    "run_times.json": "make run, make run-case, make run-lines (each adds its chapter)",
    "web_load.json": "python -m benchmarks.web_load --runs 3 --json assets/web_load.json",
    "lines_sources.json": "python -m benchmarks.lines sources",
    "lines_designs.json": "python -m benchmarks.lines designs",
    "lines_balance.json": "python -m benchmarks.lines balance",
    "pages.json": "python -m benchmarks.lines pages",
    "line_crops.json": "python -m benchmarks.lines crops",
    "lines_script.json": "python -m benchmarks.lines script",
    "lines_shifts.json": "python -m benchmarks.lines shifts",
    "lines_finetunes.json": ("python -m benchmarks.lines finetunes build/main_run.pt build/ft_b1.pt build/ft_b1_s1.pt "
                             "build/ft_b0.5.pt build/ft_b0.5_s1.pt build/ft_b0.pt build/ft_b0.5_lr1e-3.pt "
                             "build/ft_b0.5_m5.5.pt build/ft_swa.pt build/ft_script.pt build/ft_script_f0.3.pt"),
    "lines_robust.json": "python -m benchmarks.lines robust build/main_run.pt build/ft_degrade.pt",
    "lines_prose.json": "python -m benchmarks.lines prose --ship",
    "lines_mix.json": "python -m benchmarks.lines mix",  # then `mix --ship` writes the mix it chose
}


def machine():
    """What a recorded number was measured on: processor, threads, PyTorch, native bf16."""
    import platform

    import torch

    from .hardware import cpu_has_native_bf16

    return {"processor": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": str(torch.__version__), "bf16": cpu_has_native_bf16()}


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
    payload = {"command": MADE_BY.get(name, ""), "written": None, **payload}
    payload["written"] = time.strftime("%Y-%m-%d")  # today's, even when an older record is written back
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    tmp.replace(folder / name)
    return folder / name


def _scores(summary):
    return {k: v for k, v in summary.items() if k != "test_images"}


SCORE_KEYS = ("lines", "cer", "cer_ignore_case", "word_acc", "line_acc")


def scores_table(record, names=None):
    """The scored sets of a line-reading record (`assets/lines.json`), one row each, in percent:
    a pandas DataFrame. Entries that are not a set's scores (the beam search's choice) are left out."""
    import pandas as pd

    rows = {name: {k: r[k] for k in SCORE_KEYS} for name, r in record["scores"].items()
            if isinstance(r, dict) and all(k in r for k in SCORE_KEYS) and (names is None or name in names)}
    return pd.DataFrame(rows).T.round(2)


BEAM_KEY = re.compile(r"beam weight (?P<weight>[\d.]+) bonus (?P<bonus>[\d.]+)"  # a key of the val grid
                      r"(?: (?P<lm>order .+?))?(?: width (?P<width>\d+))?$")


def beam_grid_table(record, first_lm="order 5"):
    """The val CER of each beam setting tried (`beam_search.val_grid` of `assets/lines.json`): one
    row per language model (and width, when not the first tried) and weight, one column per bonus.
    The grid's keys name the first language model by leaving it out."""
    import pandas as pd

    rows = {}
    for key, cer in record["scores"]["beam_search"]["val_grid"].items():
        if not key.startswith("beam weight"):  # greedy, and the dev fonts' guard when French words win
            continue
        m = BEAM_KEY.match(key)
        if m is None:
            raise ValueError(f"unexpected beam setting {key!r} in the record")
        lm = (m["lm"] or first_lm) + (f", width {m['width']}" if m["width"] else "")
        rows.setdefault((lm, float(m["weight"])), {})[float(m["bonus"])] = cer
    table = pd.DataFrame(rows).T.sort_index(axis=1)
    table.index.names, table.columns.name = ["language model", "weight"], "bonus"
    return table


SHARED_TRAIN_FLAGS = re.compile(r"python -m benchmarks\.lines train|--(init-from|choose-by|out) \S+|--quiet")


def finetunes_table(record):
    """The fine-tunes of `assets/lines_finetunes.json` side by side, each row named by its own training
    flags (what it changed), not its file name: a learner compares recipes, not paths."""
    import pandas as pd

    def name(path, run):
        if path == record["main_run"]:
            return "the main run (shipped)"
        return " ".join(SHARED_TRAIN_FLAGS.sub("", run.get("command") or path).split()) or path

    def row(run):
        return {"seconds in all": run["seconds_in_all"], "val greedy": run["greedy"]["cer"],
                "val beam": run["beam"]["cer"], "beam, per collection": run["beam"]["per_collection"]}

    return pd.DataFrame({name(path, r): row(r) for path, r in record["runs"].items()}).T


def write_results(shipped, *, without_prior, baseline, digit_prior, model_name, parameters, recipe,
                  train_seconds, baseline_train_seconds, baseline_epochs, device, folder=ASSETS):
    """Record the notebook's run in results.json and return it.

    `shipped`, `without_prior` and `baseline` are `evaluation.summarise` results on the test
    files: the shipped model with its digit prior, the same model without it, and the baseline.
    The shipped model's scores stay at the top level, where the README and the tests read them.
    """
    import torch

    recipe = recipe.to_dict() if hasattr(recipe, "to_dict") else dict(recipe)
    payload = {
        **_scores(shipped),
        "test_images": shipped["test_images"],
        "without_digit_prior": _scores(without_prior),
        "digit_prior": digit_prior,
        "train_seconds": round(train_seconds, 1),
        "epochs": recipe["epochs"],
        "model": model_name,
        "parameters": parameters,
        "recipe": recipe,
        "device": str(device),
        "torch_version": str(torch.__version__),
        "baseline": _scores(baseline),
        "baseline_train_seconds": round(baseline_train_seconds, 1),
        "baseline_epochs": baseline_epochs,
    }
    return read("results.json", write("results.json", payload, folder).parent)


def run_seconds(notebook):
    """Seconds from the first cell's start to the last cell's end of an executed notebook (its
    per-cell timestamps), and the slowest cells; None before it has run."""
    from datetime import datetime

    spans = []
    for i, cell in enumerate(notebook.cells):
        times = cell.get("metadata", {}).get("execution", {})
        start, end = times.get("iopub.execute_input"), times.get("shell.execute_reply")
        if start and end:
            spans.append((i, datetime.fromisoformat(start.replace("Z", "+00:00")),
                          datetime.fromisoformat(end.replace("Z", "+00:00"))))
    if not spans:
        return None
    slowest = sorted(spans, key=lambda s: s[1] - s[2])[:5]
    return {"seconds": round((spans[-1][2] - spans[0][1]).total_seconds(), 1),
            "slowest_cells": {str(i): round((b - a).total_seconds(), 1) for i, a, b in slowest}}


def record_run_time(path, command, folder=ASSETS):
    """Add a full run's time to assets/run_times.json (before tidy_notebook drops the timestamps)."""
    import nbformat

    timing = run_seconds(nbformat.read(path, as_version=4))
    if timing is None:
        return None
    try:
        runs = read("run_times.json", folder).get("chapters", {})
    except HCRError:  # the first record, or a damaged one
        runs = {}
    # each chapter keeps the machine it ran on: the chapters are not always re-run together
    runs[Path(path).name] = {"command": command, "written": time.strftime("%Y-%m-%d"), "machine": machine(), **timing}
    return write("run_times.json", {"chapters": runs}, folder=folder)


def tidy_notebook(path):
    """Drop what changes at every run of a notebook although its content does not.

    Widget outputs (progress bars, the drawing pad) and the widget state behind them, which
    nothing can show without a running kernel; per-cell execution timestamps. Cell ids are
    kept; a cell without one gets an id made from its text, so it is the same at every run.
    """
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("widgets", None)
    seen = {cell.get("id") for cell in notebook.cells}
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if "outputs" in cell:
            cell.outputs = [out for out in cell.outputs
                            if "application/vnd.jupyter.widget-view+json" not in out.get("data", {})]
        if not cell.get("id"):
            cell_id = hashlib.sha1(cell.source.encode()).hexdigest()[:8]
            while cell_id in seen:
                cell_id = hashlib.sha1(cell_id.encode()).hexdigest()[:8]
            cell["id"] = cell_id
            seen.add(cell_id)
    notebook.nbformat_minor = max(notebook.nbformat_minor, 5)  # cell ids need nbformat 4.5
    nbformat.write(notebook, path)
    return Path(path)
