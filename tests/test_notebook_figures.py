"""Every figure reaches the page, and the chapters import only `helpers`.

A `matplotlib.figure.Figure` made without pyplot shows as text (`<Figure size ... with N Axes>`)
unless the inline backend is on, and nbval cannot notice because it does not compare images. So:
the first code cell of every chapter turns the inline backend on (`course.prepare_notebook`),
every cell that saves a figure ends with it (so the cell shows it), and, in the committed
notebooks, every such cell holds an `image/png` output. That last check needs the full runs
(`make run`, `make run-case`, `make run-lines`), which commit the outputs; it is marked `notebook`.
"""

import ast
import re

import nbformat
import pytest

from helpers import paths

CHARACTER_CHAPTERS = ("Handwritten_Character_Recognition.ipynb", "Upper_and_Lower_Case.ipynb")
CHAPTERS = (*CHARACTER_CHAPTERS, "Reading_Handwritten_Lines.ipynb")
MAKES_A_FIGURE = re.compile(r"\bplots\.save\(")


def code_cells(name):
    return [c for c in nbformat.read(paths.PROJECT_DIR / name, as_version=4).cells if c.cell_type == "code"]


def figure_cells(name):
    return [c for c in code_cells(name) if MAKES_A_FIGURE.search(c.source)]


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_first_cell_turns_the_inline_backend_on(name):
    assert "course.prepare_notebook(PROJECT_DIR" in code_cells(name)[0].source


def test_prepare_notebook_turns_the_inline_backend_on_in_a_kernel(monkeypatch, tmp_path):
    import IPython

    from helpers import course

    magics = []
    shell = type("Shell", (), {"run_line_magic": lambda self, *args: magics.append(args)})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    (tmp_path / "requirements.txt").write_text("torch==0\n")
    course.prepare_notebook(tmp_path)  # everything is installed here: nothing to install
    assert magics == [("matplotlib", "inline")]


@pytest.mark.parametrize("name", CHARACTER_CHAPTERS)
def test_every_figure_cell_ends_with_its_figure(name):
    cells = figure_cells(name)
    assert cells, "no figure cells found: has plots.save been renamed?"
    for cell in cells:
        last = ast.parse(cell.source).body[-1]
        assert isinstance(last, ast.Expr) and MAKES_A_FIGURE.search(ast.unparse(last)), cell.source[:120]
        assert not cell.source.rstrip().endswith(";"), cell.source[:120]  # a semicolon hides the figure


@pytest.mark.notebook
@pytest.mark.parametrize("name", [*CHARACTER_CHAPTERS, "Reading_Handwritten_Lines.ipynb"])
def test_committed_figure_cells_show_an_image(name):
    """Every cell that makes a figure shows it: the committed full run holds an image/png output."""
    blind = [c.source.splitlines()[0] for c in figure_cells(name)
             if not any("image/png" in out.get("data", {}) for out in c.outputs)]
    assert not blind, f"{len(blind)} figure cells of {name} show no image; run the chapter in full: {blind}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapters_import_only_helpers_and_read_the_smoke_switch_once(name):
    for cell in code_cells(name):
        assert not re.search(r"^\s*(from|import)\s+benchmarks\b", cell.source, re.M), cell.source[:120]
        assert not re.search(r"environ[^\n]*HCR_SMOKE", cell.source), cell.source[:120]  # course.smoke() reads it


def test_the_chapters_say_what_they_build_on_and_what_comes_next():
    first, second = (nbformat.read(paths.PROJECT_DIR / n, as_version=4).cells for n in CHARACTER_CHAPTERS)
    assert first[0].source.startswith("# Chapter 1.") and "Chapter 2" in first[0].source
    assert "What the next chapter adds" in first[-1].source and "Upper_and_Lower_Case.ipynb" in first[-1].source
    assert second[0].source.startswith("# Chapter 2.") and "Builds on chapter 1" in second[0].source
    assert "What the next chapter adds" in second[-1].source and "Reading_Handwritten_Lines.ipynb" in second[-1].source
    assert not any("62 classes" in c.source and c.cell_type == "code" for c in first)


def test_every_committed_figure_is_made_or_shown_somewhere():
    """A figure in assets/ that no chapter, test or benchmark writes and no page shows is a stale picture."""
    root = paths.PROJECT_DIR
    writers = [root / n for n in (*CHAPTERS, "README.md")] + sorted((root / "docs").glob("*.md")) \
        + [p for folder in ("tests", "benchmarks", "helpers") for p in sorted((root / folder).glob("*.py"))]
    text = "\n".join(p.read_text(encoding="utf-8") for p in writers if p.name != "test_notebook_figures.py")
    stale = [p.name for p in sorted(paths.ASSETS.glob("*.png")) if p.name not in text]
    assert not stale, f"nothing makes or shows {stale} any more: delete them, or make them again"
