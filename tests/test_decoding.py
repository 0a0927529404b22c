"""Beam search with a character language model: the LM is a distribution, the beam follows it
only where the reader hesitates, and the shipped file loads safely."""

import io
import json
import math
import re
import zipfile

import numpy as np
import pytest
import torch

from helpers import alphabet, crnn, decoding, lines, real_lines
from helpers.alphabet import ALPHABET, BLANK
from helpers.decoding import CharLM, beam_decode
from helpers.errors import HCRError

TEXTS = ["the cat sat", "a cat ate", "cats eat", "the hat"]


def columns(*rows):
    """Logits (T, classes) whose softmax puts the given probabilities on the given characters."""
    out = torch.full((len(rows), len(ALPHABET) + 1), 1e-6)
    for t, row in enumerate(rows):
        for char, p in row.items():
            out[t, BLANK if char is None else ALPHABET.index(char) + 1] = p
    return torch.log(out / out.sum(1, keepdim=True))


@pytest.mark.parametrize("smoothing", decoding.SMOOTHINGS)
def test_the_language_model_is_a_distribution_over_the_next_character(smoothing):
    lm = CharLM(TEXTS, smoothing=smoothing)
    for history in ("", "the c", "zzz", "a cat at"):
        total = sum(math.exp(lm.logprob(history, c)) for c in list(ALPHABET) + ["\n"])
        assert total == pytest.approx(1.0, abs=1e-6), history
    assert lm.logprob("the c", "a") > lm.logprob("the c", "q")


def test_without_the_model_the_beam_reads_what_greedy_reads():
    logits = columns({"c": 0.9}, {None: 0.9}, {"a": 0.8, "o": 0.2}, {"t": 0.7, None: 0.3}, {"t": 0.6})
    greedy = crnn.greedy_decode(logits[None])[0][0]
    assert greedy == "cat"
    assert beam_decode(logits, CharLM(TEXTS), weight=0.0, bonus=0.0)[0] == greedy


@pytest.mark.parametrize("width", [1, 4, 16])
def test_skipping_blank_columns_changes_no_reading(width):
    """Peaky random readings (mostly blank columns, as CTC gives): the quick pass reads exactly as the plain search."""
    rng = np.random.default_rng(width)
    lm = CharLM(TEXTS, order=3)
    for _ in range(20):
        rows = []
        for _ in range(int(rng.integers(5, 40))):
            if rng.random() < 0.6:
                rows.append({None: 0.9999})
            else:
                chars = rng.choice(list("thecasto "), size=2, replace=False)
                rows.append({chars[0]: float(rng.uniform(0.3, 0.9)), chars[1]: 0.05, None: 0.05})
        logits = columns(*rows)
        assert beam_decode(logits, lm, 0.5, 1.0, beam=width) == beam_decode(logits, lm, 0.5, 1.0, beam=width,
                                                                              skip_blanks=False)


def plain_beam(logits, lm, weight, bonus, beam, words=None, penalty=0.0, prune=1e-3):
    """The CTC prefix beam search written out plainly, with dicts and whole-text scores: what
    `beam_decode`'s arrays must reproduce."""
    log_probs, inf = torch.log_softmax(logits.float(), dim=-1).numpy(), -math.inf

    def lm_score(text):
        return sum(lm.logprob(text[:i], text[i]) for i in range(len(text)))

    def missed(text, finished_only=True):  # words of 2 letters or more, not in the list, that have ended
        runs = [(m.group(), m.end()) for m in re.finditer(f"[{re.escape(''.join(decoding.LETTERS))}]+", text)]
        return sum(penalty for word, end in runs if len(word) >= 2 and word.lower() not in words
                   and (end < len(text) or not finished_only)) if words is not None else 0.0

    beams = {"": (0.0, inf)}
    for row in log_probs:
        new = {}
        for prefix, (pb, pnb) in beams.items():
            total = np.logaddexp(pb, pnb)
            for c in np.flatnonzero(row > math.log(prune)):
                p = float(row[c])
                if c == BLANK:
                    entry = new.setdefault(prefix, [inf, inf])
                    entry[0] = np.logaddexp(entry[0], total + p)
                    continue
                extended = prefix + ALPHABET[c - 1]
                entry = new.setdefault(extended, [inf, inf])
                if prefix and prefix[-1] == ALPHABET[c - 1]:
                    entry[1] = np.logaddexp(entry[1], pb + p)
                    same = new.setdefault(prefix, [inf, inf])
                    same[1] = np.logaddexp(same[1], pnb + p)
                else:
                    entry[1] = np.logaddexp(entry[1], total + p)
        ranked = sorted(new.items(), key=lambda kv: -(np.logaddexp(*kv[1]) + weight * lm_score(kv[0])
                                                      + bonus * len(kv[0]) - missed(kv[0])))
        beams = {k: tuple(v) for k, v in ranked[:beam]}
    return max(beams, key=lambda k: np.logaddexp(*beams[k]) + weight * (lm_score(k) + lm.logprob(k, "\n"))
               + bonus * len(k) - missed(k, finished_only=False))


@pytest.mark.parametrize("words", [None, frozenset({"the", "cat", "hat"})])
def test_the_beam_search_reads_what_the_plain_search_reads(words):
    lm, rng = CharLM(TEXTS, order=4), np.random.default_rng(1)
    for _ in range(12):
        rows = []
        for _ in range(int(rng.integers(6, 16))):  # hesitant columns over a few letters, repeats and blanks
            chars = rng.choice(list("thecas. "), size=3, replace=False).tolist() + [None]
            weights = rng.dirichlet(np.ones(4) * 0.7)
            rows.append(dict(zip(chars, weights)))
        logits = columns(*rows)
        for width in (2, 5):
            expected = plain_beam(logits, lm, 0.7, 0.8, width, words, 1.5)
            assert beam_decode(logits, lm, 0.7, 0.8, beam=width, words=words, penalty=1.5)[0] == expected


