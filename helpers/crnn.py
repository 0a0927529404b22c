"""Reading a whole line: a CRNN (convolutions, then a sequence layer) trained with CTC.

One CNN per character cannot tell a ring from an O or a 0, nor a stick from 1, I or l: the
neighbours decide. A CRNN reads the line as a sequence of columns. The CNN turns the line
(1 x 48 x W) into W/4 column features, a bidirectional LSTM lets every column see the whole
line, and a linear layer gives each column a probability for every character and for "blank".
CTC (connectionist temporal classification) trains this without knowing where each character
is: it sums over every way of spreading the text over the columns. Greedy decoding keeps the
best class per column, merges repeats and drops blanks.

This module holds the model, its decoding and scores, its checkpoints and `TextReader`, which
reads users' pictures; `line_training` teaches it.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .alphabet import ALPHABET, BLANK, NUM_CTC_CLASSES, decode
from .errors import HCRError
from .framing import LINE_HEIGHT
from .paths import CHECKPOINTS, RUNS

STRIDE = 4  # the CNN halves the width twice: one output column per 4 pixels
MODEL_NAME = "crnn"
SHIPPED = CHECKPOINTS / "lines.pt"
TRAINED = RUNS / "lines.pt"
UNSURE_BELOW = 0.5  # a reading whose least certain character is below this is flagged "unsure"
# Lines wider than any real line (real lines are at most 27 times as wide as tall: 325 columns at 48 px)
# are read greedily: the beam search's time grows with the columns, and a crafted picture of 100:1
# held the reader for 19 s.
BEAM_MAX_COLUMNS = 600
# A line is read three times, as framed and moved 1 pixel up and down, and the three readings'
# probabilities are averaged: the reader is less sure where a line sits in its frame than the framing
# assumes. Chosen on the val lines (`python -m benchmarks.lines shifts`, assets/lines_shifts.json).
READ_SHIFTS = (0, -1, 1)


# --- The model ----------------------------------------------------------------------------------


def _block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


FIX = "copy it again, retrain it, or use the shipped checkpoint."  # what a learner can do about a bad config


def check_config(config):
    """A CRNN's config, checked field by field before anything is built (configs come from files too)."""
    if not isinstance(config, dict):
        raise HCRError(f"The line reader's config is not a dictionary: the checkpoint is damaged; {FIX}")
    known = {"num_classes", "height", "channels", "hidden", "layers", "dropout"}
    unknown = set(config) - known
    if unknown:
        raise HCRError(f"The line reader's config has unknown fields ({', '.join(sorted(map(str, unknown)))}): "
                       "the checkpoint was saved by another version of this project; retrain it or use the "
                       "shipped checkpoint.")

    def whole(name, low, high):
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise HCRError(f"The line reader's {name} is {value!r}, not a whole number from {low} to {high}: "
                           f"the checkpoint is damaged; {FIX}")

    whole("num_classes", 2, 1024)
    whole("height", 16, 128)
    whole("hidden", 1, 2048)
    whole("layers", 1, 8)
    if config["height"] % 16:
        raise HCRError(f"The line reader's height is {config['height']}, not a multiple of 16: the checkpoint is "
                       f"damaged; {FIX}")
    channels = config.get("channels")
    if not isinstance(channels, (list, tuple)) or len(channels) != 4 or not all(
            isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 1024 for c in channels):
        raise HCRError(f"The line reader's channels are {channels!r}, not four whole numbers from 1 to 1024: "
                       f"the checkpoint is damaged; {FIX}")
    dropout = config.get("dropout")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise HCRError(f"The line reader's dropout is {dropout!r}, not a number from 0 to 1: the checkpoint is "
                       f"damaged; {FIX}")
    return config


