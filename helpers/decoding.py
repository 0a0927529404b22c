"""Beam search for CTC with a character language model: the neighbours of a letter in real words
help to read it when the pen is unclear.

Greedy decoding takes the best class in each column. A beam search keeps the few best texts so
far and scores each by the reader's probability plus `weight` times a character n-gram model's
log-probability (plus `bonus` per character, so the model's taste for short texts does not
drop letters). The n-gram model is counted from training text only: the real training
transcriptions and sentences drawn from training words; nothing is downloaded. The shipped file
mixes two such models line by line (`MixedLM`): that one, and one of the transcriptions and
French prose (Littré's quotations, `benchmarks/littre.py`).
"""

import json
import math
import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .alphabet import ALPHABET, BLANK, fold
from .errors import HCRError
from .paths import CHECKPOINTS

START = "\x02"  # pads the history at the start of a line
SHIPPED_LM = CHECKPOINTS / "lines_lm.npz"  # the language model and the beam setting chosen on val
LM_FORMAT = 3  # 1 was gzipped JSON of nested dicts: 400 MB in memory and 2 s to load; 3 may add a word list
FORMATS_READ = (2, 3, 4)  # 2 is 3 without a word list; 4 holds several models mixed (`MixedLM`)
MAX_MODELS = 8  # models in one mixed file
MAX_WORD_BYTES = 16 * 2**20  # a word list's UTF-8 bytes: 276,990 words take about 2.5 MB
MAX_PENALTY = 20.0
BEAM = 8  # texts kept at each column, unless the LM file says otherwise

SMOOTHINGS = ("absolute", "kneser-ney")
LETTERS = frozenset(c for c in ALPHABET if c.isalpha())  # what a word of the word list is made of
IS_LETTER = np.array([False] + [c in LETTERS for c in ALPHABET])  # by the reader's class
WORD_LIST_SIZE = 200_000  # words asked of wordfreq per language for `word_list`
CACHE_HISTORIES = 20_000  # histories whose next-character probabilities a language model remembers: about 15 MB
# per model (a mix of two, about 30 MB)

# An n-gram is stored as one integer: its characters' codes as digits in base BASE. No character
# has the code 0, so the integer also says how long the n-gram is and n-grams of every order share
# one sorted array. Characters outside the alphabet all share one code, in the texts counted and in
# the histories asked about: the reader can never write them (and `training_texts` are folded onto
# the alphabet, so none is counted).
SYMBOLS = START + "\n" + ALPHABET
CODE = {char: i for i, char in enumerate(SYMBOLS, start=1)}
BASE = len(SYMBOLS) + 2
UNSEEN = BASE - 1
MAX_ORDER = 8  # BASE ** 8 still fits in int64
MAX_COUNT = 2**31 - 1  # counts are kept as int32
MAX_BYTES = 256 * 2**20  # a language model file's arrays: the shipped one is about 17 MB unpacked
assert BASE**MAX_ORDER < 2**63
# The columns of `CharLM.distributions`: the end of a line (column 0, where the reader's blank is),
# each character of the alphabet at its class, then a character outside the alphabet, then one
# never counted (code 0, which no character has).
COLUMNS = len(ALPHABET) + 3
COLUMN_OF = np.full(BASE, COLUMNS - 1)
COLUMN_OF[[CODE["\n"]] + [CODE[char] for char in ALPHABET] + [UNSEEN]] = np.arange(COLUMNS - 1)
assert COLUMNS <= 256  # a column is kept as uint8 (`CharLM._columns`)


def column(char):
    """The column of `char` in `CharLM.distributions` (START, never counted as a next character, has the last)."""
    return int(COLUMN_OF[CODE.get(char, UNSEEN)])


def encode(text):
    """The integer of a string of characters (see BASE)."""
    code = 0
    for char in text:
        code = code * BASE + CODE.get(char, UNSEEN)
    return code


