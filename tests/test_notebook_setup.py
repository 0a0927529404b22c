"""The chapters' setup and the commands around them.

Each chapter must start from any working directory and in Colab, compare only outputs that do
not depend on the copy of the data, and `make run` must name missing data plainly and leave
the notebook unchanged when its content is.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest

from helpers import data, paths, preprocess, records, strokes

ROOT = paths.PROJECT_DIR
NOTEBOOK = ROOT / "Handwritten_Character_Recognition.ipynb"
CASE_NOTEBOOK = ROOT / "Upper_and_Lower_Case.ipynb"
LINES_NOTEBOOK = ROOT / "Reading_Handwritten_Lines.ipynb"
CHAPTERS = (NOTEBOOK, CASE_NOTEBOOK, LINES_NOTEBOOK)
CHARACTER_CHAPTERS = (NOTEBOOK, CASE_NOTEBOOK)
VENV = Path(sys.executable).parent.parent
COPY_SPECIFIC = ("88407", "88,407", "143,407", "148,407", "124,800", "124800")


def notebook(path=NOTEBOOK):
    return nbformat.read(path, as_version=4)


def first_cell(path=NOTEBOOK):
    return next(c for c in notebook(path).cells if c.cell_type == "code")


def repo_url():
    return re.search(r'REPO_URL = "([^"]+)"', first_cell().source).group(1)


def hide_helpers(monkeypatch):
    """As if `helpers` were neither installed nor next to the working directory."""
    monkeypatch.setitem(sys.modules, "helpers.paths", None)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)


def no_subprocess(*args, **kwargs):
    raise AssertionError(f"nothing should be installed or cloned here: {args}")


# --- The first cell finds the project, or fetches it in Colab ------------------------------------


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_finds_the_project_from_a_subfolder(chapter, monkeypatch):
    hide_helpers(monkeypatch)
    monkeypatch.chdir(ROOT / "tests")
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    namespace = {}
    exec(first_cell(chapter).source, namespace)
    assert namespace["PROJECT_DIR"] == ROOT
    assert sys.path[0] == str(ROOT)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_finds_the_project_from_the_notebook_path_jupyter_gives(chapter, monkeypatch, tmp_path):
    hide_helpers(monkeypatch)
    monkeypatch.chdir(tmp_path)  # Jupyter started somewhere else
    monkeypatch.setenv("JPY_SESSION_NAME", str(chapter))
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    namespace = {}
    exec(first_cell(chapter).source, namespace)
    assert namespace["PROJECT_DIR"] == ROOT


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_without_the_project_says_what_to_do(chapter, monkeypatch, tmp_path):
    hide_helpers(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    with pytest.raises(ImportError, match="open the notebook in its project folder"):
        exec(first_cell(chapter).source, {})


@pytest.mark.parametrize("chapter", CHARACTER_CHAPTERS, ids=lambda p: p.stem)
def test_first_cell_in_colab_clones_the_project_and_installs_what_is_missing(chapter, monkeypatch, tmp_path):
    import importlib.util

    from helpers import course  # noqa: F401 (loaded before helpers is hidden, as a clone's would be)

    hide_helpers(monkeypatch)
    monkeypatch.chdir(tmp_path)
    widgets = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: widgets.append("on"))
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    calls = []

    def fake_run(command, check):
        calls.append(command)
        if command[:2] == ["git", "clone"]:  # what a clone leaves: the package and the pins
            clone = Path(command[-1])
            (clone / "helpers").mkdir(parents=True)
            (clone / "helpers" / "paths.py").write_text("")
            shutil.copy(ROOT / "requirements.txt", clone / "requirements.txt")

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "anywidget" else find_spec(name))
    source = first_cell(chapter).source.replace('Path("/content")', f'Path("{tmp_path}")')  # Colab's folder
    assert source != first_cell(chapter).source
    namespace = {}
    exec(source, namespace)

    clone = tmp_path / "handwritten-character-recognition"
    assert calls[0] == ["git", "clone", "--depth", "1", repo_url(), str(clone)]
    pin = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("anywidget=="))
    assert calls[1] == [sys.executable, "-m", "pip", "install", "--quiet", pin]
    assert len(calls) == 2 and namespace["PROJECT_DIR"] == clone and sys.path[0] == str(clone)
    assert widgets == ["on"]  # the drawing pad needs Colab's custom widget manager


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_readme_opens_each_chapter_in_colab_from_the_same_repository(chapter):
    assert re.search(r'REPO_URL = "([^"]+)"', first_cell(chapter).source).group(1) == repo_url()
    owner_and_name = repo_url().removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{owner_and_name}/blob/main/{chapter.name}"
    assert link in (ROOT / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHARACTER_CHAPTERS, ids=lambda p: p.stem)
def test_notebook_setup_runs_from_another_working_directory(chapter, monkeypatch, tmp_path):
    """The first cells in a real kernel started in /tmp: assets/ and runs/ are the project's."""
    from nbclient import NotebookClient

    cells = [c for c in notebook(chapter).cells if c.cell_type == "code"][:3]  # find the project, imports, settings
    check = nbformat.v4.new_code_cell(
        "assert FIGURES == paths.ASSETS and RUNS == paths.RUNS, (FIGURES, RUNS)\n"
        "print(FIGURES.relative_to(paths.PROJECT_DIR), RUNS.relative_to(paths.PROJECT_DIR))")
    trimmed = nbformat.v4.new_notebook(cells=[*cells, check])
    monkeypatch.setenv("HCR_SMOKE", "0")  # the full run's folders; these cells write nothing
    monkeypatch.setenv("JPY_SESSION_NAME", str(chapter))  # as Jupyter tells the kernel
    monkeypatch.setenv("HCR_DATA_DIR", str(tmp_path))
    kernel_folder = {"metadata": {"path": str(tmp_path)}}  # the working directory: not the project
    NotebookClient(trimmed, timeout=120, kernel_name="python3", resources=kernel_folder).execute()
    printed = "".join(o.get("text", "") for c in trimmed.cells for o in c.outputs)
    assert "assets runs" in printed
    assert str(ROOT) not in printed and str(tmp_path) not in printed  # no absolute path in the outputs
    assert "data folder: $HCR_DATA_DIR" in printed and "12 data files missing" in printed


