"""Beam search for CTC with a character language model: the neighbours of a letter in real words
help to read it when the pen is unclear.

Greedy decoding takes the best class in each column. A beam search keeps the few best texts so
far and scores each by the reader's probability plus `weight` times a character n-gram model's
log-probability (plus `bonus` per character, so the model's taste for short texts does not
drop letters). The n-gram model is counted from training text only: the real training
transcriptions and sentences drawn from training words; nothing is downloaded.
"""

import gzip
import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from .alphabet import ALPHABET, BLANK, fold
from .errors import HCRError
from .paths import CHECKPOINTS

START = "\x02"  # pads the history at the start of a line
SHIPPED_LM = CHECKPOINTS / "lines_lm.json.gz"  # the language model and the beam setting chosen on val
LM_FORMAT = 1
BEAM = 8  # texts kept at each column, unless the LM file says otherwise


SMOOTHINGS = ("absolute", "kneser-ney")


class CharLM:
    """An n-gram model of characters (order `order`) with interpolated discounting; `beam` is the
    beam width to read with it (chosen on val with the weight and bonus).

    "absolute" backs off to the shorter contexts' counts. "kneser-ney" backs off to how many
    different characters came before each shorter n-gram instead: a letter pair seen in many
    words is likely in a new one, a pair seen often in one word is not. The shipped model is of
    that kind: it read val and the dev fonts' English lines better (docs/lines.md).
    """

    def __init__(self, texts, order=5, discount=0.75, beam=BEAM, smoothing="absolute"):
        if smoothing not in SMOOTHINGS:
            raise HCRError(f"smoothing={smoothing!r} is unknown: choose one of {', '.join(SMOOTHINGS)}.")
        self.order, self.discount, self.beam, self.smoothing = order, discount, beam, smoothing
        self.counts = [defaultdict(Counter) for _ in range(order)]  # k: history of length k -> next char counts
        for text in texts:
            padded = START * (order - 1) + text + "\n"
            for i in range(order - 1, len(padded)):
                for k in range(order):
                    self.counts[k][padded[i - k : i]][padded[i]] += 1
        self.vocab = len(ALPHABET) + 1
        self.tabulate()

    def tabulate(self):
        """The tables `logprob` reads: per order, history -> next char -> count; for Kneser-Ney the
        shorter orders hold how many different characters came before history+char instead."""
        self._tables = list(self.counts)
        if self.smoothing == "kneser-ney":
            for k in range(self.order - 1):
                table = {}
                for longer, seen in self.counts[k + 1].items():
                    after = table.setdefault(longer[1:], {})
                    for char in seen:
                        after[char] = after.get(char, 0) + 1
                self._tables[k] = table
        self._totals, self._cache = {}, {}

    def save(self, path, weight, bonus, **about):
        """Write the counts and the beam setting to gzipped JSON (a few MB of plain data, no code)."""
        payload = {"format": LM_FORMAT, "order": self.order, "discount": self.discount, "weight": weight,
                   "bonus": bonus, "beam": self.beam, "smoothing": self.smoothing, **about,
                   "counts": [{h: dict(c) for h, c in self.counts[k].items()} for k in range(self.order)]}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(gzip.compress(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode(), mtime=0))
        partial.replace(path)  # a crash mid-write never leaves a half file under the real name
        return path

    @classmethod
    def load(cls, path=SHIPPED_LM):
        """(CharLM, weight, bonus) from a file written by `save`; HCRError with one sentence if unusable."""
        try:
            payload = json.loads(gzip.decompress(Path(path).read_bytes()))
            order, discount = int(payload["order"]), float(payload["discount"])
            weight, bonus = float(payload["weight"]), float(payload["bonus"])
            beam = payload.get("beam", BEAM)  # files written before the width was chosen read with the old one
            smoothing = payload.get("smoothing", "absolute")  # and before Kneser-Ney, with absolute discounting
            counts = payload["counts"]
            if payload.get("format") != LM_FORMAT or not 1 <= order <= 8 or len(counts) != order or not (
                    0 < discount < 1 and 0 <= weight <= 5 and -5 <= bonus <= 5) or isinstance(beam, bool) or not (
                    isinstance(beam, int) and 1 <= beam <= 64) or smoothing not in SMOOTHINGS:
                raise ValueError
            lm = cls([], order, discount, beam, smoothing)
            for k, table in enumerate(counts):
                for history, seen in table.items():  # whole counts of at least one (checked in C: loads fast)
                    if len(history) != k or min(seen.values()) < 1 or type(sum(seen.values())) is not int:
                        raise ValueError
            lm.counts = counts  # plain dicts: read, never added to, once loaded
            lm.tabulate()
        except FileNotFoundError:
            raise HCRError(f"The language model {path} is missing: restore it with `git checkout {SHIPPED_LM.name}` "
                           "in checkpoints/, or read with greedy decoding (lm=None).") from None
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
            raise HCRError(f"The language model {path} is damaged: restore the shipped one, or read with greedy "
                           "decoding (lm=None).") from None
        return lm, weight, bonus

    def logprob(self, history, char):
        """log P(char | the last order-1 characters of history)."""
        history = (START * (self.order - 1) + history)[-(self.order - 1):] if self.order > 1 else ""
        key = (history, char)
        if key in self._cache:
            return self._cache[key]
        p = 1.0 / self.vocab
        for k in range(self.order):
            context = history[len(history) - k:] if k else ""
            seen = self._tables[k].get(context)
            if seen is None:
                continue
            totals = self._totals.get((k, context))
            if totals is None:
                totals = self._totals[k, context] = (sum(seen.values()), len(seen))
            total, kinds = totals
            p = max(seen.get(char, 0) - self.discount, 0) / total + self.discount * kinds / total * p
        value = math.log(max(p, 1e-12))
        if len(self._cache) < 2_000_000:
            self._cache[key] = value
        return value