class CharLM:
    """An n-gram model of characters (order `order`) with interpolated discounting; `beam` is the
    beam width to read with it (chosen on val with the weight and bonus).

    "absolute" backs off to the shorter contexts' counts. "kneser-ney" backs off to how many
    different characters came before each shorter n-gram instead: a letter pair seen in many
    words is likely in a new one, a pair seen often in one word is not. The shipped model is of
    that kind: it read val and the dev fonts' English lines better (docs/lines.md).

    The counts live in sorted numpy arrays, not dicts (the shipped 7-gram, 1.4 million n-grams,
    takes tens of MB and loads in a fraction of a second; as nested dicts it took hundreds of MB and
    seconds), and `distributions` looks up many histories at once, as the beam asks.
    """

    def __init__(self, texts, order=5, discount=0.75, beam=BEAM, smoothing="absolute"):
        if smoothing not in SMOOTHINGS:
            raise HCRError(f"smoothing={smoothing!r} is unknown: choose one of {', '.join(SMOOTHINGS)}.")
        if not 1 <= order <= MAX_ORDER:
            raise HCRError(f"order={order} is out of range: choose 1 to {MAX_ORDER}.")
        self.order, self.discount, self.beam, self.smoothing = order, discount, beam, smoothing
        self.words, self.penalty = None, 0.0  # a word list for the beam search (`beam_decode`), and its penalty
        self.about = {}  # what the file says of where it comes from (kept when saved again)
        counts = Counter()
        for text in texts:
            codes = [CODE.get(char, UNSEEN) for char in START * (order - 1) + text + "\n"]
            for i in range(order - 1, len(codes)):
                code = 0
                for k in range(order):  # the n-grams of 1 to `order` characters that end at i
                    code += codes[i - k] * BASE**k
                    counts[code] += 1
        keys = np.fromiter(counts.keys(), np.int64, len(counts))
        values = np.fromiter(counts.values(), np.int64, len(counts))
        order_by = np.argsort(keys)
        self.tabulate(keys[order_by], values[order_by])

    def tabulate(self, keys, counts):
        """The arrays `distributions` reads, from every n-gram's count (`keys` sorted).

        Per order, an n-gram's count; for Kneser-Ney the shorter orders hold how many different
        characters came before the n-gram instead. Then per history: the sum of its n-grams' values
        and how many there are."""
        # what `save` writes; whole numbers, exact in the float64 arithmetic of `distributions`
        self.keys, self.counts = keys, counts.astype(np.int32)
        values = self.counts  # the same array when the smoothing is absolute: no second copy
        powers = BASE ** np.arange(self.order + 1, dtype=np.int64)
        length = np.searchsorted(powers, keys, side="right")  # an n-gram's number of characters
        if self.smoothing == "kneser-ney":
            parts_keys, parts_values = [], []
            for n in range(1, self.order):  # n-grams of n characters: how many n+1-grams end with them
                longer = keys[length == n + 1]
                suffix, kinds = np.unique(longer % powers[n], return_counts=True)
                parts_keys.append(suffix)
                parts_values.append(kinds.astype(np.int32))
            parts_keys.append(keys[length == self.order])
            parts_values.append(values[length == self.order])
            keys = np.concatenate(parts_keys)
            values = np.concatenate(parts_values)
            order_by = np.argsort(keys)
            keys, values = keys[order_by], values[order_by]
        history = keys // BASE  # n-grams of one history lie side by side in sorted order
        starts = np.flatnonzero(np.r_[True, history[1:] != history[:-1]]) if len(keys) else np.zeros(0, np.int64)
        self._keys, self._values = keys, values
        self._histories, self._starts = history[starts], starts
        self._totals = np.add.reduceat(values, starts) if len(keys) else np.zeros(0, np.int32)
        self._kinds = np.diff(np.r_[starts, len(keys)]).astype(np.int32)
        # what `_spread` reads for each n-gram: its own share of its history, and its character's column
        self._own = np.maximum(values - self.discount, 0.0) / np.repeat(self._totals, self._kinds)
        self._columns = COLUMN_OF[keys % BASE].astype(np.uint8)
        self._backoff = self.discount * self._kinds / self._totals if len(keys) else np.zeros(0)
        self._powers = powers[: self.order]
        self._cache = {}  # history code -> log P of every next character, filled by `distributions`
        self.vocab = len(ALPHABET) + 1
        # P(next | the last character) for every character, and for none: every history shares these
        # two shortest contexts, and they hold the most n-grams, so they are spread once, here
        shortest = np.stack([np.zeros(BASE, np.int64), np.arange(BASE)], axis=1)[:, : min(self.order, 2)]
        self._low = _spread(self, shortest, np.full((BASE, COLUMNS), 1.0 / self.vocab)) if len(keys) else None

    def history_code(self, history):
        """The integer of the last order-1 characters before the next one (START where the line began)."""
        return encode((START * (self.order - 1) + history)[len(history):]) if self.order > 1 else 0

    def extend(self, code, char):
        """The history code after `char` is written."""
        return (code * BASE + CODE.get(char, UNSEEN)) % int(self._powers[-1]) if self.order > 1 else 0

    def forget(self):
        """Empty what `distributions` remembers: a timing that counts what a fresh reader pays."""
        self._cache.clear()

    def distributions(self, codes):
        """(len(codes), COLUMNS) log P(next | history) for each history code: column 0 is the end of
        the line, column i the alphabet's i-th character (the reader's class i), then any other
        character (`column`). Histories asked before are remembered (up to CACHE_HISTORIES): a
        beam search asks the few it keeps again at every column, and a page's lines share many."""
        return _remembered(self._cache, codes, self._distributions)

    def logprobs(self, codes, chars):
        """[log P(char | history)] for many (history code, char) pairs at once."""
        rows = self.distributions(list(codes))
        return [float(rows[i, column(char)]) for i, char in enumerate(chars)]

    def _distributions(self, codes):
        if not len(self._keys):  # counted from no text: every character alike
            return np.full((len(codes), COLUMNS), math.log(1.0 / self.vocab))
        contexts = codes[:, None] % self._powers[None, :]  # column k: the last k characters
        return np.log(np.maximum(_spread(self, contexts[:, 2:], self._low[contexts[:, min(self.order, 2) - 1]]), 1e-12))

    def logprob(self, history, char):
        """log P(char | the last order-1 characters of history)."""
        return self.logprobs([self.history_code(history)], [char])[0]

    def save(self, path, weight, bonus, **about):
        """Write the counts and the beam setting to a .npz of plain arrays (no pickles, no code)."""
        return _save(path, [self], weight, bonus, about)

    @classmethod
    def load(cls, path=SHIPPED_LM):
        """(CharLM or MixedLM, weight, bonus) from a file written by `save`; HCRError with one sentence
        if unusable."""
        try:
            with zipfile.ZipFile(path) as archive:  # a header may promise terabytes: look before reading
                if sum(member.file_size for member in archive.infolist()) > MAX_BYTES:
                    raise ValueError
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(str(stored["meta"]))
                if not isinstance(meta, dict):
                    raise ValueError
                priors = meta.get("priors", [1.0])
                if not isinstance(priors, list) or not 1 <= len(priors) <= MAX_MODELS or (
                        len(priors) > 1) != (meta.get("format") == 4):
                    raise ValueError
                names = [("steps", "counts")] + [(f"steps_{i}", f"counts_{i}") for i in range(1, len(priors))]
                tables = [(stored[steps], stored[counts]) for steps, counts in names]
                raw_words = stored["words"] if "words" in stored.files else None
            order, discount = int(meta["order"]), float(meta["discount"])
            weight, bonus = float(meta["weight"]), float(meta["bonus"])
            beam, smoothing = meta["beam"], meta["smoothing"]
            if meta.get("format") not in FORMATS_READ or not 1 <= order <= MAX_ORDER or not (
                    0 < discount < 1 and 0 <= weight <= 5 and -5 <= bonus <= 5) or isinstance(beam, bool) or not (
                    isinstance(beam, int) and 1 <= beam <= 64) or smoothing not in SMOOTHINGS:
                raise ValueError
            if not all(isinstance(q, (int, float)) and not isinstance(q, bool) and 0 < q <= 1 for q in priors):
                raise ValueError  # NaN fails too
            about = {k: v for k, v in meta.items() if k not in CORE_META}
            models = meta.get("models", [about] * len(priors))  # what each model of a mix was counted from
            if not isinstance(models, list) or len(models) != len(priors) or not all(
                    isinstance(m, dict) for m in models):
                raise ValueError
            parts = []
            for (steps, counts), own in zip(tables, models):
                lm = cls([], order, discount, beam, smoothing)
                lm.tabulate(_checked_keys(steps, counts, order), counts)
                lm.about = dict(own)
                parts.append(lm)
            if raw_words is not None:
                if meta["format"] < 3:  # format 2 had no word list
                    raise ValueError
                parts[0].words, parts[0].penalty = _checked_words(raw_words), float(meta["penalty"])
                if not 0 <= parts[0].penalty <= MAX_PENALTY:  # NaN fails too
                    raise ValueError
            if len(parts) > 1:
                lm = MixedLM(parts, priors)
                lm.about = about
            else:
                lm = parts[0]
        except FileNotFoundError:
            raise HCRError(f"The language model {path} is missing: restore it with `git checkout {SHIPPED_LM.name}` "
                           "in checkpoints/, or read with greedy decoding (lm=None).") from None
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
                RecursionError, MemoryError, zipfile.BadZipFile, HCRError):
            raise HCRError(f"The language model {path} is damaged: restore the shipped one, or read with greedy "
                           "decoding (lm=None).") from None
        return lm, weight, bonus


