"""The line reader's quoted figures (README's lines sections, docs/lines.md, chapter 3's prose) are
the records' (assets/lines.json, lines_mix.json, peers.json and the others below), at the rounding
they are quoted with."""

import json
import re

import nbformat

from helpers import paths, records

from .test_quoted_numbers import numbers, stray_numbers  # every number in a record; the quoted ones not in any

ROOT = paths.PROJECT_DIR
RECORDS = ("lines.json", "peers.json", "lines_sources.json", "lines_designs.json", "lines_balance.json", "pages.json",
           "line_crops.json", "lines_script.json", "lines_lexicon.json", "lines_lexicon_first_run.json",
           "lines_shifts.json", "lines_earlier_score_runs.json", "lines_finetunes.json", "lines_robust.json",
           "lines_robust_softened.json", "lines_prose_first_run.json",
           "lines_prose.json", "lines_mix.json")


def quoted_texts():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- lines: begin.*?<!-- lines: end -->", readme, flags=re.S)
    chapter = nbformat.read(ROOT / "Reading_Handwritten_Lines.ipynb", as_version=4).cells
    prose = "\n".join(c.source for c in chapter if c.cell_type == "markdown")
    return {"README.md": "\n".join(blocks), "docs/lines.md": (ROOT / "docs" / "lines.md").read_text(),
            "chapter 3": prose}


# The targets, quoted as targets (not measured): the synthetic-only reader's 5.4% on the synthetic test lines.
TARGETS = (5.4,)


def test_every_quoted_line_figure_is_in_its_record():
    recorded = {x for name in RECORDS for x in numbers(json.loads((paths.ASSETS / name).read_text()))}
    recorded |= set(TARGETS)
    stray = stray_numbers(quoted_texts(), recorded, units="%|ms")
    assert not stray, f"quoted but not in assets/lines.json or peers.json: {stray}"


def test_the_readme_quotes_the_real_test_split_for_every_engine():
    peers = json.loads((paths.ASSETS / "peers.json").read_text())["engines"]
    readme = "\n".join(re.findall(r"<!-- lines: begin.*?<!-- lines: end -->", (ROOT / "README.md").read_text(),
                                  flags=re.S))
    for engine in peers.values():
        assert f"{engine['real handwriting, test split']['cer']:.2f}%" in readme


def test_scores_table_shows_each_scored_set_and_nothing_else():
    from helpers import records

    set_scores = {"lines": 3, "cer": 12.346, "cer_ignore_case": 10.0, "word_acc": 50.0, "line_acc": 33.333}
    record = {"scores": {"real test": set_scores, "beam_search": {"setting": [0.6, 1.5], "cer": 9.0},
                         "fonts": dict(set_scores, cer=4.0)}}
    table = records.scores_table(record)
    assert list(table.index) == ["real test", "fonts"] and table.loc["real test", "cer"] == 12.35
    assert list(records.scores_table(record, names=["fonts"]).index) == ["fonts"]


def test_beam_grid_table_lays_out_every_setting_tried_once():
    import pytest

    from helpers import records

    record = {"scores": {"beam_search": {"val_grid": {
        "greedy": 21.0, "beam weight 0.2 bonus 0.5": 18.0, "beam weight 0.2 bonus 1.5": 17.5,
        "beam weight 0.45 bonus 0.5 order 6 Kneser-Ney": 17.0,
        "beam weight 0.6 bonus 1.5 order 7 Kneser-Ney width 16": 15.8}}}}
    table = records.beam_grid_table(record)
    assert table.loc[("order 5", 0.2), 1.5] == 17.5 and table.loc[("order 6 Kneser-Ney", 0.45), 0.5] == 17.0
    assert table.loc[("order 7 Kneser-Ney, width 16", 0.6), 1.5] == 15.8
    assert int(table.notna().sum().sum()) == 4  # greedy is not a beam setting
    record["scores"]["beam_search"]["val_grid"]["dev fonts, beam weight 0.2 bonus 0.5"] = 4.0  # a guard, not a setting
    assert int(records.beam_grid_table(record).notna().sum().sum()) == 4
    record["scores"]["beam_search"]["val_grid"]["beam weight wide"] = 1.0
    with pytest.raises(ValueError, match="beam weight wide"):
        records.beam_grid_table(record)


def test_finetunes_table_names_each_run_by_what_it_changed():
    record = {"main_run": "build/main.pt", "runs": {
        "build/main.pt": {"command": "python -m benchmarks.lines train --init-from x.pt --out build/main.pt",
                          "seconds_in_all": 3000.0, "greedy": {"cer": 21.0},
                          "beam": {"cer": 15.0, "per_collection": 23.0}},
        "build/ft.pt": {"command": "python -m benchmarks.lines train --init-from checkpoints/lines.pt --choose-by "
                                   "val_macro_cer --quiet --lr 5e-4 --seed 1 --out build/ft.pt",
                        "seconds_in_all": 290.0, "greedy": {"cer": 20.5},
                        "beam": {"cer": 14.8, "per_collection": 22.9}},
        "build/bare.pt": {"command": None, "seconds_in_all": None, "greedy": {"cer": 22.0},
                          "beam": {"cer": 16.0, "per_collection": 24.0}}}}
    table = records.finetunes_table(record)
    assert list(table.index) == ["the main run (shipped)", "--lr 5e-4 --seed 1", "build/bare.pt"]
    assert table.loc["--lr 5e-4 --seed 1", "val beam"] == 14.8
    assert table.loc["the main run (shipped)", "seconds in all"] == 3000.0


def test_finetunes_table_reads_the_record():
    record = json.loads((paths.ASSETS / "lines_finetunes.json").read_text())
    table = records.finetunes_table(record)
    assert len(table) == len(record["runs"]) == len(set(table.index))
    assert table["val beam"].min() == min(r["beam"]["cer"] for r in record["runs"].values())