def test_a_prune_above_every_class_keeps_the_likeliest():
    logits = columns({"c": 0.5, None: 0.3, "a": 0.2}, {None: 0.6, "a": 0.4}, {"t": 0.5, None: 0.5})
    assert beam_decode(logits, CharLM(TEXTS), 0.0, 0.0, beam=4, prune=0.9)[0] == "c"


def test_the_model_settles_what_the_reader_hesitates_over():
    logits = columns({"c": 0.9}, {"o": 0.5, "a": 0.45}, {"t": 0.9})
    assert crnn.greedy_decode(logits[None])[0][0] == "cot"
    assert beam_decode(logits, CharLM(TEXTS), weight=1.0, bonus=0.5)[0] == "cat"
    sure = columns({"c": 0.9}, {"o": 0.98, "a": 0.01}, {"t": 0.9})
    assert beam_decode(sure, CharLM(TEXTS), weight=0.3, bonus=0.5)[0] == "cot"  # a clear letter stays


def test_a_word_list_settles_what_the_letters_around_cannot():
    """"hat" and "hot" are both likely letter by letter; only the whole word says which one is French or
    English. A word the list lacks costs the penalty when it ends, at a space or at the end of the line."""
    lm = CharLM(TEXTS, order=2)  # weight 0 below: the letters alone, as the reader sees them, then the words
    logits = columns({"h": 0.9}, {"o": 0.55, "a": 0.4}, {"t": 0.9})
    assert beam_decode(logits, lm, 0.0, 0.5)[0] == "hot"
    assert beam_decode(logits, lm, 0.0, 0.5, words=frozenset({"hat"}), penalty=0.0)[0] == "hot"
    assert beam_decode(logits, lm, 0.0, 0.5, words=frozenset({"hat"}), penalty=2.0)[0] == "hat"
    spaced = columns({"h": 0.9}, {"o": 0.55, "a": 0.4}, {"t": 0.9}, {" ": 0.9}, {"x": 0.9})
    assert beam_decode(spaced, lm, 0.0, 0.5, words=frozenset({"hat"}), penalty=2.0)[0] == "hat x"  # a space ends it
    with pytest.raises(HCRError, match="penalty"):
        beam_decode(logits, lm, 0.0, 0.5, words=frozenset({"hat"}), penalty=float("inf"))
    assert beam_decode(logits, lm, 0.0, 0.5, words=frozenset({"hot", "hat"}), penalty=2.0)[0] == "hot"


def test_the_word_list_can_leave_out_the_test_lines_words(tmp_path):
    from .test_real_lines_and_pages import HEADER

    folder = tmp_path / "handwritten_lines"
    folder.mkdir()
    (folder / "manifest.tsv").write_text(HEADER + "lines/a/1.jpg\tNotaire Dupont, 1832\ta\tp\tw\ttrain\n"
                                         "lines/a/2.jpg\tZorglub\ta\tp\tw\tval\n", encoding="utf-8")
    manifest = real_lines.read_manifest(tmp_path)
    words = decoding.word_list(manifest, size=2000, test_words=False)
    assert {"notaire", "dupont"} <= words and "zorglub" not in words and "1832" not in words
    import wordfreq

    tokens = [t for language in ("fr", "en") for t in wordfreq.top_n_list(language, 2000)]
    pieces = {w for t in tokens if lines.in_split(t, "train")
              for w in decoding.WORD.findall(alphabet.fold(t)[0].lower())}
    assert words - {"notaire", "dupont"} <= pieces  # training words, folded and cut, and nothing else
    held_out = {t for t in tokens if t.isalpha() and not lines.in_split(t, "train")} - pieces
    assert held_out and not held_out & words  # the synthetic test lines' words stay out
    assert all(w == w.lower() and all(c in decoding.LETTERS for c in w) for w in words)
    shipped = decoding.word_list(manifest, size=2000)  # the users' list: every word wordfreq gave
    assert words < shipped and held_out <= shipped and "zorglub" not in shipped
    full = decoding.word_list(manifest, size=20_000)
    if lines.in_split("cœur", "train"):
        assert "coeur" in full  # folded as the transcriptions are
    if lines.in_split("aujourd'hui", "train"):
        assert {"aujourd", "hui"} <= full  # cut where the beam search cuts a word


def reference_logprob(texts, order, discount, smoothing, history, char):
    """The interpolated n-gram probability written out plainly, with dicts, to check the arrays against."""
    from collections import Counter, defaultdict

    def other(text):  # every character outside the alphabet is one and the same "other"
        return "".join(c if c in ALPHABET or c == decoding.START else "\x00" for c in text)

    texts, history, char = [other(t) for t in texts], other(history), other(char) if char != "\n" else char
    counts = [defaultdict(Counter) for _ in range(order)]
    for text in texts:
        padded = decoding.START * (order - 1) + text + "\n"
        for i in range(order - 1, len(padded)):
            for k in range(order):
                counts[k][padded[i - k : i]][padded[i]] += 1
    tables = list(counts)
    if smoothing == "kneser-ney":
        for k in range(order - 1):
            tables[k] = defaultdict(Counter)
            for longer, seen in counts[k + 1].items():
                for c in seen:
                    tables[k][longer[1:]][c] += 1
    history = (decoding.START * (order - 1) + history)[len(history):]
    p = 1.0 / (len(ALPHABET) + 1)
    for k in range(order):
        seen = tables[k].get(history[len(history) - k:] if k else "")
        if seen:
            total = sum(seen.values())
            p = max(seen.get(char, 0) - discount, 0) / total + discount * len(seen) / total * p
    return math.log(max(p, 1e-12))