def _checked_keys(steps, counts, order):
    """The sorted n-gram keys of one stored model, or ValueError if its arrays cannot be a model's."""
    if steps.dtype != np.int64 or counts.dtype.kind != "i" or steps.ndim != 1 or steps.shape != counts.shape:
        raise ValueError
    if (steps <= 0).any() or steps.sum(dtype=np.float64) >= BASE**order or (counts < 1).any() or (
            counts > MAX_COUNT).any():
        raise ValueError  # keys not strictly rising, n-grams too long, counts not whole, positive, int32
    keys = np.cumsum(steps)  # positive steps summing under BASE ** order: no wrap-around
    lengths = np.searchsorted(BASE ** np.arange(order + 1, dtype=np.int64), keys, side="right")
    if len(np.unique(lengths)) != order:  # every order counted (every text gives n-grams of each)
        raise ValueError
    return keys


def _save(path, parts, weight, bonus, about, priors=None):
    """Write `parts` (one CharLM, or a MixedLM's models with their `priors`) to one .npz."""
    first = parts[0]
    if not all(len(part.keys) for part in parts):
        raise HCRError("This language model was counted from no text: there is nothing to save.")
    priors = priors if len(parts) > 1 else None  # a mix of one model is that model
    if priors is None:
        about = {**first.about, **about}
    else:  # the mix's own words, and each model's in "models"
        about = {**about, "priors": list(priors),
                 "models": [{k: v for k, v in part.about.items() if k not in CORE_META} for part in parts]}
    meta = {**about, "format": LM_FORMAT if priors is None else 4, "order": first.order, "discount": first.discount,
            "weight": weight, "bonus": bonus, "beam": first.beam, "smoothing": first.smoothing}
    arrays = {}
    for i, part in enumerate(parts):  # sorted keys as steps: small numbers, which compress well
        suffix = f"_{i}" if i else ""
        arrays[f"steps{suffix}"], arrays[f"counts{suffix}"] = np.diff(part.keys, prepend=0), part.counts
    if first.words:
        meta["penalty"] = float(first.penalty)
        arrays["words"] = np.frombuffer("\n".join(sorted(first.words)).encode("utf-8"), dtype=np.uint8)
        try:  # what `load` would refuse is never written
            _checked_words(arrays["words"])
            if not 0 <= meta["penalty"] <= MAX_PENALTY:
                raise ValueError
        except ValueError:
            raise HCRError("This word list cannot be saved: its words must be lower-case letters of the "
                           f"alphabet, at most 64 each, and its penalty from 0 to {MAX_PENALTY:g}.") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    arrays = {"meta": np.array(json.dumps(meta, ensure_ascii=False, sort_keys=True)), **arrays}
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_LZMA) as archive:  # np.load reads it; a third
        for name, array in arrays.items():  # smaller than np.savez_compressed's deflate
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    partial.replace(path)  # a crash mid-write never leaves a half file under the real name
    return path


