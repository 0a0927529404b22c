"""helpers.course: the one smoke-mode switch, the output folders, and the fonts' one sentence."""

import pytest

from helpers import course, font_characters, paths


@pytest.mark.parametrize("value, quick", [("1", True), ("0", False), ("", False), ("yes", False)])
def test_smoke_is_on_only_for_hcr_smoke_1(monkeypatch, value, quick):
    monkeypatch.setenv("HCR_SMOKE", value)
    assert course.smoke() is quick
    assert course.pick(full=5000, quick=360) == (360 if quick else 5000)


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