class CRNN(nn.Module):
    """(N, 1, height, W) lines -> (N, W/4, classes) logits, class 0 being the CTC blank."""

    def __init__(self, num_classes=NUM_CTC_CLASSES, height=LINE_HEIGHT, channels=(32, 64, 96, 128), hidden=128,
                 layers=2, dropout=0.1):
        super().__init__()
        self.config = check_config({"num_classes": num_classes, "height": height, "channels": list(channels),
                                    "hidden": hidden, "layers": layers, "dropout": dropout})
        a, b, c, d = channels
        self.cnn = nn.Sequential(
            *_block(1, a), nn.MaxPool2d(2),  # H x W -> H/2 x W/2
            *_block(a, b), nn.MaxPool2d(2),  # -> H/4 x W/4
            *_block(b, c), *_block(c, c), nn.MaxPool2d((2, 1)),  # -> H/8 x W/4
            *_block(c, d), nn.AdaptiveMaxPool2d((2, None)),  # -> 2 rows x W/4 (H/16 at 32 px)
        )  # two rows whatever the height: a reader of one height can start from one of another
        self.dropout = nn.Dropout(dropout)
        self.sequence = nn.LSTM(d * 2, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                                dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(2 * hidden, num_classes)

    @property
    def height(self):
        return self.config["height"]

    def forward(self, x, widths=None):
        """With `widths`, each line's padding is kept out of the LSTM (packed sequences), so a line
        reads the same whatever the width of the other lines of its batch."""
        if x.shape[2] != self.height:  # the pooling would take any height, and read it badly
            raise HCRError(f"These lines are {x.shape[2]} pixels tall, but this reader reads lines of {self.height}: "
                           f"frame them with height={self.height}.")
        f = self.cnn(x).flatten(1, 2).transpose(1, 2)  # (N, T, C * 2)
        f = self.dropout(f)
        if widths is None:
            f, _ = self.sequence(f)
        else:
            lengths = frames(widths).clamp(1, f.shape[1]).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(f, lengths, batch_first=True, enforce_sorted=False)
            f, _ = self.sequence(packed)
            f, _ = nn.utils.rnn.pad_packed_sequence(f, batch_first=True, total_length=lengths.max().item())
        return self.head(self.dropout(f))  # (N, T, classes)


def frames(widths):
    """Output columns the model gives a line of each width."""
    return torch.as_tensor(widths) // STRIDE


def ctc_loss(logits, widths, targets, target_lengths):
    """Mean CTC loss per target character; the input lengths follow each line's own width."""
    log_probs = F.log_softmax(logits.float(), dim=2).transpose(0, 1)  # (T, N, C)
    lengths = frames(widths).clamp(max=log_probs.shape[0])
    return F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=BLANK, reduction="mean", zero_infinity=True)


# --- Decoding and scores ------------------------------------------------------------------------


def greedy_decode(logits, widths=None):
    """Best class per column, repeats merged, blanks dropped -> [(text, confidence, char probs)].

    A character's probability is the highest its class reached over the columns it covers;
    the line's confidence is that of its least certain character (1.0 for an empty line).
    """
    probs = torch.softmax(logits.float(), dim=2)
    best, index = probs.max(dim=2)
    lengths = frames(widths).tolist() if widths is not None else [logits.shape[1]] * logits.shape[0]
    out = []
    for row, n in enumerate(lengths):
        ids, ps = index[row, :n].tolist(), best[row, :n].tolist()
        chars, char_probs, previous = [], [], BLANK
        for i, p in zip(ids, ps):
            if i != BLANK and i == previous:
                char_probs[-1] = max(char_probs[-1], p)
            elif i != BLANK:
                chars.append(i)
                char_probs.append(p)
            previous = i
        out.append((decode(chars), min(char_probs, default=1.0), char_probs))
    return out