def _remembered(cache, codes, compute):
    """`compute`'s row for each code, the rows asked before taken from `cache` (a dict shared by the
    web demo's threads: read into `found`, so another thread's emptying of it never loses an answer)."""
    found = {code: cache.get(code) for code in codes}
    todo = [code for code, row in found.items() if row is None]
    if todo:
        found.update(zip(todo, compute(np.asarray(todo, dtype=np.int64))))
        if len(cache) + len(todo) > CACHE_HISTORIES:  # start again, with every history of this call
            cache.clear()
        cache.update(found)
    return np.stack([found[code] for code in codes]) if len(codes) else np.zeros((0, COLUMNS))


def _spread(table, contexts, p):
    """(rows, COLUMNS) P(next | each row's contexts, from the shortest to the longest) from `table`'s
    sorted arrays (a CharLM's, or a MixedLM's of all its models), `p` being P(next) after the contexts
    shorter still (uniform, or `CharLM._low`)."""
    where = np.minimum(np.searchsorted(table._histories, contexts), len(table._histories) - 1)
    known = table._histories[where] == contexts
    # the n-grams of a known history lie side by side from its start: spread them by column.
    # P(c | the context of column k) = own[k, c] + backoff[k] * P(c | the one before it), where a
    # history never seen has own 0 and backoff 1 (the shorter one's probability as it is)
    h, k = np.nonzero(known)
    runs = where[h, k]
    kinds = table._kinds[runs]
    owner = np.repeat(np.arange(len(runs)), kinds)
    at = table._starts[runs][owner] + np.arange(len(owner)) - np.repeat(np.cumsum(kinds) - kinds, kinds)
    own = np.zeros((len(contexts), contexts.shape[1], COLUMNS))
    own[h[owner], k[owner], table._columns[at]] = table._own[at]
    backoff = np.ones((len(contexts), contexts.shape[1], 1))
    backoff[h, k, 0] = table._backoff[runs]
    for k in range(contexts.shape[1]):
        p = own[:, k] + backoff[:, k] * p
    return p


