"""The project's single label scheme: 0-9 are digits, 10-35 are the letters A-Z.

EMNIST Letters merges upper and lower case into one class per letter, so "A" stands for
both "A" and "a". Kept free of torch so that light tools can import it.
"""

CLASS_NAMES = tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
NUM_CLASSES = len(CLASS_NAMES)
NUM_DIGITS = 10

# Which dataset an example came from; stored next to every label so results split by source.
SOURCES = ("MNIST", "EMNIST")
MNIST, EMNIST = 0, 1

# Shapes that even a careful human cannot always tell apart once the context is gone.
LOOKALIKE_GROUPS = (("0", "O"), ("1", "I", "L"), ("2", "Z"), ("5", "S"))


def lookalike_key(index):
    """Index of the first member of the look-alike group of a class (itself if none)."""
    name = CLASS_NAMES[index]
    for group in LOOKALIKE_GROUPS:
        if name in group:
            return CLASS_NAMES.index(group[0])
    return index


LOOKALIKE_KEY = tuple(lookalike_key(i) for i in range(NUM_CLASSES))


# --- Upper and lower case: 62 classes, EMNIST ByClass's order -----------------------------------
# 0-9 digits, 10-35 capitals A-Z, 36-61 small letters a-z. The first 36 are the 36-class scheme,
# so a 62-class label maps to the 36-class one by folding small letters onto their capitals.
CASE_CLASS_NAMES = CLASS_NAMES + tuple("abcdefghijklmnopqrstuvwxyz")
CASE_NUM_CLASSES = len(CASE_CLASS_NAMES)
TO_36 = tuple(i if i < NUM_CLASSES else i - 26 for i in range(CASE_NUM_CLASSES))

# Letters whose small and capital forms EMNIST's ByMerge split treats as one shape (47 classes).
BYMERGE_MERGED = "cijklmopsuvwxyz"
TO_47 = tuple(
    TO_36[i] if CASE_CLASS_NAMES[i].lower() in BYMERGE_MERGED else i for i in range(CASE_NUM_CLASSES)
)

# EMNIST Letters knows the letter but not its case. In the case-sensitive training set such an
# image gets label CASE_EITHER + k ("letter k, either case"), and the loss counts both classes
# of the letter as right (`training.target_set_loss(CASE_TARGET_SETS)`).
CASE_EITHER = CASE_NUM_CLASSES
CASE_TARGET_SETS = tuple(
    tuple(c == label for c in range(CASE_NUM_CLASSES)) for label in range(CASE_NUM_CLASSES)
) + tuple(
    tuple(c in (NUM_DIGITS + k, NUM_CLASSES + k) for c in range(CASE_NUM_CLASSES)) for k in range(26)
)