@pytest.mark.parametrize("smoothing", decoding.SMOOTHINGS)
@pytest.mark.parametrize("order", [1, 2, 4, decoding.MAX_ORDER])
def test_the_arrays_give_the_plain_formula(order, smoothing):
    lm = CharLM(TEXTS + ["zz top!", "Ünïcode ☃ outside"], order=order, smoothing=smoothing)
    for history in ("", "the c", "a cat at", "zzz", "☃", "Ün"):
        for char in ["a", "t", " ", "\n", "q", "z", "!", "☃"]:
            assert lm.logprob(history, char) == reference_logprob(
                TEXTS + ["zz top!", "Ünïcode ☃ outside"], order, 0.75, smoothing, history, char), (history, char)


def test_the_beam_looks_up_each_history_by_its_code():
    lm = CharLM(TEXTS, order=4)
    code = lm.history_code("")
    for char in "the cat":
        code = lm.extend(code, char)
    assert code == lm.history_code("the cat") == lm.history_code("cat")  # an order-4 model sees 3 characters back
    assert lm.history_code("at") != lm.history_code("cat")  # the start of the line is a character too
    assert lm.logprobs([code, lm.history_code("")], ["s", "t"]) == [lm.logprob("the cat", "s"), lm.logprob("", "t")]


def test_a_saved_model_loads_with_its_setting_and_the_same_probabilities(tmp_path):
    lm = CharLM(TEXTS)
    path = lm.save(tmp_path / "lm.npz", 0.3, 1.5, chosen_on="test")
    loaded, weight, bonus = CharLM.load(path)
    assert (weight, bonus, loaded.beam) == (0.3, 1.5, decoding.BEAM) and not list(tmp_path.glob("*.partial"))
    wide = CharLM(TEXTS, order=3, beam=16)
    assert CharLM.load(wide.save(tmp_path / "wide.npz", 0.3, 1.5))[0].beam == 16  # the width chosen with it
    for history, char in [("the c", "a"), ("", "t"), ("xy", "\n")]:
        assert loaded.logprob(history, char) == lm.logprob(history, char)
    kn = CharLM(TEXTS, order=4, smoothing="kneser-ney")
    kn_loaded = CharLM.load(kn.save(tmp_path / "kn.npz", 0.6, 1.5))[0]
    assert kn_loaded.smoothing == "kneser-ney"
    for history, char in [("the c", "a"), ("", "t"), ("xy", "\n"), ("a ca", "q")]:
        assert kn_loaded.logprob(history, char) == kn.logprob(history, char)
        assert kn.logprob(history, char) != pytest.approx(CharLM(TEXTS, order=4).logprob(history, char))


def test_a_word_list_is_saved_with_its_penalty_and_what_the_file_says_of_itself(tmp_path):
    lm = CharLM(TEXTS, order=3, beam=32)
    lm.words, lm.penalty = frozenset({"cat", "hat", "été"}), 2.0
    loaded, _, _ = CharLM.load(lm.save(tmp_path / "words.npz", 0.6, 1.5, chosen_on="val"))
    assert (loaded.words, loaded.penalty, loaded.beam, loaded.about) == (lm.words, 2.0, 32, {"chosen_on": "val"})
    again, _, _ = CharLM.load(loaded.save(tmp_path / "again.npz", 0.6, 1.5))  # saved again: nothing is lost
    assert (again.words, again.about) == (lm.words, {"chosen_on": "val"})
    plain, _, _ = CharLM.load(CharLM(TEXTS).save(tmp_path / "plain.npz", 0.3, 1.5))
    assert plain.words is None and plain.penalty == 0.0


def test_a_word_list_that_could_not_be_read_back_is_not_written(tmp_path):
    lm = CharLM(TEXTS, order=3)
    for words, penalty in [(frozenset({"Cat"}), 2.0), (frozenset({"don't"}), 2.0), (frozenset({"cat"}), 99.0)]:
        lm.words, lm.penalty = words, penalty
        with pytest.raises(HCRError, match="cannot be saved"):
            lm.save(tmp_path / "lm.npz", 0.6, 1.5)
    assert not list(tmp_path.iterdir())


def test_the_shipped_model_file_is_the_setting_val_chose():
    """The file is the mix that lines_mix.json chose, of the model and setting that lines.json chose."""
    from helpers import records

    mix, weight, bonus = CharLM.load(decoding.SHIPPED_LM)
    assert isinstance(mix, decoding.MixedLM) and len(mix.parts) == 2
    assert "CC BY 4.0" in mix.about["attribution"]  # counted from the real lines' transcriptions: credited
    record = records.read("lines_mix.json")
    chosen = record["grid"][record["chosen"]]
    assert not record["withdrawn"] and (weight, bonus) == (chosen["weight"], chosen["bonus"])
    assert mix.priors == pytest.approx([1 - chosen["prior"], chosen["prior"]])
    lm, alone = mix.parts[0], mix.about["alone"]
    beam = records.read("lines.json")["scores"]["beam_search"]
    assert [alone["weight"], alone["bonus"]] == beam["setting"] == [record["shipped_lm"]["weight"],
                                                                   record["shipped_lm"]["bonus"]]
    assert (lm.order, lm.smoothing, lm.beam) == (beam["order"], beam["smoothing"], beam["width"])
    listed = beam["word_list"]["grid"][beam["word_list"]["chosen"]]
    assert lm.beam == listed["width"] and (lm.words is None) == (listed["penalty"] == 0)