class MixedLM:
    """Several character models read as one: P(text) = sum over models of prior x P_model(text).

    Each text of the beam keeps every model's log-probability, so as a line goes on the mix leans
    to the model that explains it better: French prose can weigh more in a French letter, English
    sentences in an English line. A model counted from all of them at once dilutes each one's
    neighbours with the others'. All models share one order (one history code) and smoothing.
    """

    def __init__(self, parts, priors):
        if len(parts) != len(priors) or not 1 <= len(parts) <= MAX_MODELS or len(
                {(p.order, p.discount, p.smoothing, p.beam) for p in parts}) != 1 or (
                not all(len(p._keys) for p in parts)) or not all(math.isfinite(q) and q > 0 for q in priors):
            raise HCRError("A mix needs counted models of one order, smoothing and width, and as many positive "
                           "priors as models.")
        self.parts = list(parts)
        self.priors = [float(q) / sum(priors) for q in priors]
        self.log_priors = np.log(self.priors)
        first = self.parts[0]
        self.order, self.beam, self.words, self.penalty = first.order, first.beam, first.words, first.penalty
        self.vocab, self.about = first.vocab, {}  # what the file says of the mix (each model has its own)
        # every model's arrays end to end, model i's histories moved up by i * BASE ** order (above any
        # of model i-1's), so that one `_spread` reads all the models' distributions at once
        self._offsets = BASE**self.order * np.arange(len(parts), dtype=np.int64)
        sizes = np.cumsum([0] + [len(p._keys) for p in parts[:-1]])
        join = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        self._own, self._columns = join("_own"), join("_columns")
        self._histories = np.concatenate([p._histories + o for p, o in zip(parts, self._offsets)])
        self._starts = np.concatenate([p._starts + n for p, n in zip(parts, sizes)])
        self._kinds, self._backoff = join("_kinds"), join("_backoff")
        self._powers, self._cache = first._powers, {}

    def history_code(self, history):
        return self.parts[0].history_code(history)

    def extend(self, code, char):
        return self.parts[0].extend(code, char)

    def forget(self):
        self._cache.clear()

    def shares(self, text):
        """(len(text) + 1, models): each model's share of the mix after each character of `text` (row 0:
        the priors; the last row also counts the end of the line). How far the mix leans as a line goes on."""
        codes = [self.history_code("")]
        for char in text:
            codes.append(self.extend(codes[-1], char))
        rows = self.distributions(codes)  # (characters + 1, models, COLUMNS)
        steps = rows[np.arange(len(text) + 1), :, [column(c) for c in text] + [0]]  # each next character's log P
        scores = self.log_priors + np.vstack([np.zeros(len(self.parts)), np.cumsum(steps, axis=0)[:-1]])
        scores[-1] += steps[-1]  # the end of the line, after the last character
        return np.exp(scores - np.logaddexp.reduce(scores, axis=1, keepdims=True))

    def save(self, path, weight, bonus, **about):
        """One .npz with every model and its prior (format 4); `CharLM.load` reads it back as a mix."""
        return _save(path, self.parts, weight, bonus, {**self.about, **about}, priors=self.priors)

    def distributions(self, codes):
        """(len(codes), models, COLUMNS): each model's `CharLM.distributions` (remembered alike)."""
        rows = _remembered(self._cache, codes, self._distributions)
        return rows if len(codes) else np.zeros((0, len(self.parts), COLUMNS))

    def _distributions(self, codes):
        contexts = codes[:, None] % self._powers[None, :]
        every = contexts[None, :, 2:] + self._offsets[:, None, None]
        every = every.reshape(len(self.parts) * len(codes), every.shape[-1])  # model by model
        low = np.concatenate([part._low[contexts[:, min(self.order, 2) - 1]] for part in self.parts])  # model by model
        p = np.log(np.maximum(_spread(self, every, low), 1e-12))
        return p.reshape(len(self.parts), len(codes), COLUMNS).transpose(1, 0, 2)


