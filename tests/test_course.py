"""helpers.course: the one smoke-mode switch, the output folders, and the fonts' one sentence."""

import pytest

from helpers import course, font_characters, paths


@pytest.mark.parametrize("value, quick", [("1", True), ("0", False), ("", False), ("yes", False)])
def test_smoke_is_on_only_for_hcr_smoke_1(monkeypatch, value, quick):
    monkeypatch.setenv("HCR_SMOKE", value)
    assert course.smoke() is quick


def test_folders_are_the_projects_in_a_full_run_and_a_fresh_one_in_smoke_mode(monkeypatch):
    monkeypatch.setenv("HCR_SMOKE", "0")
    assert course.folders() == (paths.ASSETS, paths.RUNS)
    monkeypatch.setenv("HCR_SMOKE", "1")
    figures, runs = course.folders()
    assert figures == runs and figures.is_dir() and paths.PROJECT_DIR not in figures.parents


def test_missing_fonts_give_one_sentence_and_no_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(font_characters, "_cache", lambda seed: tmp_path / "none.npz")
    monkeypatch.setattr(font_characters, "font_paths", lambda: (_ for _ in ()).throw(
        font_characters.HCRError("npm is not installed: install Node.js (it brings npm).")))
    assert course.fonts_ready() is False
    printed = capsys.readouterr().out.strip()
    assert printed.count("\n") == 0 and printed.startswith("npm is not installed")
    assert "goes on without the font parts" in printed


def test_run_seconds_spans_the_first_cell_to_the_last_and_names_the_slowest(tmp_path):
    import nbformat

    from helpers import records

    notebook = nbformat.v4.new_notebook()
    for start, end in (("10:00:00", "10:00:05"), ("10:00:05", "10:02:05"), ("10:02:06", "10:03:00")):
        cell = nbformat.v4.new_code_cell("pass")
        cell.metadata["execution"] = {"iopub.execute_input": f"2026-12-02T{start}.000Z",
                                      "shell.execute_reply": f"2026-12-02T{end}.000Z"}
        notebook.cells.append(cell)
    notebook.cells.append(nbformat.v4.new_markdown_cell("no timestamps"))
    timing = records.run_seconds(notebook)
    assert timing["seconds"] == 180.0
    assert list(timing["slowest_cells"]) == ["1", "2", "0"] and timing["slowest_cells"]["1"] == 120.0
    path = tmp_path / "chapter.ipynb"
    nbformat.write(notebook, path)
    written = records.record_run_time(path, "make run", folder=tmp_path)
    assert records.read(written.name, tmp_path)["chapters"]["chapter.ipynb"]["seconds"] == 180.0


def test_a_record_written_back_carries_todays_date(tmp_path):
    import time

    from helpers import records

    records.write("some.json", {"written": "2001-01-01", "value": 1}, folder=tmp_path)
    record = records.read("some.json", tmp_path)
    assert record["written"] == time.strftime("%Y-%m-%d") and record["value"] == 1


def test_the_readme_quotes_the_recorded_chapter_times():
    import json

    from helpers import paths

    runs = json.loads((paths.ASSETS / "run_times.json").read_text())["chapters"]
    readme = (paths.PROJECT_DIR / "README.md").read_text()
    chapters = ("Handwritten_Character_Recognition.ipynb", "Upper_and_Lower_Case.ipynb",
                "Reading_Handwritten_Lines.ipynb")
    for name in chapters:
        minutes, seconds = divmod(round(runs[name]["seconds"]), 60)
        assert f"{minutes} min {seconds:02d} s" in readme, name
