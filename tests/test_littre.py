"""French prose for the language model: Littré's quotations read from a tiny dictzip file written
here (the real one is Debian's stardict-xmlittre), cut into lines, and the rules that decide
whether counting them, or mixing a model of them with the shipped one, ships."""

import gzip

import numpy as np
import pytest

from benchmarks import littre
from benchmarks.lines import WITHOUT_MIX, WITHOUT_PROSE, pick_by_val, pick_prose
from helpers.errors import HCRError

ENTRY = ('<i><small>(i-rré-zi-sti-bl\') adj.</small></i>\n    À quoi on ne peut résister. Une attaque irrésistible.\n'
         '<span foreground="#0000CD">Ce diable d\'homme a toujours ses poches pleines d\'arguments irrésistibles '
         '[d\'argent]</span>, <span foreground="#B22222">BEAUMARCH.</span>, '
         '<span foreground="#556B2F">Barb. de Sév. IV, 8</span>.\n'
         '<span foreground="#0000CD">Un vice</span>, <span foreground="#B22222">MOL.</span>\n'
         '<span foreground="#0000CD">Mon <i>cœur</i> &amp; ma\n sœur</span>, <span foreground="#B22222">SÉV.</span>\n')


def write_dictionary(path, text=ENTRY):
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write(text)
    return path


def test_only_the_quotations_are_taken_without_markup_or_littres_glosses(tmp_path):
    quotes = littre.quotations(write_dictionary(tmp_path / "x.dict.dz"))
    assert quotes == ["Ce diable d'homme a toujours ses poches pleines d'arguments irrésistibles",
                      "Mon coeur & ma soeur"]  # "Un vice" is too short; authors, works, definitions are left out


def test_a_missing_or_damaged_dictionary_says_how_to_install_it(tmp_path):
    with pytest.raises(HCRError, match="apt-get install stardict-xmlittre"):
        littre.quotations(tmp_path / "absent.dict.dz")
    (tmp_path / "bad.dict.dz").write_bytes(b"not gzip at all")
    with pytest.raises(HCRError, match="reinstall"):
        littre.quotations(tmp_path / "bad.dict.dz")


def test_quotations_are_cut_into_line_length_pieces_in_a_seeded_order():
    quotes = [" ".join(f"mot{i}x{j}" for j in range(40)) for i in range(30)]  # 30 quotations of 40 words
    pieces = littre.as_lines(quotes, chars=2_000, seed=3)
    assert pieces == littre.as_lines(quotes, chars=2_000, seed=3)
    assert pieces != littre.as_lines(quotes, chars=2_000, seed=4)
    assert 2_000 <= sum(map(len, pieces)) < 2_000 + 40 * 9  # stops after the quotation that passes the size
    assert all(len(p) <= 60 + 9 for p in pieces)  # a piece ends with the word that reaches its length
    taken = " ".join(pieces).split()
    by_quote = {}
    for word in taken:  # every quotation is cut whole and in its own order
        by_quote.setdefault(word.split("x")[0], []).append(int(word.split("x")[1]))
    assert all(v == list(range(40)) for v in by_quote.values())


def row(val):
    return {"val": {"cer": val}}


def test_prose_ships_only_with_0_3_points_on_val_that_the_fonts_and_the_clock_allow():
    grid = {WITHOUT_PROSE: row(15.0), "a": row(14.6), "b": row(14.7), "c": row(14.8)}
    guard = {WITHOUT_PROSE: 4.1, "a": 4.6, "b": 4.3, "c": 4.1}
    slower = {"a": 0.2, "b": 0.5, "c": 0.0}  # ms a line more than without prose
    asked = []

    def guard_cer(key):
        asked.append(key)
        return guard[key]

    # "a" gains 0.4 on val and costs the English lines 0.5: out; "b" gains 0.3 and costs 0.2: in
    assert pick_prose(grid, guard_cer, slower.get) == "b"
    assert "c" not in asked  # nothing is asked of what comes after the choice
    slower["b"] = 1.5  # too slow: the next one gains under 0.3, so nothing ships
    assert pick_prose(grid, guard_cer, slower.get) is None
    assert pick_prose({WITHOUT_PROSE: row(15.0), "b": row(14.9)}, guard_cer, slower.get) is None


def test_quotations_that_copy_a_val_or_test_line_are_left_out():
    lines = ["arrachent a vil prix ses meilleures productions", "Le chat"]
    quotes = ["Ils ARRACHENT A VIL PRIX ses tableaux", "arrachent a vil pri", "Le chat dort sur le tapis du salon"]
    # the first shares 20 characters with a line (case aside); the second is a run of 19; "Le chat" is short
    assert littre.without_overlap(quotes, lines) == quotes[1:]


def test_a_mix_ships_only_with_0_3_points_on_val_that_the_fonts_and_the_clock_allow():
    grid = {WITHOUT_MIX: row(15.0), "a": row(14.5), "b": row(14.6), "c": row(14.69), "d": row(14.9)}
    guard = {WITHOUT_MIX: 4.1, "a": 4.2, "b": 4.7, "c": 4.2, "d": 4.0}
    slow = {"a": True, "b": False, "c": False, "d": False}  # a 20-character line in 50 ms or more
    asked = []

    def too_slow(key):
        asked.append(key)
        return slow[key]

    # "a" reads val best but is too slow; "b" costs the English lines 0.6 for 0.4; "c" gains 0.31 for 0.1
    assert pick_by_val(grid, WITHOUT_MIX, guard.get, too_slow) == "c"
    assert asked == ["a", "c"] and "d" not in asked  # the clock is asked only past the guard, and never after
    slow["c"] = True  # then "d" gains under 0.3: nothing ships
    assert pick_by_val(grid, WITHOUT_MIX, guard.get, too_slow) is None


def test_mix_starts_again_from_the_first_model_of_a_shipped_mix(tmp_path):
    from benchmarks.lines import base_model
    from helpers.decoding import CharLM, MixedLM

    first = CharLM(["the cat sat", "le chat"], order=3, smoothing="kneser-ney")
    prose = CharLM(["il etait une fois"], order=3, smoothing="kneser-ney")
    first.save(tmp_path / "alone.npz", 0.6, 1.5)
    assert base_model(tmp_path / "alone.npz")[1:] == (0.6, 1.5)
    MixedLM([first, prose], [0.75, 0.25]).save(tmp_path / "mix.npz", 0.6, 2.5, alone={"weight": 0.6, "bonus": 1.5})
    lm, weight, bonus = base_model(tmp_path / "mix.npz")
    assert (weight, bonus) == (0.6, 1.5) and np.array_equal(lm.keys, first.keys)
    MixedLM([first, prose], [0.75, 0.25]).save(tmp_path / "mute.npz", 0.6, 2.5)
    with pytest.raises(HCRError, match="score --ship-lm"):
        base_model(tmp_path / "mute.npz")