CORE_META = ("format", "order", "discount", "weight", "bonus", "beam", "smoothing", "penalty", "priors", "models")


def _checked_words(raw):
    """The word list stored in a language model file (UTF-8 words, one per line), or ValueError."""
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_WORD_BYTES:
        raise ValueError
    words = raw.tobytes().decode("utf-8").split("\n")  # a UnicodeDecodeError is a ValueError
    if not all(0 < len(w) <= 64 and w == w.lower() and all(c in LETTERS for c in w) for w in words):
        raise ValueError
    return frozenset(words)


def _unknown_word(prefix, words):
    """1 if the letters that end `prefix` make a word of two letters or more that `words` lacks."""
    i = len(prefix)
    while i > 0 and prefix[i - 1] in LETTERS:
        i -= 1
    return int(len(prefix) - i >= 2 and prefix[i:].lower() not in words)


WORD = re.compile(r"[^\W\d_]+")  # a run of letters: what the beam search checks as one word


def word_list(manifest, size=WORD_LIST_SIZE, test_words=True):
    """The words a reading may be checked against: those of the real training transcriptions, and
    wordfreq's `size` most frequent French and English words. Folded onto the alphabet as the
    transcriptions are ("coeur" for "cœur") and cut where the search cuts a word ("aujourd", "hui"
    for "aujourd'hui"). Lower case, letters only.

    `test_words=False` leaves out the tenth of wordfreq's words that the synthetic and font test
    lines are made of (`lines.in_split`): read with that list, those lines measure writing whose
    words the list lacks, as a name or a rare word would be."""
    from . import lines

    try:
        import wordfreq
    except ImportError:
        raise HCRError("The word list is missing: run `pip install -r requirements.txt`.") from None
    words = {w.lower() for e in manifest.split("train") for w in WORD.findall(e.text)}
    for language in ("fr", "en"):
        for token in wordfreq.top_n_list(language, size):
            if test_words or lines.in_split(token, "train"):
                words.update(WORD.findall(fold(token)[0].lower()))
    return frozenset(w for w in words if all(c in LETTERS for c in w))


