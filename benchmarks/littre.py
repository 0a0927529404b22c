"""French prose for the language model: the quotations of Littré's dictionary, cut into lines.

    apt-get install stardict-xmlittre     # Debian's XMLittré, the whole Littré (1863-1877) as a StarDict file

The real test lines are mostly 18th- and 19th-century letters and manuscripts, while the training
transcriptions are mostly register entries (names, dates, deeds). Littré's dictionary quotes about
290,000 passages of French writers of the 17th to 19th centuries (Pascal, Racine, Voltaire,
Sévigné's letters...): the prose those manuscripts were written in. Only the quotations are taken;
the dictionary's own definitions are dense with abbreviations. The dictionary is in the public
domain; the XML edition is François Gannaz's (XMLittré). Nothing here is handwriting. Only
`python -m benchmarks.lines prose` reads it: had its rule chosen the prose, the counts would have
shipped inside `checkpoints/lines_lm.npz`, and a user would never need the package
(docs/lines.md, "French prose in the language model": it did not ship).
"""

import gzip
import html
import re
from pathlib import Path

import numpy as np

from helpers.alphabet import fold
from helpers.errors import HCRError

LITTRE = Path("/usr/share/stardict/dic/XMLittre.dict.dz")  # dictzip is gzip: gzip reads it
SOURCE = ("the quotations of Émile Littré's Dictionnaire de la langue française (1863-1877, public domain), "
          "from François Gannaz's XMLittré (Debian's stardict-xmlittre)")
QUOTATION = re.compile(r'<span foreground="#0000CD">(.*?)</span>', re.S)  # the edition's colour for quotations
EDITORIAL = re.compile(r"\[[^\]]*\]")  # Littré's own glosses inside a quotation: "[de Louis XIV]"
TAG = re.compile(r"<[^>]+>")


def quotations(path=LITTRE):
    """Every quotation of the dictionary, its markup and Littré's glosses dropped, folded onto the
    reader's alphabet (so "cœur" is counted as "coeur", as the transcriptions are)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise HCRError(f"Littré's dictionary is not at {path}: install it with `apt-get install "
                       "stardict-xmlittre`, or leave out the language models that count it.") from None
    except (OSError, EOFError, UnicodeDecodeError):
        raise HCRError(f"{path} is not a readable dictzip file: reinstall it with `apt-get install "
                       "--reinstall stardict-xmlittre`.") from None
    out = []
    for raw in QUOTATION.findall(text):
        quote = fold(EDITORIAL.sub(" ", html.unescape(TAG.sub("", raw))))[0]
        if len(quote) >= 10:  # "Un vice" (7 characters) is left out: a word or two teaches little
            out.append(quote)
    return out


def as_lines(quotes, chars, seed=0, shortest=15, longest=60):
    """Quotations in a seeded order, cut at spaces into pieces of `shortest` to `longest`
    characters, as a page cuts prose into lines (a manuscript line starts and ends mid-sentence),
    until about `chars` characters."""
    rng = np.random.default_rng(seed)
    out, total = [], 0
    for i in rng.permutation(len(quotes)):
        line, target = [], int(rng.integers(shortest, longest + 1))
        for word in quotes[i].split():
            line.append(word)
            if sum(map(len, line)) + len(line) - 1 >= target:
                out.append(" ".join(line))
                total, line, target = total + len(out[-1]), [], int(rng.integers(shortest, longest + 1))
        if line:
            out.append(" ".join(line))
            total += len(out[-1])
        if total >= chars:
            break
    return out


def without_overlap(quotes, texts, run=20):
    """The quotations that share no run of `run` characters (ignoring case) with any of `texts`.

    Given the val and test transcriptions: some of those lines copy works that Littré quotes
    (Diderot's, in the 18th-century manuscripts), and a language model that had counted those
    passages would have read the lines' words before; the figures measured on them would flatter it.
    A common phrase of 20 characters drops a quotation for nothing, which costs little of 290,000."""
    runs = {text.lower()[i:i + run] for text in texts for i in range(len(text) - run + 1)}
    kept = []
    for quote in quotes:
        low = quote.lower()
        if not any(low[i:i + run] in runs for i in range(len(low) - run + 1)):
            kept.append(quote)
    return kept