def test_a_model_file_from_before_word_lists_still_loads(tmp_path):
    """Files of format 2 (before word lists) load, with none."""
    path = tmp_path / "lm.npz"
    CharLM(TEXTS, order=3, beam=16).save(path, 0.6, 1.5)
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "format": 2}))
    np.savez_compressed(path, **arrays)
    lm, weight, bonus = CharLM.load(path)
    assert lm.words is None and lm.penalty == 0.0 and (weight, bonus, lm.beam, lm.order) == (0.6, 1.5, 16, 3)


def test_kneser_ney_backs_off_to_how_many_contexts_a_letter_follows():
    # "x" follows one letter ten times, "y" follows ten letters once each: counts favour "x" in
    # a context never seen, Kneser-Ney favours "y", the letter of many words.
    texts = ["ax"] * 10 + [f"{c}y" for c in "bcdefghijk"]
    absolute, kn = CharLM(texts, order=2), CharLM(texts, order=2, smoothing="kneser-ney")
    assert absolute.logprob("z", "x") == pytest.approx(absolute.logprob("z", "y"))
    assert kn.logprob("z", "y") > kn.logprob("z", "x")
    with pytest.raises(HCRError, match="smoothing"):
        CharLM(texts, smoothing="witten-bell")
    with pytest.raises(HCRError, match="order"):
        CharLM(texts, order=9)


