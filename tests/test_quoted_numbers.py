"""Numbers that cannot drift: what the README, docs/ and the character chapters' prose quote is
checked against the records in assets/ that it comes from.

- `QUOTED`: the headline numbers, each with the record and key it comes from, and its rounding.
- Every other percentage with decimals in that prose must equal, at its rounding, some value in
  a record (a figure typed by hand and then left behind by a new run fails here). The lines
  chapter's figures, between `<!-- lines: begin -->` and `<!-- lines: end -->`, are checked by its
  own tests.
Prose that should not be bound to a run says it in words, and its cell prints the number.
"""

import json
import re

import nbformat
import pytest

from helpers import paths, records

ROOT = paths.PROJECT_DIR
CHAPTERS = ("Handwritten_Character_Recognition.ipynb", "Upper_and_Lower_Case.ipynb")
PAGES = ("README.md", "docs/results.md", "docs/data.md", "docs/web_demo.md", "docs/tests.md")

# quoted text -> (record, key path, decimals)
HELD_OUT = "results/ALL held-out fonts/"
QUOTED = {
    "99.56% of digits among digits": ("results.json", "digits_10way_acc", 2),
    "94.35% of letters among letters": ("results.json", "letters_26way_acc", 2),
    "89.39% strict of 36": ("results.json", "overall_acc", 2),
    "95.36% counting look-alikes |": ("results.json", "overall_tolerant_acc", 2),
    "91.82% strict, 96.72% counting look-alikes": [("generalisation.json", HELD_OUT + "strict_acc", 2),
                                                   ("generalisation.json", HELD_OUT + "tolerant_acc", 2)],
    "85.66% right case": ("case_results.json", "case_acc", 2),
    "89.94% with EMNIST's 47 classes": ("case_results.json", "bymerge_acc", 2),
    "90.40% any case": ("case_results.json", "nocase_acc", 2),
    "76.79% right case, 90.67% any case": [("generalisation_case.json", HELD_OUT + "case_acc", 2),
                                           ("generalisation_case.json", HELD_OUT + "nocase_acc", 2)],
}


def without_lines(text):
    return re.sub(r"<!-- lines: begin.*?<!-- lines: end -->", "", text, flags=re.S)


def prose():
    out = {name: without_lines((ROOT / name).read_text()) for name in PAGES if (ROOT / name).exists()}
    for name in CHAPTERS:
        cells = nbformat.read(ROOT / name, as_version=4).cells
        out[name] = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    return out


def value(record, key):
    node = records.read(record)
    for part in key.split("/"):
        node = node[part]
    return node


def numbers(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from numbers(v)
    elif isinstance(node, list):
        for v in node:
            yield from numbers(v)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield float(node)


@pytest.mark.parametrize("quote", list(QUOTED))
def test_headline_numbers_are_the_records(quote):
    readme = without_lines((ROOT / "README.md").read_text())
    assert quote in readme, f"README no longer quotes {quote!r}: update QUOTED with it"
    sources = QUOTED[quote] if isinstance(QUOTED[quote], list) else [QUOTED[quote]]
    shown = [float(n) for n in re.findall(r"(\d+\.\d+)%", quote)]
    assert len(shown) == len(sources)
    for number, (record, key, decimals) in zip(shown, sources):
        assert round(value(record, key), decimals) == number, (quote, record, key)


def stray_numbers(texts, recorded, units="%"):
    """'name: number' for each number with decimals and one of `units` in the texts that no recorded
    value equals at the rounding it is quoted with."""
    stray = []
    for name, text in texts.items():
        for number in re.findall(rf"(?<![\w.])(\d+\.\d+)\s?(?:{units})", text):
            decimals = len(number.split(".")[1])
            if not any(round(x, decimals) == float(number) for x in recorded):
                stray.append(f"{name}: {number}")
    return stray


def test_every_decimal_percentage_in_the_prose_is_in_a_record():
    recorded = {x for path in sorted(paths.ASSETS.glob("*.json")) for x in numbers(json.loads(path.read_text()))}
    stray = stray_numbers(prose(), recorded)
    assert not stray, f"quoted but in no record in assets/ (say it in words, or let a cell print it): {stray}"


def test_the_web_demo_load_figures_are_the_record():
    """docs/web_demo.md quotes the load test's record (assets/web_load.json), run by run."""
    text = (ROOT / "docs" / "web_demo.md").read_text()
    record = records.read("web_load.json")
    runs = record["runs"]
    p99 = ", ".join(str(r["p99_ms"]) for r in sorted(runs, key=lambda r: r["p99_ms"])[:-1])
    assert f"p99 {p99} and {max(r['p99_ms'] for r in runs)} ms" in text
    assert f"median **{record['p99_ms_median']:.0f} ms**" in text
    assert f"p50 {min(r['p50_ms'] for r in runs)}-{max(r['p50_ms'] for r in runs)} ms" in text
    requests = int(record["command"].split("--requests ")[1].split()[0]) * len(runs)
    assert f"**0 errors** in {requests:,}" in text
    assert record["errors"] == 0
    assert f"**{record['rss_mb_after_bombs_worst']} MB** after 100" in text
    assert f"({max(r['rss_mb_before'] for r in runs)} MB before)" in text