def _logsumexp(a, b):
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_decode(logits, lm, weight=0.5, bonus=1.0, beam=None, prune=1e-3, skip_blanks=True):
    """(text, confidence) for ONE line's logits (T, classes), by CTC prefix beam search with `lm`
    keeping `beam` texts (the LM's own width unless given).

    The confidence returned is the best text's probability per column, exp(mean log p), a rough
    "how sure"; `TextReader` reports greedy decoding's instead, the reader's own certainty.
    `skip_blanks` passes quickly over columns where only the blank is likely (most of a CTC
    reading): the same texts and confidences, in about half the time (False: the plain search).
    """
    beam = lm.beam if beam is None else beam
    log_probs = torch.log_softmax(logits.detach().float().cpu(), dim=-1).numpy()
    beams = {"": (0.0, -math.inf)}  # prefix -> (log p ending in blank, log p ending in its last char)
    lm_score = {"": 0.0}
    for t in range(log_probs.shape[0]):
        row = log_probs[t]
        candidates = np.flatnonzero(row > math.log(prune))
        if skip_blanks and len(candidates) == 1 and candidates[0] == BLANK:  # most columns: only the blank
            p = float(row[BLANK])  # every text just ends in a blank; the same term for all keeps their order
            beams = {prefix: (_logsumexp(pb, pnb) + p, -math.inf) for prefix, (pb, pnb) in beams.items()}
            continue
        new = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            for c in candidates:
                p = float(row[c])
                if c == BLANK:
                    entry = new[prefix]
                    entry[0] = _logsumexp(entry[0], total + p)
                    continue
                char = ALPHABET[c - 1]
                extended = prefix + char
                entry = new[extended]
                if prefix and prefix[-1] == char:
                    entry[1] = _logsumexp(entry[1], pb + p)  # a repeat needs a blank in between
                    same = new[prefix]
                    same[1] = _logsumexp(same[1], pnb + p)
                else:
                    entry[1] = _logsumexp(entry[1], total + p)
                if extended not in lm_score:
                    lm_score[extended] = lm_score[prefix] + lm.logprob(prefix, char)
        ranked = sorted(new.items(), key=lambda kv: _logsumexp(*kv[1]) + weight * lm_score[kv[0]]
                        + bonus * len(kv[0]), reverse=True)
        beams = {k: tuple(v) for k, v in ranked[:beam]}
    best, (pb, pnb) = max(beams.items(), key=lambda kv: _logsumexp(*kv[1])
                          + weight * (lm_score[kv[0]] + lm.logprob(kv[0], "\n")) + bonus * len(kv[0]))
    confidence = math.exp(_logsumexp(pb, pnb) / max(1, log_probs.shape[0]))
    return best, confidence


def training_texts(manifest, count=20_000, seed=0, french=0):
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
