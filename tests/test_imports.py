"""The helpers' imports point one way: no module imports, even inside a function, one that imports it back;
chapter 1's modules never import chapter 3's, and no model imports the apps on top (predict, webapp, drawpad)."""

import ast
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent.parent / "helpers"


def imports(path):
    """The helpers modules that `path` imports anywhere in it (top level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                names.add(node.module.split(".")[0])
            else:
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("helpers."))
    return names & {p.stem for p in HELPERS.glob("*.py")}


def graph():
    return {p.stem: imports(p) - {p.stem} for p in HELPERS.glob("*.py") if p.stem != "__init__"}


def cycle(edges):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_helpers_have_no_import_cycle():
    found = cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found)


@pytest.mark.parametrize("earlier", ["preprocess", "framing", "model", "training", "data", "checkpoint", "evaluation"])
def test_chapter_one_modules_do_not_import_the_line_reader(earlier):
    assert not {"crnn", "line_training", "lines", "real_lines", "page", "decoding"} & imports(HELPERS / f"{earlier}.py")


@pytest.mark.parametrize("model_module", ["crnn", "line_training", "model", "training", "lines", "real_lines", "page"])
def test_models_do_not_import_the_apps_that_use_them(model_module):
    """predict (command line and API), webapp and drawpad sit on top: they load every chapter's model."""
    assert not {"predict", "webapp", "drawpad"} & imports(HELPERS / f"{model_module}.py")


def test_the_readme_layout_names_every_helper_module():
    from helpers import paths

    readme = (paths.PROJECT_DIR / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `helpers/` |"))
    modules = sorted(p.stem for p in (paths.PROJECT_DIR / "helpers").glob("*.py") if p.stem != "__init__")
    assert [m for m in modules if f"`{m}`" not in row] == []