def beam_decode(logits, lm, weight=0.5, bonus=1.0, beam=None, prune=1e-3, skip_blanks=True, words=None,
                penalty=0.0):
    """(text, confidence) for ONE line's logits (T, classes), by CTC prefix beam search with `lm`
    keeping `beam` texts (the LM's own width unless given).

    With a word list `words` (lower case; `word_list`), each finished word of two letters or more
    that is not in it costs `penalty` (in the reader's log-probability units): the character model
    judges letters by their few neighbours, the list judges the whole word.

    The confidence returned is the best text's probability per column, exp(mean log p), a rough
    "how sure"; `TextReader` reports greedy decoding's instead, the reader's own certainty.
    `skip_blanks` passes quickly over columns where only the blank is likely (most of a CTC
    reading): the same texts and confidences, in about half the time (False: the plain search).
    The kept texts' scores are numpy arrays, and the language model is asked once per column
    for the distributions of the histories it has not seen (`CharLM.distributions`). With a
    `MixedLM`, each text keeps one score per model, and the mix of them is what ranks it.
    """
    beam = lm.beam if beam is None else beam
    if words is not None and not 0 <= penalty <= MAX_PENALTY:  # NaN fails too
        raise HCRError(f"penalty={penalty!r} is out of range: choose 0 to {MAX_PENALTY:g}.")
    chosen = torch.log_softmax(logits.detach().float().cpu(), dim=-1).numpy()  # candidates chosen in float32
    log_probs = chosen.astype(np.float64)  # and summed in float64
    floor, inf = math.log(prune), -math.inf
    # the kept texts, side by side: log p ending in blank / in their last character, each model's LM score,
    # penalties of finished words missing from `words`, last class (-1: none), LM history code
    models, log_priors = len(getattr(lm, "parts", [lm])), getattr(lm, "log_priors", None)

    def asked(codes):  # (texts, models, COLUMNS)
        rows = lm.distributions(codes)
        return rows[:, None] if rows.ndim == 2 else rows

    def mixed(scores):  # (..., models) -> the mix's log-probability (`MixedLM`); one model: its own
        return scores[..., 0] if log_priors is None else np.logaddexp.reduce(scores + log_priors, axis=-1)

    texts = [""]
    pb, pnb, lm_score, missed = np.zeros(1), np.full(1, inf), np.zeros((1, models)), np.zeros(1)
    last, lengths, codes = np.full(1, -1), np.zeros(1, dtype=np.int64), [lm.history_code("")]
    where = np.full(log_probs.shape[1] + 1, -1)  # a class's place among this column's characters (-1: none)
    for t in range(log_probs.shape[0]):
        row = log_probs[t]
        candidates = np.flatnonzero(chosen[t] > floor)
        if not len(candidates):  # a `prune` above every class's probability: the likeliest one
            candidates = np.array([int(np.argmax(chosen[t]))])
        blank = candidates[0] == BLANK
        if skip_blanks and blank and len(candidates) == 1:  # most columns: only the blank
            pb, pnb = np.logaddexp(pb, pnb) + row[BLANK], np.full(len(texts), inf)
            continue
        chars = candidates[1:] if blank else candidates
        where[chars] = np.arange(len(chars))
        total = np.logaddexp(pb, pnb)
        # each kept text again: after a blank, or its last character repeated without one
        stay_pb = total + row[BLANK] if blank else np.full(len(texts), inf)
        place = where[last]  # where[-1] is always -1: a text with no character repeats none
        repeats = place >= 0
        stay_pnb = np.where(repeats, pnb + row[last], inf)
        # each kept text and one more character (a repeat needs a blank in between)
        grow = np.where(last[:, None] == chars[None, :], pb[:, None], total[:, None]) + row[chars][None, :]
        grow_lm = lm_score[:, None, :] + asked(codes)[:, :, chars].transpose(0, 2, 1)
        fresh = np.ones(grow.shape, dtype=bool)  # not already a kept text
        if repeats.any():
            at = {text: i for i, text in enumerate(texts)}
            for j in np.flatnonzero(repeats).tolist():
                i = at.get(texts[j][:-1])
                if i is not None:  # kept text i and this character make kept text j: one text
                    k = place[j]
                    stay_pnb[j] = np.logaddexp(stay_pnb[j], grow[i, k])
                    fresh[i, k] = False
        where[chars] = -1
        stays = np.arange(len(texts)) if blank else np.flatnonzero(np.isfinite(stay_pnb))
        rows, cols = np.nonzero(fresh)
        grow_missed = missed[rows]
        if words is not None and penalty:  # a character that is not a letter finishes a word
            for n in np.flatnonzero(~IS_LETTER[chars[cols]]).tolist():
                grow_missed[n] += penalty * _unknown_word(texts[rows[n]], words)
        new_len = np.concatenate([lengths[stays], lengths[rows] + 1])
        new_pb = np.concatenate([stay_pb[stays], np.full(len(rows), inf)])
        new_pnb = np.concatenate([stay_pnb[stays], grow[rows, cols]])
        new_lm = np.concatenate([lm_score[stays], grow_lm[rows, cols]])
        new_missed = np.concatenate([missed[stays], grow_missed])
        new_last = np.concatenate([last[stays], chars[cols]])
        score = np.logaddexp(new_pb, new_pnb) + weight * mixed(new_lm) + bonus * new_len - new_missed
        keep = np.argsort(-score, kind="stable")[:beam]
        n_stay, from_text = len(stays), np.concatenate([stays, rows])[keep].tolist()
        new_texts, new_codes = [], []
        for n, i, c in zip(keep.tolist(), from_text, new_last[keep].tolist()):
            if n < n_stay:
                new_texts.append(texts[i])
                new_codes.append(codes[i])
            else:
                new_texts.append(texts[i] + ALPHABET[c - 1])
                new_codes.append(lm.extend(codes[i], ALPHABET[c - 1]))
        texts, codes, last, lengths = new_texts, new_codes, new_last[keep], new_len[keep]
        pb, pnb, lm_score, missed = new_pb[keep], new_pnb[keep], new_lm[keep], new_missed[keep]
    ends = asked(codes)[:, :, 0]
    if words is not None:  # the last word ends with the line
        missed = missed + penalty * np.array([_unknown_word(text, words) for text in texts])
    total = np.logaddexp(pb, pnb)
    best = int(np.argmax(total + weight * mixed(lm_score + ends) + bonus * lengths - missed))
    confidence = math.exp(total[best] / max(1, log_probs.shape[0]))
    return texts[best], confidence


