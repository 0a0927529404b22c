"""The characters the line reader writes, and what happens to every other character.

Real sentences hold punctuation, and the real lines we train on are French, so the alphabet
has the punctuation people write and the accented letters that the data holds in useful
numbers. A character outside it is handled on purpose: `FOLD` maps look-alikes and typographic
variants onto the alphabet (a curly apostrophe is an apostrophe, a long s is an s), and
`fold` reports whatever is still left, so that a caller drops those lines knowingly.
"""

import unicodedata

from .errors import HCRError

DIGITS = "0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOWER = "abcdefghijklmnopqrstuvwxyz"
PUNCTUATION = ".,'\"-:;!?()/&+=°%"
# Accented letters with at least ~20 occurrences in the real training lines (French).
ACCENTED = "éèêëàâçôîïûùüÉ"

ALPHABET = " " + DIGITS + UPPER + LOWER + PUNCTUATION + ACCENTED  # CTC class k+1 is ALPHABET[k]
BLANK = 0  # the CTC blank; never a character
NUM_CTC_CLASSES = len(ALPHABET) + 1
_INDEX = {ch: i + 1 for i, ch in enumerate(ALPHABET)}

# Typographic variants and rare letters -> characters of the alphabet.
FOLD = {
    "\u2019": "'", "\u2018": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2014": "-", "\u2013": "-", "\u2010": "-", "\u2011": "-", "\u00ac": "-",  # the not sign ends a broken word
    "\u017f": "s", "\u0153": "oe", "\u0152": "OE", "\u00e6": "ae", "\u00c6": "AE",
    "\u00ff": "y", "\u00e4": "a", "\u00f6": "o", "\u00e1": "a", "\u00ed": "i", "\u00f3": "o", "\u00fa": "u",
    "\u00f1": "n", "\u00ca": "E", "\u00cb": "E", "\u00c8": "E", "\u00c0": "A", "\u00c7": "C", "\u00d4": "O",
    "\u0134": "J", "\u0135": "j", "\u00ba": "°", "\u00a0": " ",
}


def fold(text):
    """(text in the alphabet, characters that had no place): NFC, variants folded, spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    out, unknown = [], set()
    for ch in text:
        ch = FOLD.get(ch, ch)
        for c in ch:
            if c in _INDEX:
                out.append(c)
            elif c.isspace():
                out.append(" ")
            else:
                unknown.add(c)
    return " ".join("".join(out).split()), unknown


def ascii_fold(text):
    """Accents stripped (é -> e): to measure what reading accents costs the other letters."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def encode(text):
    """Text -> list of CTC class indices; refuses characters outside the alphabet."""
    try:
        return [_INDEX[ch] for ch in text]
    except KeyError as error:
        raise HCRError(f"{error.args[0]!r} is not in the line alphabet: pass the text through alphabet.fold "
                       "first.") from None


def decode(indices):
    """CTC class indices (without blanks) -> text."""
    return "".join(ALPHABET[i - 1] for i in indices if i != BLANK)