def levenshtein(a, b):
    """Edit distance between two sequences (insertions, deletions and substitutions cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _matches(a, b):
    """How many items of `b` an optimal edit of `a` into `b` keeps unchanged."""
    n, m = len(a), len(b)
    cost = np.zeros((n + 1, m + 1), int)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    i, j, kept = n, m, 0
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1] and cost[i, j] == cost[i - 1, j - 1]:
            kept, i, j = kept + 1, i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j - 1] + 1:
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return kept


def cer(predictions, truths, ignore_case=False):
    """Character error rate: total edit distance over total length of the true texts."""
    if isinstance(predictions, str):
        predictions, truths = [predictions], [truths]
    if ignore_case:
        predictions, truths = [p.lower() for p in predictions], [t.lower() for t in truths]
    errors = sum(levenshtein(p, t) for p, t in zip(predictions, truths))
    return errors / max(1, sum(len(t) for t in truths))


def cer_by_group(predictions, truths, groups, ignore_case=False):
    """{group: CER in percent}, groups in sorted order (the collections of the real lines)."""
    by = {}
    for p, t, g in zip(predictions, truths, groups):
        by.setdefault(g, ([], []))
        by[g][0].append(p)
        by[g][1].append(t)
    return {g: 100 * cer(*by[g], ignore_case=ignore_case) for g in sorted(by)}


def macro_cer(predictions, truths, groups):
    """Mean of each group's CER (in percent): every collection counts alike, however many lines it
    has, so that one large collection (the val split is three quarters registers) does not choose alone."""
    per_group = cer_by_group(predictions, truths, groups)
    return sum(per_group.values()) / max(1, len(per_group))


def word_accuracy(predictions, truths):
    """Share of the true words read exactly (aligned by word-level edit distance)."""
    if isinstance(predictions, str):
        predictions, truths = [predictions], [truths]
    kept = sum(_matches(p.split(), t.split()) for p, t in zip(predictions, truths))
    return kept / max(1, sum(len(t.split()) for t in truths))


def line_accuracy(predictions, truths, ignore_case=False):
    """Share of lines read exactly (spaces normalised)."""
    def norm(s):
        s = " ".join(s.split())
        return s.lower() if ignore_case else s
    return sum(norm(p) == norm(t) for p, t in zip(predictions, truths)) / max(1, len(truths))


def score(predictions, truths):
    """Every line metric at once, in percent (what the benchmarks and the notebook quote)."""
    return {
        "lines": len(truths),
        "cer": 100 * cer(predictions, truths),
        "cer_ignore_case": 100 * cer(predictions, truths, ignore_case=True),
        "word_acc": 100 * word_accuracy(predictions, truths),
        "line_acc": 100 * line_accuracy(predictions, truths),
        "line_acc_ignore_case": 100 * line_accuracy(predictions, truths, ignore_case=True),
    }


# --- Running the model ---------------------------------------------------------------------------

BATCH_PIXELS = 48 * 16_000  # a batch holds at most this many pixels (lines x widest line x height)


def pixel_batches(widths, height, max_pixels=BATCH_PIXELS, max_lines=64, generator=None):
    """Batches of lines of similar width, each within a pixel budget (so memory is bounded by the
    budget, not by the widest line times the batch size); lightly shuffled when a generator is given."""
    widths = torch.as_tensor(widths, dtype=torch.float)
    key = widths * (1 + 0.1 * torch.rand(len(widths), generator=generator)) if generator is not None else widths
    order = torch.argsort(key).tolist()
    batches, current, widest = [], [], 0
    for i in order:
        w = int(widths[i])
        if current and (len(current) >= max_lines or (len(current) + 1) * max(widest, w) * height > max_pixels):
            batches.append(torch.tensor(current))
            current, widest = [], 0
        current.append(i)
        widest = max(widest, w)
    if current:
        batches.append(torch.tensor(current))
    if generator is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


@torch.no_grad()
def read_lines(model, line_set, device=None, max_pixels=BATCH_PIXELS):
    """Greedy readings [(text, confidence, char probs)] of every line of a LineSet, in order.

    Lines are read in batches of similar width; a line's padding is masked out of its own
    readings, so its answer does not depend on the other lines of its batch.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [None] * len(line_set)
    for idx in pixel_batches(line_set.widths, line_set.height, max_pixels):
        x, widths, _, _ = line_set.batch(idx, with_targets=False)
        logits = model(x.to(device), widths).float().cpu()
        for i, reading in zip(idx.tolist(), greedy_decode(logits, widths)):
            out[i] = reading
    model.train(was_training)
    return out


