"""Reading a whole line: a CRNN (convolutions, then a sequence layer) trained with CTC.

One CNN per character cannot tell a ring from an O or a 0, nor a stick from 1, I or l: the
neighbours decide. A CRNN reads the line as a sequence of columns. The CNN turns the line
(1 x 32 x W) into W/4 column features, a bidirectional LSTM lets every column see the whole
line, and a linear layer gives each column a probability for every character and for "blank".
CTC (connectionist temporal classification) trains this without knowing where each character
is: it sums over every way of spreading the text over the columns. Greedy decoding keeps the
best class per column, merges repeats and drops blanks.
"""

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .alphabet import ALPHABET, BLANK, NUM_CTC_CLASSES, ascii_fold, decode
from .augment import augment_lines
from .errors import HCRError
from .framing import LINE_HEIGHT
from .hardware import pick_device, seed_everything, use_bf16
from .lines import LineSet
from .paths import CHECKPOINTS, RUNS
from .training import progress_bar

STRIDE = 4  # the CNN halves the width twice: one output column per 4 pixels
MODEL_NAME = "crnn"
SHIPPED = CHECKPOINTS / "lines.pt"
TRAINED = RUNS / "lines.pt"
UNSURE_BELOW = 0.5  # a reading whose least certain character is below this is flagged "unsure"
# Lines wider than any real line (real lines are at most 27 times as wide as tall: 325 columns at 48 px)
# are read greedily: the beam search's time grows with the columns, and a crafted picture of 100:1
# held the reader for 19 s.
BEAM_MAX_COLUMNS = 600


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


def cer_by_group(predictions, truths, groups):
    """{group: CER in percent}, groups in sorted order (the collections of the real lines)."""
    by = {}
    for p, t, g in zip(predictions, truths, groups):
        by.setdefault(g, ([], []))
        by[g][0].append(p)
        by[g][1].append(t)
    return {g: 100 * cer(*by[g]) for g in sorted(by)}


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


# --- Training ------------------------------------------------------------------------------------


@dataclass
class LineHistory:
    """Validation scores along the way, and the training time (the clock stops while evaluating)."""

    evaluations: list = field(default_factory=list)
    train_seconds: float = 0.0
    lines_seen: int = 0
    steps: int = 0
    skipped: int = 0  # batches whose loss or gradient was not finite (not applied)
    best: dict = None
    averaged: dict = None  # the averaged weights' val scores (train_lines' average_from)


def _mixed_order(parts, count, generator):
    """`count` line indices into the concatenation of `parts` [(LineSet, weight)], each part drawn
    with its weight (a part is walked through in a fresh random order before any line repeats)."""
    weights = torch.tensor([float(w) for _, w in parts])
    take = torch.multinomial(weights / weights.sum(), count, replacement=True, generator=generator)
    offsets = np.cumsum([0] + [len(p) for p, _ in parts])
    out = []
    for k, (part, _) in enumerate(parts):
        n = int((take == k).sum())
        picks = []
        while len(picks) < n:
            picks += torch.randperm(len(part), generator=generator).tolist()
        out += [int(offsets[k]) + i for i in picks[:n]]
    return torch.tensor(out)