def test_a_damaged_or_missing_model_says_what_to_do(tmp_path):
    path = CharLM(TEXTS, order=3).save(tmp_path / "lm.npz", 0.3, 1.5)
    with np.load(path) as stored:
        good = {name: stored[name] for name in stored.files}
    meta = json.loads(str(good["meta"]))

    def written(**change):
        arrays = {**good, **change}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def with_meta(**change):
        return written(meta=np.array(json.dumps({**meta, **change})))

    counts, steps = good["counts"], good["steps"]
    cases = {"truncated": path.read_bytes()[:40], "not a zip": b"not a model",
             "negative count": written(counts=np.r_[-3, counts[1:]].astype(np.int32)),
             "zero count": written(counts=np.r_[0, counts[1:]].astype(np.int32)),
             "fractional count": written(counts=counts + 0.5), "text count": written(counts=counts.astype(str)),
             "no counts": written(counts=counts[:0], steps=steps[:0]),
             "keys out of order": written(steps=np.r_[steps[:2], -steps[2:3], steps[3:]]),
             "n-gram too long": written(steps=np.r_[steps[:-1], steps[-1] + decoding.BASE ** 5]),
             "an order missing": written(counts=counts[:5], steps=steps[:5]),
             "counts and keys differ": written(counts=counts[:-1]),
             "no meta": written(meta=np.array("{")), "pickled": written(counts=np.array([{}] * len(counts))),
             "absurd weight": with_meta(weight=1e9), "absurd beam": with_meta(beam=10**6),
             "unknown smoothing": with_meta(smoothing="magic"), "old format": with_meta(format=1),
             "absurd order": with_meta(order=40), "order too big for a number": with_meta(order=1e400),
             "meta not a mapping": written(meta=np.array("[1, 2]")),
             "meta nested too deep": written(meta=np.array("[" * 100_000 + "]" * 100_000)),
             "count past int32": written(counts=np.r_[np.int64(2**32), counts[1:].astype(np.int64)]),
             "keys that wrap around": written(steps=np.r_[2**63 - 1, 2**63 - 1, steps[2:]].astype(np.int64))}
    words = np.frombuffer(b"cat\nhat", dtype=np.uint8)
    with_words = {**meta, "penalty": 2.0}
    for name, raw, penalty in [("words not UTF-8", np.frombuffer(b"cat\n\xff\xfe", np.uint8), 2.0),
                               ("a word in capitals", np.frombuffer(b"Cat", np.uint8), 2.0),
                               ("a word with a digit", np.frombuffer(b"c4t", np.uint8), 2.0),
                               ("an empty word", np.frombuffer(b"cat\n\nhat", np.uint8), 2.0),
                               ("words as text", np.array(["cat"]), 2.0),
                               ("words too many", np.frombuffer(b"ab\n" * (decoding.MAX_WORD_BYTES // 3) + b"ab",
                                                                np.uint8), 2.0),
                               ("absurd penalty", words, 1e9), ("penalty not a number", words, float("nan")),
                               ("no penalty", words, None)]:
        cases[name] = written(words=raw, meta=np.array(json.dumps({**with_words, "penalty": penalty})))
    huge = io.BytesIO()  # a header that promises terabytes, a few bytes of data
    with zipfile.ZipFile(huge, "w") as archive:
        for name, array in good.items():
            buffer = io.BytesIO()
            if name == "steps":
                np.lib.format.write_array_header_1_0(buffer, {"descr": "<i8", "fortran_order": False,
                                                              "shape": (10**12,)})
                buffer.write(array.tobytes())
            else:
                np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    cases["a header of terabytes"] = huge.getvalue()
    bomb = io.BytesIO()  # a few kB that unpack to gigabytes
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("padding.npy", b"\0" * (300 * 2**20))
    cases["a zip bomb"] = bomb.getvalue()
    for name, data in cases.items():
        bad = tmp_path / f"{name}.npz"
        bad.write_bytes(data)
        with pytest.raises(HCRError, match="damaged"):
            CharLM.load(bad)
    with pytest.raises(HCRError, match="missing"):
        CharLM.load(tmp_path / "nowhere.npz")
    with pytest.raises(HCRError, match="counted from no text"):
        CharLM([]).save(tmp_path / "empty.npz", 0.3, 1.5)


def test_the_reader_decodes_with_the_model_it_is_given(monkeypatch):
    torch.manual_seed(0)
    model = crnn.CRNN()
    image = torch.rand(model.height, 120).numpy()
    greedy = crnn.TextReader.from_model(model, lm=None, shifts=(0,))  # the picture as framed, read once
    assert greedy.lm is None
    plain = greedy._read_one(image)
    logits = model.eval()(torch.from_numpy(image)[None, None]).float()
    assert plain.text == crnn.greedy_decode(logits)[0][0]
    lm = CharLM(TEXTS)
    beam = crnn.TextReader.from_model(model, lm=(lm, 2.0, 1.0), shifts=(0,))._read_one(image)
    assert beam.text == beam_decode(logits[0], lm, 2.0, 1.0)[0]
    assert beam.confidence == plain.confidence  # the reader's own certainty, whatever the decoding
    lm.words, lm.penalty = frozenset({"cat"}), 3.0  # a model file's word list: the reader searches with it
    asked = []
    monkeypatch.setattr(decoding, "beam_decode", lambda *a, **k: (asked.append(k), beam_decode(*a, **k))[1])
    listed = crnn.TextReader.from_model(model, lm=(lm, 2.0, 1.0), shifts=(0,))._read_one(image)
    assert asked == [{"words": lm.words, "penalty": 3.0}]
    assert listed.text == beam_decode(logits[0], lm, 2.0, 1.0, words=lm.words, penalty=3.0)[0]


def test_the_reader_averages_its_readings_of_the_line_moved_up_and_down():
    torch.manual_seed(0)
    model = crnn.CRNN().eval()
    image = torch.rand(model.height, 120).numpy()
    moved = np.zeros((3, 1, *image.shape), dtype=np.float32)  # as framed, 2 rows up, 2 rows down; ink 1 on 0
    moved[0, 0], moved[1, 0, :-2], moved[2, 0, 2:] = image, image[2:], image[:-2]
    with torch.no_grad():
        each = torch.softmax(model(torch.from_numpy(moved)), dim=-1)
    reader = crnn.TextReader.from_model(model, lm=None, shifts=(0, -2, 2))
    columns = reader.columns(image)
    assert columns.shape == (1, each.shape[1], each.shape[2])
    torch.testing.assert_close(columns.exp(), each.mean(0, keepdim=True))
    once = crnn.TextReader.from_model(model, lm=None, shifts=(0,)).columns(image)
    torch.testing.assert_close(once.exp(), each[:1])
    assert reader._read_one(image).text == crnn.greedy_decode(columns)[0][0]
    assert crnn.TextReader.from_model(model).shifts == crnn.READ_SHIFTS  # what every command reads with


def test_the_shifts_every_reader_uses_are_the_recorded_choice():
    from helpers import records

    record = records.read("lines_shifts.json")
    assert tuple(record["chosen_shifts"]) == crnn.READ_SHIFTS
    assert record["grid"][record["chosen"]]["shifts"] == record["chosen_shifts"]


@pytest.mark.skipif(not decoding.SHIPPED_LM.is_file(), reason="no language model ships")
def test_the_shipped_reader_decodes_with_the_shipped_model():
    reader = crnn.TextReader()
    lm, weight, bonus = CharLM.load()
    assert reader.lm is not None and (reader.lm[1], reader.lm[2]) == (weight, bonus)


def test_french_sentences_hold_only_training_words_of_the_alphabet_with_elisions_before_vowels():
    rng = np.random.default_rng(0)
    sentences = [decoding.french_sentence(rng) for _ in range(300)]
    assert all(alphabet.fold(s) == (s, set()) for s in sentences)
    assert any(c in "éèàç" for s in sentences for c in s)  # French, not English
    words = [w.lower() for s in sentences for w in s.replace("'", " ").split()]
    assert words and not any(lines.is_test_word(w) for w in words)
    elided = [w for s in sentences for w in s.split() if "'" in w]
    assert elided and all(w.split("'", 1)[1][0].lower() in "aeiouhéèêàâîôû" for w in elided)


def test_the_language_model_texts_add_french_sentences_only_when_asked(tmp_path):
    """The val transcriptions never count; French sentences come after the rest, so the English
    ones stay the same and the two LMs tried on val differ only by the French."""
    manifest = real_lines.Manifest([real_lines.Entry(tmp_path / "a.jpg", "Le chat dort.", "x", "p", "w", "train"),
                                    real_lines.Entry(tmp_path / "b.jpg", "Un chien.", "x", "q", "v", "val")])
    plain = decoding.training_texts(manifest, count=5)
    with_french = decoding.training_texts(manifest, count=5, french=7)
    assert plain[0] == "Le chat dort." and len(plain) == 6
    assert with_french[:6] == plain and len(with_french) == 13


@pytest.mark.parametrize("guard_loss, french_wins", [(2.0, False), (0.5, True)])
def test_french_words_win_the_beam_choice_only_if_english_lines_lose_less_than_val_gains(
        monkeypatch, guard_loss, french_wins):
    """The val lines are all French; an LM that counts French words must not buy them at the
    cost of the English writing that users bring (the dev fonts' lines stand for it)."""
    from benchmarks import lines as bench

    class LM:
        def __init__(self, name):
            self.name, self.beam = name, 8

    plain, french = LM("order 6"), LM("order 6 with French words")
    val_base = {plain: 10.0, french: 9.0}  # French reads val one point better...
    guard_base = {plain: 5.0, french: 5.0 + guard_loss}  # ...and the English lines this much worse

    def fake_cer(logits, truths, lm, w, b, width):
        base = (val_base if len(logits) == 2 else guard_base)[lm]  # two val lines, three guard lines
        return base + abs(w - 0.45) + abs(b - 1.5) - (0.25 if width == 16 else 0.0)

    def fake_logits(reader, paths):
        return [torch.zeros(4, len(ALPHABET) + 1) for _ in paths]

    monkeypatch.setattr(bench, "_beam_cer", fake_cer)
    monkeypatch.setattr(bench, "_logits", fake_logits)
    monkeypatch.setattr(bench.crnn, "greedy_decode", lambda logits: [("", 0.0)])
    val = [("a.jpg", "a long line of writing", "x"), ("b.jpg", "and another one", "x")]
    guard = [("c.png", "english"), ("d.png", "words"), ("e.png", "here")]
    lms = {"order 6": plain, "order 6 with French words": french}
    (key, cer, setting, lm), grid = bench.choose_beam(None, val, lms, guard_items=guard)
    assert lm is (french if french_wins else plain)
    assert setting == (0.45, 1.5) and lm.beam == 16 and key.endswith("width 16")
    assert cer == pytest.approx(val_base[lm] - 0.25)
    assert grid["greedy"] == 100.0


def test_the_chosen_kneser_ney_model_is_set_beside_the_best_absolute_one_on_lines_that_chose_neither(
        monkeypatch):
    from benchmarks import lines as bench

    lms = {"order 5": CharLM(TEXTS, 3), "order 6": CharLM(TEXTS, 4), "order 6 with French words": CharLM(TEXTS, 4),
           "order 7 Kneser-Ney": CharLM(TEXTS, 4, smoothing="kneser-ney")}
    grid = {bench._grid_key(w, b, name): 20.0 for name in lms for w in bench.BEAM_WEIGHTS[1:]
            for b in bench.BEAM_BONUSES}
    grid[bench._grid_key(0.3, 2.5, "order 6")] = 15.0  # the best absolute one on val
    grid[bench._grid_key(0.2, 0.5, "order 6 with French words")] = 10.0  # French words never count as it
    seen = []

    def fake_cer(logits, truths, lm, w, b, width):
        seen.append((lm, w, b, width))
        return 1.0

    monkeypatch.setattr(bench, "_beam_cer", fake_cer)
    monkeypatch.setattr(bench, "_logits", lambda reader, paths: [torch.zeros(4, len(ALPHABET) + 1) for _ in paths])
    kn = lms["order 7 Kneser-Ney"]
    kn.beam = 16
    out = bench.against_absolute(None, lms, grid, ("kn key", 9.0, (0.6, 1.5), kn),
                                 [("fonts", [("a.png", "ab")], 8), ("test", [("b.jpg", "cd", "x")], None)])
    assert out["absolute"] == "order 6, weight 0.3, bonus 2.5" and out["chosen"] == "kn key"
    assert set(out) == {"absolute", "chosen", "fonts, 8 texts", "test, 16 texts"}
    assert (lms["order 6"], 0.3, 2.5, 16) in seen and (kn, 0.6, 1.5, 8) in seen
    assert out["test, 16 texts"]["greedy"] == 100.0  # greedy reads nothing from blank columns
    assert bench.against_absolute(None, lms, grid, ("abs", 9.0, (0.3, 2.5), lms["order 6"]), []) is None



def test_the_word_list_ships_only_if_it_pays_for_itself_at_its_own_width():
    from benchmarks.lines import pick_setting

    def row(penalty, width, val, ms=30.0):
        return {"penalty": penalty, "width": width, "ms_per_line": ms, "val": {"cer": val}}

    grid = {"penalty 0, width 16": row(0, 16, 15.3), "penalty 2, width 16": row(2, 16, 15.2),
            "penalty 0, width 32": row(0, 32, 15.0), "penalty 2, width 32": row(2, 32, 14.9),
            "penalty 0, width 64": row(0, 64, 14.0, ms=51.0)}  # val's best, but over the time limit
    guard = {"penalty 0, width 16": 4.0, "penalty 2, width 16": 4.1, "penalty 0, width 32": 4.1,
             "penalty 2, width 32": 4.4}
    asked = []
    cer = lambda key: (asked.append(key), guard[key])[1]  # noqa: E731
    # the list gains 0.1 on val at width 32 and costs the guard lines 0.3: the wider beam ships alone
    assert pick_setting(grid, "penalty 0, width 16", cer) == "penalty 0, width 32"
    assert "penalty 0, width 64" not in asked
    guard["penalty 2, width 32"] = 4.15  # a cost below its own gain: the list ships
    assert pick_setting(grid, "penalty 0, width 16", cer) == "penalty 2, width 32"
    assert pick_setting(grid, "penalty 0, width 16") == "penalty 2, width 32"  # no guard lines: val decides
    grid["penalty 0, width 32"]["val"]["cer"] = grid["penalty 2, width 32"]["val"]["cer"] = 15.1
    assert pick_setting(grid, "penalty 0, width 16", cer) is None  # nothing 0.3 points ahead: nothing changes


def test_the_language_model_remembers_its_answers_and_forgets_in_time(monkeypatch):
    lm = CharLM(TEXTS, order=4)
    rng = np.random.default_rng(0)
    codes = list(dict.fromkeys(lm.history_code("".join(rng.choice(list("abct "), size=3))) for _ in range(50)))
    fresh = CharLM(TEXTS, order=4)._distributions(np.array(codes))  # computed, nothing remembered
    assert np.array_equal(lm.distributions(codes), fresh) and np.array_equal(lm.distributions(codes), fresh)
    assert len(lm._cache) == len(codes) > 10  # the second time remembered
    lm.forget()
    assert not lm._cache
    monkeypatch.setattr(decoding, "CACHE_HISTORIES", 10)
    assert np.array_equal(lm.distributions(codes[:8]), fresh[:8]) and len(lm._cache) == 8
    assert np.array_equal(lm.distributions(codes[8:16]), fresh[8:16]) and len(lm._cache) == 8  # emptied, not grown
    assert np.array_equal(lm.distributions(codes[4:12]), fresh[4:12])  # half remembered, half new: all answered


def test_another_thread_emptying_the_memory_mid_call_loses_no_answer():
    class Forgetful(dict):  # as if another thread of the web demo emptied it right after each update
        def update(self, *args):
            super().update(*args)
            self.clear()

    lm = CharLM(TEXTS, order=4)
    codes = [lm.history_code(h) for h in ("the", "cat", "a c", "the")]
    fresh = CharLM(TEXTS, order=4)._distributions(np.array(codes))
    lm._cache = Forgetful()
    assert np.array_equal(lm.distributions(codes), fresh)


@pytest.mark.parametrize("smoothing", decoding.SMOOTHINGS)
def test_the_distributions_give_the_plain_formula_for_every_next_character(smoothing):
    texts = TEXTS + ["zz top!", "☃ outside"]
    lm = CharLM(texts, order=4, smoothing=smoothing)
    rows = lm.distributions([lm.history_code(h) for h in ("", "the c", "zz", "☃")])

    def plain(history, char):
        return reference_logprob(texts, 4, 0.75, smoothing, history, char)

    for i, history in enumerate(("", "the c", "zz", "☃")):
        assert rows[i, 0] == pytest.approx(plain(history, "\n"), abs=1e-12)
        for c, char in enumerate(ALPHABET, start=1):
            assert rows[i, c] == pytest.approx(plain(history, char), abs=1e-12)
        assert rows[i, decoding.column("☃")] == pytest.approx(plain(history, "☃"), abs=1e-12)


def test_every_reading_is_timed_the_same_way_taking_turns_on_each_file():
    from benchmarks.lines import ms_per_file

    order = []
    times = ms_per_file({"a": lambda p: order.append(("a", p)), "b": lambda p: order.append(("b", p))},
                        ["x", "y"], repeats=2)
    assert order == [("a", "x"), ("b", "x"), ("a", "y"), ("b", "y")] * 2  # turns on each file, then again
    assert set(times) == {"a", "b"} and all(len(v) == 2 and min(v) >= 0 for v in times.values())


def test_readers_timed_together_take_turns_and_each_forgets_its_own_model():
    """Two readers compared by their speed (the prose rule) are warmed up, then read each file in
    turns, each with an empty memory in its own language model."""
    from types import SimpleNamespace

    from benchmarks.lines import line_speeds

    lms, reads = (CharLM(TEXTS, order=3), CharLM(TEXTS, order=3)), []

    def reader(name, lm):
        def read(path):
            reads.append((name, path, len(lm._cache)))
            lm.distributions([lm.history_code(path)])
        return SimpleNamespace(read=read, lm=(lm, 0.6, 1.5))

    out = line_speeds({"a": reader("a", lms[0]), "b": reader("b", lms[1])}, ["the", "cat"])
    assert reads[:2] == [("a", "the", 0), ("b", "the", 0)]  # the warm-ups
    assert [(n, p) for n, p, _ in reads[2:]] == [("a", "the"), ("b", "the"), ("a", "cat"), ("b", "cat")] * 3
    assert all(cached == 0 for _, _, cached in reads[2:])
    assert set(out) == {"a", "b"} and all(set(v) == {"chars", "median", "max"} for v in out.values())


def test_a_timed_reading_pays_for_what_the_language_model_would_have_remembered():
    from benchmarks.lines import ms_per_file

    lm, remembered = CharLM(TEXTS, order=3), []
    read = lambda p: (remembered.append(len(lm._cache)), lm.distributions([lm.history_code(p)]))  # noqa: E731
    ms_per_file({"read": read}, ["the", "cat"], repeats=3, lm=lm)
    assert remembered == [0] * 6  # every read starts with nothing remembered, the same file's second read too


def two_languages():
    """A model of one 'language' (abab...) and one of another (cdcd...)."""
    a = CharLM(["abababab", "babababa"] * 10, order=3, smoothing="kneser-ney")
    b = CharLM(["cdcdcdcd", "dcdcdcdc"] * 10, order=3, smoothing="kneser-ney")
    return a, b


def test_a_mix_asks_each_of_its_models_in_one_lookup():
    a, b = two_languages()
    mix = decoding.MixedLM([a, b], [3, 1])
    assert mix.priors == [0.75, 0.25]
    codes = [mix.history_code(h) for h in ("", "ab", "cd", "zz")]
    rows = mix.distributions(codes)
    assert rows.shape == (4, 2, decoding.COLUMNS)
    assert np.array_equal(rows[:, 0], a.distributions(codes)) and np.array_equal(rows[:, 1], b.distributions(codes))
    assert mix.distributions([]).shape == (0, 2, decoding.COLUMNS)


def test_a_mix_of_one_model_reads_as_that_model():
    a, _ = two_languages()
    logits = torch.randn(30, len(ALPHABET) + 1) * 3
    assert beam_decode(logits, decoding.MixedLM([a], [1.0]), 0.8, 1.0, beam=8) == beam_decode(logits, a, 0.8, 1.0,
                                                                                                beam=8)


def test_a_mix_follows_the_model_that_explains_the_line_so_far():
    # clear "cdcdcd", then a column torn between "c" (what follows "d" in the second model) and "a"
    # (the first model's, which never saw "d"). Mixed letter by letter at 0.9 to 0.1, "a" would win;
    # mixed over the whole line, the first model explains "cdcdcd" so badly that the second decides
    a, b = two_languages()
    rows = []
    for char in "cdcdcd":
        rows += [{char: 0.98, None: 0.02}, {None: 0.98, char: 0.02}]
    logits = columns(*rows, {"c": 0.5, "a": 0.5})
    assert beam_decode(logits, a, 0.5, 0.0, beam=8)[0] == "cdcdcda"
    assert beam_decode(logits, decoding.MixedLM([a, b], [0.9, 0.1]), 0.5, 0.0, beam=8)[0] == "cdcdcdc"
    codes = [a.history_code("cdcdcd")]
    per_letter = np.logaddexp(np.log(0.9) + a.distributions(codes)[0], np.log(0.1) + b.distributions(codes)[0])
    assert per_letter[decoding.column("a")] > per_letter[decoding.column("c")]  # what the test says of that


def test_a_saved_mix_loads_with_its_priors_and_what_each_model_was_counted_from(tmp_path):
    a, b = two_languages()
    a.about, b.about = {"counted_from": "abab"}, {"counted_from": "cdcd"}
    path = decoding.MixedLM([a, b], [0.5, 0.5]).save(tmp_path / "mix.npz", 0.6, 2.5, alone={"weight": 0.5})
    mix, weight, bonus = CharLM.load(path)
    assert isinstance(mix, decoding.MixedLM) and mix.priors == [0.5, 0.5] and (weight, bonus) == (0.6, 2.5)
    assert [part.about for part in mix.parts] == [{"counted_from": "abab"}, {"counted_from": "cdcd"}]
    assert mix.about == {"alone": {"weight": 0.5}}
    again = mix.save(tmp_path / "again.npz", 0.6, 2.5)  # saved again, nothing nests
    assert [part.about for part in CharLM.load(again)[0].parts] == [part.about for part in mix.parts]
    alone = CharLM.load(decoding.MixedLM([a], [1.0]).save(tmp_path / "one.npz", 0.6, 2.5))[0]
    assert isinstance(alone, CharLM) and np.array_equal(alone.keys, a.keys)  # a mix of one is that model
    codes = [a.history_code("cdc")]
    assert np.array_equal(mix.distributions(codes)[:, 1], b.distributions(codes))
    with np.load(path) as stored:
        meta, arrays = json.loads(str(stored["meta"])), {k: stored[k] for k in stored.files if k != "meta"}

    def rewritten(name, **changes):
        out = tmp_path / name
        kept = {k: v for k, v in arrays.items() if k not in changes.get("drop", ())}
        np.savez(out, meta=np.array(json.dumps({**meta, **changes.get("meta", {})})), **kept)
        return out

    for bad in (rewritten("nan.npz", meta={"priors": [0.5, float("nan")]}),
                rewritten("zero.npz", meta={"priors": [1.0, 0.0]}),
                rewritten("bool.npz", meta={"priors": [True, 0.5]}),
                rewritten("three.npz", meta={"priors": [0.2, 0.3, 0.5]}),  # a third model's arrays are missing
                rewritten("format3.npz", meta={"format": 3}),  # a mix in a file that says it holds one model
                rewritten("models.npz", meta={"models": [{"counted_from": "abab"}]}),  # one description for two
                rewritten("lost.npz", drop=("steps_1",))):
        with pytest.raises(HCRError, match="is damaged"):
            CharLM.load(bad)


def test_models_of_different_orders_or_smoothings_or_no_counts_cannot_mix():
    a, _ = two_languages()
    other = CharLM(["cdcd"], order=3, smoothing="absolute")
    for parts, priors in (([a, CharLM(["xy"], order=4)], [1, 1]), ([a, CharLM([], order=3)], [1, 1]),
                          ([a], [0.0]), ([a, a], [1.0]), ([a, other], [1, 1])):
        with pytest.raises(HCRError, match="A mix needs"):
            decoding.MixedLM(parts, priors)


def test_a_mix_says_how_far_it_leans_as_a_line_is_read():
    a, b = two_languages()
    mix = decoding.MixedLM([a, b], [0.75, 0.25])
    shares = mix.shares("cdcdcd")
    assert shares.shape == (7, 2) and np.allclose(shares.sum(1), 1.0)
    assert np.allclose(shares[0], [0.75, 0.25]) and shares[-1, 1] > 0.99  # the line is the second model's
    assert np.all(np.diff(shares[:, 1]) > 0)  # every character of it leans further
    whole = []  # the last row is the posterior of the whole line, end included, counted the slow way
    for lm, prior in zip(mix.parts, mix.priors):
        history, total = "", math.log(prior)
        for char in "cdcdcd\n":
            total += lm.logprob(history, char)
            history += char
        whole.append(total)
    assert np.allclose(shares[-1], np.exp(np.array(whole) - np.logaddexp.reduce(whole)))


@pytest.mark.parametrize("order", [1, 2, 5])
def test_a_mix_of_models_of_any_order_gives_each_models_plain_formula(order):
    texts = (["abababab", "the cat"] * 3, ["cdcdcdcd", "le chat ☃"] * 3)
    parts = [CharLM(t, order=order, smoothing="kneser-ney") for t in texts]
    mix = decoding.MixedLM(parts, [0.5, 0.5])
    histories = ("", "ab", "the c", "zzzz", "☃")
    rows = mix.distributions([mix.history_code(h) for h in histories])
    for m, counted in enumerate(texts):
        for i, history in enumerate(histories):
            for char in ["a", "c", " ", "\n", "q", "☃"]:
                assert rows[i, m, decoding.column(char)] == reference_logprob(
                    counted, order, 0.75, "kneser-ney", history, char), (m, history, char)