@pytest.mark.slow
def test_predict_runs_from_another_working_directory(tmp_path):
    """Needs `pip install -e .`, which `make` does after requirements.txt."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "helpers.predict", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


# --- Compare only what does not depend on the copy of the data -----------------------------------


def compared(cell):
    """Whether nbval compares this cell's outputs (tags or the older comment markers say it does not)."""
    tags = set(cell.metadata.get("tags", []))
    return (cell.cell_type == "code" and not tags & {"nbval-ignore-output", "nbval-skip"}
            and not re.search(r"NBVAL_(IGNORE_OUTPUT|SKIP)", cell.source))


@pytest.mark.parametrize("chapter", sorted(ROOT.glob("*.ipynb")), ids=lambda p: p.stem)
def test_some_outputs_are_compared_and_some_are_not(chapter):
    """The tags reach nbval: a chapter whose every cell were compared, or none, has lost them."""
    code = [c for c in notebook(chapter).cells if c.cell_type == "code"]
    assert 0 < sum(map(compared, code)) < len(code)


@pytest.mark.parametrize("chapter", CHARACTER_CHAPTERS, ids=lambda p: p.stem)
def test_compared_outputs_hold_nothing_specific_to_our_copy_of_emnist(chapter):
    for cell in filter(compared, notebook(chapter).cells):
        text = json.dumps(cell.outputs)
        assert not any(number in text for number in COPY_SPECIFIC), cell.source[:80]
        assert "letters_train.labels[:" not in cell.source  # which letters come first depends on the copy


def test_nothing_claims_our_test_letters_are_the_official_ones():
    texts = [c.source for chapter in CHARACTER_CHAPTERS for c in notebook(chapter).cells]
    texts += [(ROOT / "README.md").read_text()]
    for text in texts:
        assert not re.search(r"same\s+20,800\s+test", text)


# --- Missing data is named at once, with the fix -------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """No network: downloads fail at once instead of reaching a server."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)