def _learning_rate(peak, progress, warmup=0.03):
    """Warm up, then a cosine down to 2% of the peak; `progress` runs from 0 to 1."""
    if progress < warmup:
        return peak * (0.05 + 0.95 * progress / warmup)
    t = min(1.0, (progress - warmup) / (1 - warmup))
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def train_lines(model, parts, val_set=None, max_seconds=None, steps=None, lr=1.5e-3, seed=0, augment=1.0,
                batch_pixels=BATCH_PIXELS, eval_every=300, progress=True, log=print, weight_decay=1e-2,
                precision="auto", device=None, keep_best=True, choose_by="val_cer", average_from=None):
    """Train a CRNN in place with CTC on a weighted mix of line sets; returns a LineHistory.

    `parts` is [(LineSet, weight)]: each batch mixes lines drawn with those weights. Training
    stops after `steps` batches or `max_seconds` of training, whichever comes first, and the
    learning rate follows that budget (warm-up, then cosine), so a time budget holds on any
    machine. Every `eval_every` seconds the val lines are read; the weights that read them
    best are kept. Seeded: batches and augmentations follow the seed (the time budget decides
    how many there are). `choose_by` names the val score that picks the kept weights ("val_macro_cer":
    each collection alike). bf16 autocast on CPUs with native bf16; channels-last convolutions.
    `average_from` (a share of the budget, e.g. 0.5): from there on, the weights after every step
    are averaged too (stochastic weight averaging; BatchNorm's running statistics are averaged as
    well, not measured again), and the average is read on val at the end (`history.averaged`); it
    becomes `history.best`, and with `keep_best` the model's weights, if it reads val better than
    the best weights seen along the way. Without val lines there is nothing to judge it by: no average.
    """
    if max_seconds is None and steps is None:
        raise HCRError("Give train_lines a budget: steps=, max_seconds= or both.")
    if average_from is not None and not 0 <= average_from < 1:
        raise HCRError(f"average_from={average_from} is not a share of the budget: give one from 0 to below 1, "
                       "such as 0.5.")
    seed_everything(seed)
    device = pick_device(device)
    model.to(device, memory_format=torch.channels_last)
    bf16 = use_bf16(precision, device)
    everything = LineSet.concat([p for p, _ in parts])
    parts = [(p, w) for p, w in parts if len(p) and w > 0]
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history = LineHistory()
    best_state, next_eval = None, eval_every
    average, averaged_steps = None, 0
    average_from = average_from if val_set is not None else None
    losses = []
    bar = progress_bar(steps, "training the line reader", progress)

    def budget_used():
        used = []
        if steps is not None:
            used.append(history.steps / steps)
        if max_seconds is not None:
            used.append(history.train_seconds / max_seconds)
        return max(used)

    def evaluate():
        nonlocal best_state
        loss_sum, loss_count = sum(losses), len(losses)
        row = {"step": history.steps, "seconds": round(history.train_seconds, 1), "lines_seen": history.lines_seen,
               "train_loss": round(loss_sum / max(1, loss_count), 4)}
        losses.clear()
        if val_set is not None:
            row.update({f"val_{k}": v for k, v in evaluate_lines(model, val_set, device).items() if k != "lines"})
            if history.best is None or row[choose_by] < history.best[choose_by]:
                history.best = row
                best_state = copy.deepcopy(model.state_dict())
        history.evaluations.append(row)
        if log is not None:
            log(_evaluation_line(row))
        model.train()

    model.train()
    while budget_used() < 1:
        order = _mixed_order(parts, 4096, generator)
        widths = everything.widths[order]
        for batch in pixel_batches(widths, everything.height, batch_pixels, generator=generator):
            if budget_used() >= 1:
                break
            started = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(lr, budget_used())
            x, widths_, targets, lengths = everything.batch(order[batch])
            x = augment_lines(x, generator, augment)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x.to(device).contiguous(memory_format=torch.channels_last))
            loss = ctc_loss(logits, widths_, targets.to(device), lengths.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            if not (torch.isfinite(loss) and torch.isfinite(norm)):  # a rare bad batch must not poison the weights
                history.skipped += 1
                history.train_seconds += time.perf_counter() - started
                continue
            optimizer.step()
            history.train_seconds += time.perf_counter() - started
            history.steps += 1
            history.lines_seen += len(batch)
            if average_from is not None and budget_used() >= average_from:
                averaged_steps += 1
                average = running_mean(average, model.state_dict(), averaged_steps)
            losses.append(loss.item())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            if history.train_seconds >= next_eval:
                next_eval += eval_every
                evaluate()
    if bar is not None:
        bar.close()
    if not history.evaluations or history.evaluations[-1]["step"] != history.steps:  # not twice at one step
        evaluate()
    if average is not None and val_set is not None:
        history.averaged = _score_average(model, average, averaged_steps, val_set, device, history, choose_by)
        if log is not None:
            log(_evaluation_line(history.averaged))
        if history.averaged is history.best:
            best_state = average
    if keep_best and best_state is not None:
        model.load_state_dict(best_state)
    model.to(memory_format=torch.contiguous_format).eval()
    return history


@torch.no_grad()
def running_mean(average, state, n):
    """The mean of n state dicts, given the mean of the first n - 1 (None for n = 1) and the n-th.
    Counters (BatchNorm's batches seen) keep their first value."""
    if average is None:
        return {k: v.detach().clone() for k, v in state.items()}
    for k, v in state.items():
        if v.is_floating_point():
            average[k] += (v - average[k]) / n
    return average


def _score_average(model, average, steps, val_set, device, history, choose_by):
    """Read val with the averaged weights (the model's own are put back); the row becomes
    history.best if it beats the best weights seen along the way."""
    own = copy.deepcopy(model.state_dict())
    model.load_state_dict(average)
    row = {"step": history.steps, "averaged_steps": steps, "seconds": round(history.train_seconds, 1),
           "lines_seen": history.lines_seen}
    row.update({f"val_{k}": v for k, v in evaluate_lines(model, val_set, device).items() if k != "lines"})
    model.load_state_dict(own)
    if history.best is None or row[choose_by] < history.best[choose_by]:
        history.best = row
    return row


def _evaluation_line(row):
    what = (f"loss {row['train_loss']:.3f}" if "train_loss" in row
            else f"the mean of the last {row['averaged_steps']:,} steps")
    line = f"step {row['step']:,} ({row['seconds']:.0f} s, {row['lines_seen']:,} lines): {what}"
    if "val_cer" in row:
        line += (f", val CER {row['val_cer']:.2f}% ({row['val_cer_ignore_case']:.2f}% ignoring case), "
                 f"words {row['val_word_acc']:.1f}%")
    if "val_macro_cer" in row:
        line += f", val CER per collection {row['val_macro_cer']:.2f}%"
    return line


@dataclass(frozen=True)
class LineRecipe:
    """Everything that makes a line reader, so a checkpoint can record how it was made."""

    real_share: float = 0.8  # shares of each batch: real training lines ... (the mix chosen on val by
    synthetic_share: float = 0.1  # ... EMNIST characters placed as handwriting ... `benchmarks.lines sources`)
    font_share: float = 0.1  # ... and lines in the DEV handwriting fonts
    script_fonts: bool = False  # the dev script and cursive fonts too (`fonts.DEV_SCRIPT_FONTS`)
    synthetic_lines: int = 15_000  # drawn once, augmented anew every time they are seen
    font_lines: int = 6_000
    height: int = LINE_HEIGHT
    channels: tuple = (32, 64, 96, 128)  # the shape of the synthetic-line reader it starts from
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.1
    lr: float = 1.5e-3
    augment: float = 0.0  # none: read val best over the whole budget (`benchmarks.lines designs` and `full-budget`)
    balance: float = 1.0  # a real collection of n lines is drawn in proportion to n ** balance: 1, as they come
    # (over half are one collection's register entries); 0, every collection alike
    choose_by: str = "val_cer"  # the val score that picks the kept weights ("val_macro_cer": each collection alike)
    average_from: float = None  # average the weights from this share of the budget on (`train_lines`)
    accents: bool = True  # False: accents stripped from the training texts (what reading them costs the others)
    minutes: float = 52.0  # training time, loading and drawing not included (the shipped reader's)
    init_from: str = None  # start from this reader's weights (a checkpoint of the same shape, fewer classes allowed)
    init_fresh: tuple = ()  # ... except the weights whose names begin so (("sequence.", "head."): a new LSTM)
    easy_share: float = 0.0  # the first part of the budget: drawn lines mostly, light augmentation (CTC starts
    # from "all blank" and leaves that plateau much sooner on easy lines)
    steps: int = None  # or a number of batches (whichever ends first)
    real_limit: int = None  # use only this many real training lines (smoke runs)
    bank_per_class: int = None  # draw synthetic lines from this many images per class (smoke runs; None: all)
    val_limit: int = None
    max_chars: int = 48
    precision: str = "auto"
    seed: int = 0

    def to_dict(self):
        return asdict(self)


def _cached(name, make):
    """A drawn LineSet from build/cache if this exact one was drawn before, else `make()` (then kept)."""
    from .paths import BUILD

    path = BUILD / "cache" / f"{name}.npz"
    if path.is_file():
        try:
            return LineSet.load(path)
        except Exception:  # a damaged cache is drawn again
            pass
    line_set = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        line_set.save(path)
    except OSError:
        pass
    return line_set


DRAWING_VERSION = 1  # bump when the drawing of synthetic or font lines changes (the cache is keyed on it)


def build_parts(recipe, root=None, progress=True, log=print):
    """The training mix and the val lines of a recipe: ([(LineSet, share)], val LineSet, sizes)."""
    from . import font_lines, fonts, lines, real_lines

    manifest = real_lines.read_manifest(root)
    parts, sizes = [], {}
    if recipe.real_share > 0:
        loaded = real_lines.load_split("train", root, recipe.height, recipe.real_limit, recipe.seed, progress, manifest)
        collections = real_lines.by_collection(loaded) if recipe.balance != 1 else {"all": loaded}
        weights = {name: len(part.texts) ** recipe.balance for name, part in collections.items()}
        for name, part in collections.items():
            real = real_lines.line_set(part)
            if not recipe.accents:
                real = replace(real, texts=[ascii_fold(t) for t in real.texts])
            parts.append((real, recipe.real_share * weights[name] / sum(weights.values())))
        sizes["real"] = len(loaded.texts)
    real_texts = [e.text if recipe.accents else ascii_fold(e.text) for e in manifest.split("train")]
    if recipe.synthetic_share > 0:
        synthetic = _cached(
            f"synthetic-{recipe.synthetic_lines}-{recipe.bank_per_class}-{recipe.seed}-{recipe.height}-{DRAWING_VERSION}",
            lambda: lines.make_line_set(lines.load_bank(True, root, recipe.bank_per_class, recipe.seed),
                                        recipe.synthetic_lines,
                                        "train", recipe.seed, max_chars=32, progress=progress, height=recipe.height))
        parts.append((synthetic, recipe.synthetic_share))
        sizes["synthetic"] = len(synthetic)
    if recipe.font_share > 0:
        names = fonts.DEV_FONTS + (fonts.DEV_SCRIPT_FONTS if recipe.script_fonts else ())
        paths = fonts.font_paths(names=names)
        files = [str(paths[name]) for name in names]

        texts = font_lines.TrainingTexts(real_texts, recipe.max_chars)
        drawn = _cached(
            f"fonts-{recipe.font_lines}-{recipe.seed}-{recipe.height}-{recipe.max_chars}-{DRAWING_VERSION}"
            + ("" if recipe.accents else "-no-accents") + ("-script" if recipe.script_fonts else ""),
            lambda: font_lines.make_font_line_set(files, recipe.font_lines, texts, recipe.seed, height=recipe.height))
        parts.append((drawn, recipe.font_share))
        sizes["fonts"] = len(drawn)
    val = real_lines.line_set(real_lines.load_split("val", root, recipe.height, recipe.val_limit, recipe.seed,
                                                    progress, manifest))
    sizes["val"] = len(val)
    if log is not None:
        log("training lines: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    return parts, val, sizes


def _widened(key, old, new, old_hidden, hidden):
    """`old` set into the fresh weight `new` of a reader with a wider LSTM (and maybe more classes),
    so that the wider reader reads exactly as the old one at the start: the new units' gates
    start random, but what they pass on (to the other units, the next layer, the head) starts at
    zero. Training then grows them, with no return to CTC's all-blank start. None if it does not fit."""
    if not isinstance(old_hidden, int) or not 0 < old_hidden <= hidden:
        return None

    def index(size_old, size_new):  # where each old row or column goes
        if size_old == size_new:
            return torch.arange(size_old)
        if (size_old, size_new) == (4 * old_hidden, 4 * hidden):  # the gates i, f, g, o of each unit
            return torch.cat([g * hidden + torch.arange(old_hidden) for g in range(4)])
        if (size_old, size_new) == (old_hidden, hidden):  # the units feeding back
            return torch.arange(old_hidden)
        if (size_old, size_new) == (2 * old_hidden, 2 * hidden):  # both directions feeding on
            return torch.cat([torch.arange(old_hidden), hidden + torch.arange(old_hidden)])
        if key.startswith("head.") and size_old < size_new:  # an alphabet that grew: its first rows
            return torch.arange(size_old)
        return None

    rows = index(old.shape[0], new.shape[0])
    if rows is None:
        return None
    out = new.clone()
    if old.ndim == 1:
        out[rows] = old
        return out
    cols = index(old.shape[1], new.shape[1])
    if cols is None or old.ndim != 2:
        return None
    if old.shape[1] != new.shape[1]:
        out[:, [c for c in range(new.shape[1]) if c not in set(cols.tolist())]] = 0.0  # new units pass on nothing
    out[rows[:, None], cols[None, :]] = old
    return out


def start_from(model, path, fresh=()):
    """Copy a reader's weights into `model`, except those whose names begin with one of `fresh`.

    An alphabet that is a prefix of ours keeps its output rows (the new characters start from
    small random weights), so a reader can grow its alphabet. `fresh=("sequence.", "head.")`
    keeps only the trained CNN, so a reader with another LSTM can still start from it. A
    reader with a wider LSTM starts reading exactly as the narrower one (`_widened`).
    """
    from .checkpoint import read_checkpoint

    payload = read_checkpoint(path)
    state = payload.get("state_dict")
    own = model.state_dict()
    if not isinstance(state, dict):
        raise HCRError(f"{path} holds no weights to start from: pass a line reader's checkpoint.")
    names = list(payload.get("class_names") or [])
    if names != (["<blank>"] + list(ALPHABET))[: len(names)]:
        raise HCRError(f"{path} reads an alphabet that is not a beginning of ours: start from a reader of this "
                       "project instead.")
    kept = {k: v for k, v in state.items() if not k.startswith(tuple(fresh))}
    for key in own:
        if key not in state and not key.startswith(tuple(fresh)):
            raise HCRError(f"{path} lacks the weight '{key}' of this model: start from a reader of the same shape.")
    for key, value in kept.items():
        if key not in own:
            raise HCRError(f"{path} has the weight '{key}' that this model lacks: start from a reader of the same "
                           "shape.")
        if key.startswith(("sequence.", "head.")) and value.shape != own[key].shape:
            config = (payload.get("extra") or {}).get("config") or {}
            widened = _widened(key, value, own[key], config.get("hidden"), model.config["hidden"])
            if widened is None:
                raise HCRError(f"{path}'s weight '{key}' has another shape: start from a reader of the same shape.")
            own[key] = widened
        elif value.shape == own[key].shape:
            own[key] = value
        else:
            raise HCRError(f"{path}'s weight '{key}' has another shape: start from a reader of the same shape.")
    model.load_state_dict(own)


def train_reader(recipe=LineRecipe(), root=None, progress=True, log=print):
    """Load and draw the training mix, then train a CRNN; returns (model, history, seconds in all)."""
    started = time.perf_counter()
    parts, val, sizes = build_parts(recipe, root, progress, log)
    if parts and parts[0][0].height != recipe.height:
        parts = [(p.resized(recipe.height), w) for p, w in parts]
    torch.manual_seed(recipe.seed)
    model = CRNN(height=recipe.height, channels=recipe.channels, hidden=recipe.hidden, layers=recipe.layers,
                 dropout=recipe.dropout)
    if recipe.init_from:
        start_from(model, recipe.init_from, fresh=recipe.init_fresh)
        if log is not None:
            log(f"starting from the weights of {recipe.init_from}"
                + (f", except {', '.join(recipe.init_fresh)}" if recipe.init_fresh else ""))
    seconds = 60 * recipe.minutes if recipe.minutes else None
    if recipe.easy_share > 0:
        if recipe.balance != 1:
            raise HCRError("easy_share and balance cannot be combined: set one of them only.")
        easy = [(p, 0.15 if name == "real" else 0.425) for (p, _), name in zip(parts, sizes)]
        first = train_lines(model, easy, val, max_seconds=seconds * recipe.easy_share if seconds else None,
                            steps=int(recipe.steps * recipe.easy_share) if recipe.steps else None, lr=recipe.lr,
                            seed=recipe.seed, augment=0.3 * recipe.augment, eval_every=seconds or 1e9,
                            progress=progress, log=log, precision=recipe.precision, keep_best=False)
        seconds = seconds * (1 - recipe.easy_share) if seconds else None
    history = train_lines(model, parts, val, max_seconds=seconds,
                          steps=int(recipe.steps * (1 - recipe.easy_share)) + 1 if recipe.steps else None,
                          lr=recipe.lr, seed=recipe.seed + 1, augment=recipe.augment, eval_every=240,
                          progress=progress, log=log, precision=recipe.precision, choose_by=recipe.choose_by,
                          average_from=recipe.average_from)
    if recipe.easy_share > 0:  # the second stage counts on from the first
        points = history.evaluations + [p for p in [history.best] if p and all(p is not e for e in history.evaluations)]
        for point in points:
            for key, before in (("step", first.steps), ("seconds", first.train_seconds),
                                ("lines_seen", first.lines_seen)):
                if key in point:
                    point[key] += before
        history.evaluations = first.evaluations + history.evaluations
        history.train_seconds += first.train_seconds
        history.steps += first.steps
        history.lines_seen += first.lines_seen
        history.skipped += first.skipped
    history.sizes = sizes
    return model, history, time.perf_counter() - started


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

    def __init__(self, checkpoint=None, device="cpu", lm="shipped", tidy=True):
        self.path = checkpoint if checkpoint is not None else default_reader_checkpoint()
        self.tidy = tidy  # level the line and drop its neighbours' pieces (`framing.frame_line`)
        self.model, self.info = load_reader(self.path, device=device)
        self.device = torch.device(device)
        self.use_lm(lm)

    @classmethod
    def from_model(cls, model, device="cpu", lm="shipped", tidy=True):
        """Wrap a CRNN trained in this session (the notebook's), no file needed."""
        reader = cls.__new__(cls)
        reader.path, reader.info, reader.device, reader.tidy = "(in memory)", {}, torch.device(device), tidy
        reader.model = model.to(reader.device).eval()
        reader.use_lm(lm)
        return reader

    def use_lm(self, lm="shipped"):
        """Decode with beam search and a character language model: "shipped" (the file beside the
        reader, with the weight chosen on val), a path, a (CharLM, weight, bonus) triple, or None
        for greedy decoding. A missing shipped file means greedy, never an error."""
        from .decoding import SHIPPED_LM, CharLM

        if lm == "shipped":
            lm = CharLM.load(SHIPPED_LM) if SHIPPED_LM.is_file() else None
        elif isinstance(lm, (str, Path)):
            lm = CharLM.load(lm)
        self.lm = lm
        return self

    @torch.no_grad()
    def _read_one(self, image):
        """One framed line, read alone: its answer never depends on other lines."""
        from .decoding import beam_decode

        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None].to(self.device)
        logits = self.model(x).float().cpu()
        text, confidence, probs = greedy_decode(logits)[0]  # the confidence is the reader's own, unaided
        if not math.isfinite(confidence):
            raise HCRError("The line reader gave an answer that is not a number: its checkpoint is damaged; "
                           "use the shipped checkpoint.")
        if self.lm is not None and logits.shape[1] <= BEAM_MAX_COLUMNS:
            lm, weight, bonus = self.lm
            text = beam_decode(logits[0], lm, weight, bonus)[0]
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