def evaluate_lines(model, line_set, device=None):
    """`score` of the model's greedy readings of a LineSet (with `macro_cer` if its lines have groups)."""
    texts = [text for text, _, _ in read_lines(model, line_set, device)]
    out = score(texts, line_set.texts)
    if line_set.groups is not None:
        out["macro_cer"] = macro_cer(texts, line_set.texts, line_set.groups)
    return out


# --- Checkpoints ---------------------------------------------------------------------------------


def default_reader_checkpoint():
    """Your own trained line reader if there is one newer than the shipped one, else the shipped one.

    Chapter 3's reader is a fine-tune of the shipped one: after an update brings a better shipped
    reader, a fine-tune of the old one would otherwise keep being used (run chapter 3 again)."""
    if TRAINED.is_file() and (not SHIPPED.is_file() or TRAINED.stat().st_mtime >= SHIPPED.stat().st_mtime):
        return TRAINED
    return SHIPPED


def save_reader(path, model, metrics=None, recipe=None):
    """Save a CRNN in the project's checkpoint format, with the same safe write as every checkpoint."""
    from . import checkpoint
    from .real_lines import ATTRIBUTION

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "model": MODEL_NAME,
        "class_names": ["<blank>"] + list(ALPHABET),
        "num_classes": NUM_CTC_CLASSES,
        "preprocessing": {"height": model.config["height"], "framing": "framing.frame_line",
                          "values": "float in [0, 1], bright ink on black"},
        "metrics": metrics,
        "recipe": recipe,
        "attribution": ATTRIBUTION,
        "extra": {"config": model.config},
        "state_dict": state,
    }
    return checkpoint.save_payload(path, payload)


REPLACE_LEAD = 0.5  # val CER points a reader must gain to replace another: 756 val lines blur smaller gaps


def save_if_better(path, model, history, start, recipe=None, lead=REPLACE_LEAD):
    """Save a reader fine-tuned from the checkpoint `start` only if it read val `lead` points better
    than `start` did when that was trained: the rule the shipped reader was chosen by, so that
    `default_reader_checkpoint` never switches to a reader that is only luckier on val.
    Returns (saved, a sentence saying what happened)."""
    from .checkpoint import read_checkpoint

    mine = (history.best or {}).get("val_cer")
    metrics = read_checkpoint(start).get("metrics")
    theirs = ((metrics.get("best") if isinstance(metrics, dict) else None) or {}).get("val_cer")
    if mine is None:
        return False, "Not saved: the fine-tune was never scored on the val lines."
    if isinstance(theirs, (int, float)) and theirs - mine < lead:
        return False, (f"Not saved: val CER {mine:.2f}% against {theirs:.2f}% for {Path(start).name}, a lead "
                       f"under {lead} points, so the reader in use stays.")
    save_reader(path, model, recipe=recipe, metrics={"fine_tuned_from": str(start), "best": history.best})
    against = f" against {theirs:.2f}% for {Path(start).name}" if isinstance(theirs, (int, float)) else ""
    return True, f"Saved {path}: val CER {mine:.2f}%{against}."