def make(*arguments, **env):
    """`make` with this test's virtual environment taken as built; `arguments` are targets and NAME=value."""
    return subprocess.run(["make", "-s", "-o", f"{VENV}/installed", f"VENV={VENV}", *arguments], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_without_data_names_every_missing_file_first_and_stops(offline, tmp_path):
    (tmp_path / "data").mkdir()  # an empty data folder: a folder that does not exist is refused before this
    done = make("run", HCR_DATA_DIR=str(tmp_path / "data"))
    assert done.returncode != 0
    assert "NbConvertApp" not in done.stdout + done.stderr  # stopped before the notebook
    assert "Traceback" not in done.stderr
    message = done.stderr.splitlines()[0]
    wanted = [*data.MNIST_FILES[True], *data.MNIST_FILES[False], *data.EMNIST_FILES[True], *data.EMNIST_FILES[False]]
    assert all(name in message for name in wanted), message


@pytest.mark.slow
def test_pytest_says_why_the_notebook_is_skipped(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HCR_REQUIRE_DATA"}
    done = subprocess.run([sys.executable, "-m", "pytest", NOTEBOOK.name, "-q"], cwd=ROOT,
                          env={**env, "HCR_DATA_DIR": str(tmp_path)}, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    skipped = re.search(r"SKIPPED \[\d+\] .*", done.stdout).group(0)
    assert "12 MNIST and EMNIST data files are missing" in skipped and "HCR_DATA_DIR" in skipped


# --- `make run` changes only what changed ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_is_quiet_and_rewrites_nothing_that_did_not_change(tmp_path):
    root = tmp_path / "data"
    for path in data.missing_files(root, kinds=data.ALL_KINDS):  # present (empty) files: the data check passes
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    small = tmp_path / "small.ipynb"
    cells = [nbformat.v4.new_code_cell("print('hello')"),
             nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider()")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), small)

    first = make("-o", "fonts-optional", "run", f"NOTEBOOK={small}", f"RECORDS={tmp_path}",  # no fonts needed here
                 HCR_DATA_DIR=str(root))
    assert first.returncode == 0, first.stderr
    assert "without encryption" not in first.stderr  # no kernel TCP warning
    once = small.read_bytes()
    again = make("-o", "fonts-optional", "run", f"NOTEBOOK={small}", f"RECORDS={tmp_path}", HCR_DATA_DIR=str(root))
    assert again.returncode == 0, again.stderr
    assert small.read_bytes() == once

    result = nbformat.read(small, as_version=4)
    assert "widgets" not in result.metadata
    assert [c.id for c in result.cells] == [c.id for c in cells]
    assert result.cells[0].outputs[0].text == "hello\n"
    assert result.cells[1].outputs == []  # a widget cannot be shown without a kernel
    assert all("execution" not in c.metadata for c in result.cells)
    assert "small.ipynb" in (tmp_path / "run_times.json").read_text()  # the test's own record, not assets/


def test_tidy_notebook_gives_missing_ids_that_stay_the_same(tmp_path):
    path = tmp_path / "old.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("same"),
                                               nbformat.v4.new_markdown_cell("same")])
    notebook.nbformat_minor = 4
    for cell in notebook.cells:
        del cell["id"]
    path.write_text(json.dumps(notebook))
    records.tidy_notebook(path)
    ids = [c.id for c in nbformat.read(path, as_version=4).cells]
    assert len(set(ids)) == 2
    path.write_text(json.dumps(notebook))
    records.tidy_notebook(path)
    assert [c.id for c in nbformat.read(path, as_version=4).cells] == ids


# --- The chapters' logic lives in helpers ---------------------------------------------------------


def summary(acc):
    return {"digits_acc": acc, "letters_acc": acc, "overall_acc": acc, "test_images": {"digits": 3, "letters": 4}}


def test_write_results_records_the_run_stamped_like_every_record(tmp_path):
    from helpers.training import DEFAULT_RECIPE

    result = records.write_results(summary(98.0), without_prior=summary(95.0), baseline=summary(90.0), digit_prior=1.3,
                                   model_name="compact", parameters=1234, recipe=DEFAULT_RECIPE, train_seconds=175.06,
                                   baseline_train_seconds=234.71, baseline_epochs=2, device="cpu", folder=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())  # the file itself, as git and the README see it
    assert saved == result
    assert saved["command"] == "make run" and re.fullmatch(r"\d{4}-\d\d-\d\d", saved["written"])
    assert saved["overall_acc"] == 98.0 and saved["test_images"] == {"digits": 3, "letters": 4}
    assert saved["without_digit_prior"]["overall_acc"] == 95.0 and "test_images" not in saved["baseline"]
    assert saved["epochs"] == DEFAULT_RECIPE.epochs and saved["recipe"] == DEFAULT_RECIPE.to_dict()
    assert saved["train_seconds"] == 175.1 and saved["digit_prior"] == 1.3
    assert saved["baseline_epochs"] == 2 and saved["baseline_train_seconds"] == 234.7


def test_records_name_the_benchmarks_as_modules():
    for name, command in records.MADE_BY.items():
        module = re.fullmatch(r"python -m benchmarks\.\w+( --?[\w-]+| [\w./-]+)*", command)
        assert command.startswith("make run") or module, name


@pytest.mark.parametrize("kind", ["phone photo", "transparent drawing"])
def test_pictures_made_for_the_notebook_are_prepared_like_the_clean_drawing(kind):
    rng = np.random.default_rng(3)
    clean = strokes.render(strokes.wobbly_strokes("R", rng), canvas=240, width=16)
    picture = strokes.fake_photo(clean, rng) if kind == "phone photo" else strokes.on_transparent(clean)
    assert picture.mode == ("RGB" if kind == "phone photo" else "RGBA") and picture.size == clean.size
    if kind == "phone photo":
        grey = np.asarray(picture.convert("L"), dtype=float)
        assert grey.std() > 0 and np.ptp(grey[np.asarray(clean) == 255]) > 20  # uneven light, noise
    seen, expected = preprocess.prepare(picture).image, preprocess.prepare(clean).image
    assert np.corrcoef(np.ravel(seen), np.ravel(expected))[0, 1] > 0.9



def test_every_chapter_is_tested_and_has_its_make_target():
    ini = (ROOT / "pytest.ini").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for chapter, target in zip(CHAPTERS, ("run", "run-case", "run-lines")):
        assert chapter.name in re.search(r"testpaths = (.*)", ini).group(1)
        rule = rf"^{target}: .*\n\t\$\(call execute,\$\(\w*NOTEBOOK\),make {target}\)"
        assert re.search(rule, makefile, re.M), target