ENGLISH_SENTENCES = 20_000  # drawn English sentences that `training_texts` counts with the transcriptions


def training_texts(manifest, count=ENGLISH_SENTENCES, seed=0, french=0):
    """Texts to count the language model from: the real training transcriptions, and as many
    sentences of training words with punctuation (English), so neither language dominates;
    with `french`, that many sentences of French training words too (the real lines are French,
    and their few thousand transcriptions hold only part of its words)."""
    from . import lines

    rng = np.random.default_rng(seed)
    real = [e.text for e in manifest.split("train")]
    drawn = [lines.punctuate(lines.sample_text(rng, "train", 48), rng) for _ in range(count)]
    return real + drawn + [lines.punctuate(french_sentence(rng), rng) for _ in range(french)]


ELIDED = {"l", "d", "c", "j", "m", "n", "s", "t", "qu", "jusqu", "lorsqu", "puisqu"}  # written l'homme, qu'il


def french_sentence(rng, max_chars=48):
    """Words of the French list drawn by frequency (training words only), elisions joined to the
    next word, the first letter capital half the time: text to count letters' neighbours from."""
    from . import lines

    words, weights, _ = lines.vocabulary("train", "fr")
    target, out = int(rng.integers(8, max_chars + 1)), []
    while sum(map(len, out)) + len(out) < target:
        word = words[lines._draw(rng, weights)]
        if word in ELIDED:  # before a vowel or h only: draw until one comes, or leave the elision out
            after = next((w for w in (words[lines._draw(rng, weights)] for _ in range(8))
                          if w[0] in "aeiouhéèêàâîôû" and w not in ELIDED), None)
            if after is None:
                continue
            word = f"{word}'{after}"
        out.append(word)
    text = " ".join(out)
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    return fold(text)[0]