def load_reader(path=None, device="cpu"):
    """(CRNN in eval mode, checkpoint dict) from a file saved by `save_reader`."""
    from .checkpoint import read_checkpoint, refuse_non_finite

    path = Path(path) if path is not None else default_reader_checkpoint()
    payload = read_checkpoint(path)
    if payload.get("model") != MODEL_NAME:
        raise HCRError(f"{path} holds a '{payload.get('model')}' model that reads single characters, not lines: "
                       "pass a line reader saved by helpers.crnn.save_reader.")
    if payload.get("class_names") != ["<blank>"] + list(ALPHABET):
        raise HCRError(f"{path} reads another alphabet than this project's lines: retrain it with helpers.crnn.")
    extra = payload.get("extra")
    config = extra.get("config") if isinstance(extra, dict) else None
    try:
        check_config(config)
    except HCRError as error:  # name the file: the sentence alone does not say which checkpoint
        raise HCRError(f"{path}: {error}") from None
    if config["num_classes"] != NUM_CTC_CLASSES:
        raise HCRError(f"{path} has {config['num_classes']} output classes, not {NUM_CTC_CLASSES}: the checkpoint "
                       "is damaged; retrain it or use the shipped checkpoint.")
    refuse_non_finite(path, payload.get("state_dict"))
    state = payload.get("state_dict")
    with torch.device("meta"):  # shapes only, no memory: a config far larger than its weights is refused first
        shapes = {k: tuple(v.shape) for k, v in CRNN(**config).state_dict().items()}
    if not isinstance(state, dict) or {k: tuple(v.shape) for k, v in state.items() if torch.is_tensor(v)} != shapes:
        raise HCRError(f"{path} says it holds a line reader, but its weights do not fit: the file was edited "
                       "or saved by another version; retrain it or use the shipped checkpoint.")
    try:
        model = CRNN(**config)
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError):
        raise HCRError(f"{path} says it holds a line reader, but its weights do not fit: the file was edited "
                       "or saved by another version; retrain it or use the shipped checkpoint.") from None
    return model.to(device).eval(), payload


# --- Reading text for users ----------------------------------------------------------------------


@dataclass
class TextResult:
    text: str
    confidence: float  # probability of the least certain character
    unsure: bool  # confidence below UNSURE_BELOW, or nothing read: check this reading
    char_probs: list = field(default_factory=list, repr=False)
    image: np.ndarray = field(default=None, repr=False)  # the framed line the model saw
    box: tuple = None  # (left, top, right, bottom) in the picture, when read from a page

    def to_dict(self, path=None):
        out = {"path": path} if path is not None else {}
        out.update(text=self.text, confidence=round(self.confidence, 6), unsure=self.unsure)
        if self.box is not None:
            out["box"] = [int(v) for v in self.box]
        return out


class TextReader:
    """A trained line reader plus the line preprocessing; load once, read many lines."""

    def __init__(self, checkpoint=None, device="cpu", lm="shipped", tidy=True, shifts=READ_SHIFTS):
        self.path = checkpoint if checkpoint is not None else default_reader_checkpoint()
        self.tidy = tidy  # level the line and drop its neighbours' pieces (`framing.frame_line`)
        self.shifts = tuple(shifts)  # rows each line is moved by before its readings are averaged
        self.model, self.info = load_reader(self.path, device=device)
        # channels last: the CNN reads a line about 1.5 times as fast on a CPU (measured at 2 threads)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.device = torch.device(device)
        self.use_lm(lm)

    @classmethod
    def from_model(cls, model, device="cpu", lm="shipped", tidy=True, shifts=READ_SHIFTS):
        """Wrap a CRNN trained in this session (the notebook's), no file needed."""
        reader = cls.__new__(cls)
        reader.path, reader.info, reader.device, reader.tidy = "(in memory)", {}, torch.device(device), tidy
        reader.shifts = tuple(shifts)
        reader.model = model.to(reader.device).eval()
        reader.use_lm(lm)
        return reader

    def use_lm(self, lm="shipped"):
        """Decode with beam search and a character language model: "shipped" (the file beside the
        reader, with the weight chosen on val: two models mixed line by line, `decoding.MixedLM`), a
        path, a (CharLM or MixedLM, weight, bonus) triple, or None for greedy decoding. A missing
        shipped file means greedy, never an error."""
        from .decoding import SHIPPED_LM, CharLM

        if lm == "shipped":
            lm = CharLM.load(SHIPPED_LM) if SHIPPED_LM.is_file() else None
        elif isinstance(lm, (str, Path)):
            lm = CharLM.load(lm)
        self.lm = lm
        return self

    @torch.no_grad()
    def columns(self, image):
        """The reader's log-probabilities (1, T, classes) for one framed line: the mean of its readings
        of the line moved by each of `shifts` rows (ink 1 on 0; the rows moved out are dropped)."""
        image = np.ascontiguousarray(image, dtype=np.float32)
        copies = np.zeros((len(self.shifts) or 1, 1, *image.shape), dtype=np.float32)
        for i, shift in enumerate(self.shifts or (0,)):
            if shift >= 0:
                copies[i, 0, shift:] = image[:image.shape[0] - shift]
            else:
                copies[i, 0, :shift] = image[-shift:]
        x = torch.from_numpy(copies).to(self.device).contiguous(memory_format=torch.channels_last)
        probs = torch.softmax(self.model(x).float().cpu(), dim=-1)
        return probs.mean(0, keepdim=True).clamp_min(1e-30).log()

    @torch.no_grad()
    def _read_one(self, image):
        """One framed line, read alone: its answer never depends on other lines."""
        from .decoding import beam_decode

        logits = self.columns(image)
        text, confidence, probs = greedy_decode(logits)[0]  # the confidence is the reader's own, unaided
        if not math.isfinite(confidence):
            raise HCRError("The line reader gave an answer that is not a number: its checkpoint is damaged; "
                           "use the shipped checkpoint.")
        if self.lm is not None and logits.shape[1] <= BEAM_MAX_COLUMNS:
            lm, weight, bonus = self.lm
            text = beam_decode(logits[0], lm, weight, bonus, words=lm.words, penalty=lm.penalty)[0]
            probs = []  # per-character probabilities belong to the greedy reading
        unsure = confidence < UNSURE_BELOW or not text.strip()  # nothing read is never a sure answer
        return TextResult(text, float(confidence), bool(unsure), probs, image)

    def _prepare(self, source, name=None):
        from .preprocess import prepare_line

        return prepare_line(source, name=name, height=self.model.config["height"], tidy=self.tidy)

    def read(self, source, name=None):
        """One picture of a line (path, bytes, PIL image or array) -> TextResult; HCRError if unusable."""
        return self._read_one(self._prepare(source, name))

    def read_many(self, sources):
        """[(source, TextResult or HCRError)]: a bad picture gets its own error, the others are read.

        Pictures are prepared and read one at a time, so memory holds one picture, not all of them."""
        if isinstance(sources, (str, bytes, Path)):
            raise HCRError("read_many takes a list of pictures, not one: pass [picture], or use read(picture).")
        out = []
        for source in sources:
            try:
                out.append((source, self._read_one(self._prepare(source))))
            except HCRError as error:
                out.append((source, error))
        return out

    def read_page(self, source, name=None, stop=None):
        """A picture of one line or of a page -> [TextResult] per line, in reading order, each with its box.

        Raises HCRError with one sentence for unusable pictures and for pictures without writing.
        `stop` (a threading.Event) ends the reading between two lines: the web demo sets it when
        the browser that asked has gone, so that nobody's page holds a core for no one."""
        from .page import page_lines

        out = []
        for line in page_lines(source, name, self.model.config["height"]):
            if stop is not None and stop.is_set():
                raise HCRError("The reading stopped before the end because the request was withdrawn: send it again.")
            result = self._read_one(line.image)
            result.box = line.box
            out.append(result)
        return out

    predict, predict_many = read, read_many  # a TextReader serves wherever a Predictor does (pad, web page)
