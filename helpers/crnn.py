"""Reading a whole line: a CRNN (convolutions, then a sequence layer) trained with CTC.

One CNN per character cannot tell a ring from an O or a 0, nor a stick from 1, I or l: the
neighbours decide. A CRNN reads the line as a sequence of columns. The CNN turns the line
(1 x 32 x W) into W/4 column features, a bidirectional LSTM lets every column see the whole
line, and a linear layer gives each column a probability for every character and for "blank".
CTC (connectionist temporal classification) trains this without knowing where each character
is: it sums over every way of spreading the text over the columns. Greedy decoding keeps the
best class per column, merges repeats and drops blanks.
"""

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import HCRError
from .hardware import pick_device, seed_everything, use_bf16
from .lines import ALPHABET, BLANK, HEIGHT, NUM_CTC_CLASSES, LineSet, decode, prepare_line
from .paths import CHECKPOINTS, RUNS
from .predict import UNSURE_BELOW
from .training import progress_bar

STRIDE = 4  # the CNN halves the width twice: one output column per 4 pixels
MODEL_NAME = "crnn"
SHIPPED = CHECKPOINTS / "lines.pt"
TRAINED = RUNS / "lines.pt"


# --- The model ----------------------------------------------------------------------------------


def _block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class CRNN(nn.Module):
    """(N, 1, 32, W) lines -> (N, W/4, classes) logits, class 0 being the CTC blank.

    `sequence` is "lstm" or "gru" (bidirectional, `layers` deep) or "conv" (1-D convolutions:
    no recurrence, so faster on some CPUs, with a context limited to their receptive field).
    """

    def __init__(self, num_classes=NUM_CTC_CLASSES, channels=(32, 64, 128, 128), hidden=128, layers=2,
                 sequence="lstm", dropout=0.2):
        super().__init__()
        if sequence not in ("lstm", "gru", "conv"):
            raise HCRError(f"sequence={sequence!r} is unknown: use 'lstm', 'gru' or 'conv'.")
        a, b, c, d = channels
        self.config = {"num_classes": num_classes, "channels": list(channels), "hidden": hidden, "layers": layers,
                       "sequence": sequence, "dropout": dropout}
        self.cnn = nn.Sequential(
            *_block(1, a), nn.MaxPool2d(2),  # 32 x W -> 16 x W/2
            *_block(a, b), nn.MaxPool2d(2),  # -> 8 x W/4
            *_block(b, c), *_block(c, c), nn.MaxPool2d((2, 1)),  # -> 4 x W/4
            *_block(c, d), nn.MaxPool2d((2, 1)),  # -> 2 x W/4
        )
        features = d * (HEIGHT // 16)
        self.dropout = nn.Dropout(dropout)
        if sequence == "conv":
            layers_ = []
            width = features
            for k in range(max(1, layers) * 2):
                dilation = 2 ** (k % 3)
                layers_ += [nn.Conv1d(width, 2 * hidden, 5, padding=2 * dilation, dilation=dilation),
                            nn.BatchNorm1d(2 * hidden), nn.ReLU(inplace=True)]
                width = 2 * hidden
            self.sequence = nn.Sequential(*layers_)
        else:
            rnn = nn.LSTM if sequence == "lstm" else nn.GRU
            self.sequence = rnn(features, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                                dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, x):
        f = self.cnn(x)  # (N, C, 2, T)
        f = f.flatten(1, 2)  # (N, C*2, T)
        if self.config["sequence"] == "conv":
            f = self.sequence(self.dropout(f)).transpose(1, 2)
        else:
            f, _ = self.sequence(self.dropout(f.transpose(1, 2)))
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


def width_batches(widths, batch_size, generator=None):
    """Batches of lines of similar width (little padding); shuffled lightly when a generator is given."""
    widths = torch.as_tensor(widths, dtype=torch.float)
    if generator is not None:  # sort by a noisy width, so batches differ from epoch to epoch
        widths = widths * (1 + 0.1 * torch.rand(len(widths), generator=generator))
    batches = list(torch.argsort(widths).split(batch_size))
    if generator is not None:
        order = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in order]
    return batches


@torch.no_grad()
def read_lines(model, line_set, batch_size=64, device=None):
    """Greedy readings [(text, confidence, char probs)] of every line of a LineSet, in order."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [None] * len(line_set)
    for idx in width_batches(line_set.widths, batch_size):
        x, widths, _, _ = line_set.batch(idx)
        logits = model(x.to(device)).float().cpu()
        for i, reading in zip(idx.tolist(), greedy_decode(logits, widths)):
            out[i] = reading
    model.train(was_training)
    return out


def evaluate_lines(model, line_set, batch_size=64, device=None):
    """`score` of the model's greedy readings of a LineSet."""
    texts = [text for text, _, _ in read_lines(model, line_set, batch_size, device)]
    return score(texts, line_set.texts)


# --- Training ------------------------------------------------------------------------------------


@dataclass
class LineHistory:
    """Per-epoch loss, validation scores and training time (the clock stops while evaluating)."""

    epochs: list = field(default_factory=list)
    train_seconds: float = 0.0
    lines_seen: int = 0


def train_lines(model, train_set, val_set=None, epochs=10, batch_size=32, lr=2e-3, seed=0, progress=True,
                log=print, weight_decay=1e-2, precision="auto", channels_last=True, device=None, max_seconds=None):
    """Train a CRNN in place with CTC; returns a LineHistory.

    Seeded; AdamW with a one-cycle schedule; batches of lines of similar width; bf16 autocast
    on CPUs with native bf16 (precision="auto") and channels-last convolutions (measured on the
    2-core CPU: 1.5x and 1.25x more lines per second). `train_set` is a LineSet, or a function
    epoch -> LineSet for fresh lines every epoch. `max_seconds` stops training (at the end of
    a batch) once that much training time has passed, so a time budget holds on any machine.
    """
    seed_everything(seed)
    device = pick_device(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    bf16 = use_bf16(precision, device)
    first = train_set(1) if callable(train_set) else train_set
    steps_per_epoch = math.ceil(len(first) / batch_size)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                    pct_start=0.15)
    generator = torch.Generator().manual_seed(seed)
    history = LineHistory()
    for epoch in range(1, epochs + 1):
        lines = first if epoch == 1 else (train_set(epoch) if callable(train_set) else train_set)
        model.train()
        batches = width_batches(lines.widths, batch_size, generator)[:steps_per_epoch]
        bar = progress_bar(len(batches), f"epoch {epoch}/{epochs}", progress)
        loss_sum, seen = 0.0, 0
        started = time.perf_counter()
        for idx in batches:
            x, widths, targets, lengths = lines.batch(idx)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x.to(device).contiguous(memory_format=memory_format))
            loss = ctc_loss(logits, widths, targets, lengths)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
            history.lines_seen += len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", refresh=False)
            if max_seconds is not None and history.train_seconds + time.perf_counter() - started > max_seconds:
                break
        history.train_seconds += time.perf_counter() - started  # the clock stops for the evaluation
        if bar is not None:
            bar.close()
        row = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "seconds": history.train_seconds}
        if val_set is not None:
            scores = evaluate_lines(model, val_set, device=device)
            row.update({f"val_{k}": v for k, v in scores.items() if k != "lines"})
        history.epochs.append(row)
        if log is not None:
            log(_epoch_line(row, epochs))
        if max_seconds is not None and history.train_seconds > max_seconds:
            break
    model.to(memory_format=torch.contiguous_format).eval()
    return history


@dataclass(frozen=True)
class LineRecipe:
    """Everything that makes a line reader, so a checkpoint can record how it was made."""

    style: str = "handwriting"  # or "fsdl": the EMNIST Lines recipe, for comparison
    train_lines: int = 45_000  # synthetic training lines, drawn once and reused every epoch
    val_lines: int = 1_000  # training images with held-out words: curves without touching test data
    epochs: int = 4
    batch_size: int = 32
    lr: float = 2e-3
    max_chars: int = 32
    channels: tuple = (32, 64, 96, 128)
    hidden: int = 128
    layers: int = 2
    sequence: str = "lstm"
    dropout: float = 0.1
    fonts: tuple = ()  # font files; a share `font_share` of the training lines is written in them
    font_share: float = 0.0
    precision: str = "auto"
    max_minutes: float = None  # stop training after this many minutes (the time budget)
    seed: int = 0

    def to_dict(self):
        out = asdict(self)
        out["fonts"] = [Path(str(f)).name.split("-latin")[0] for f in self.fonts]
        return out


def train_reader(recipe=LineRecipe(), root=None, progress=True, log=print):
    """Build the character bank, draw the lines and train a CRNN; returns (model, history, seconds).

    Only training images are used (the EMNIST ByClass and MNIST training files) and only
    training words; `seconds` is everything: loading, drawing the lines and training.
    """
    from .lines import CharacterBank, load_bank, make_line_set

    started = time.perf_counter()
    bank = load_bank(True, root, seed=recipe.seed)
    fonts = [CharacterBank.from_font(f) for f in recipe.fonts]
    if log is not None:
        log(f"character bank: {len(bank):,} training images; drawing {recipe.train_lines:,} lines ...")
    common = {"max_chars": recipe.max_chars, "progress": progress}
    train = make_line_set(bank, recipe.train_lines, "train", recipe.seed, style=recipe.style,
                          font_banks=fonts, font_share=recipe.font_share, **common)
    val = make_line_set(bank, recipe.val_lines, "test", recipe.seed + 1, **common)
    torch.manual_seed(recipe.seed)
    model = CRNN(channels=recipe.channels, hidden=recipe.hidden, layers=recipe.layers, sequence=recipe.sequence,
                 dropout=recipe.dropout)
    budget = None
    if recipe.max_minutes is not None:
        budget = max(1.0, 60 * recipe.max_minutes - (time.perf_counter() - started))
    history = train_lines(model, train, val, epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr,
                          seed=recipe.seed, progress=progress, log=log, precision=recipe.precision,
                          max_seconds=budget)
    return model, history, time.perf_counter() - started


def _epoch_line(row, epochs):
    line = f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.3f}"
    if "val_cer" in row:
        line += (f" | val CER {row['val_cer']:.2f}% ({row['val_cer_ignore_case']:.2f}% ignoring case),"
                 f" lines exact {row['val_line_acc']:.1f}%")
    return line + f" | {row['seconds']:.0f} s"


# --- Checkpoints ---------------------------------------------------------------------------------


def default_reader_checkpoint():
    """Your own trained line reader if there is one, else the shipped one."""
    return TRAINED if TRAINED.is_file() else SHIPPED


def save_reader(path, model, metrics=None, recipe=None):
    """Save a CRNN in the project's checkpoint format, with the same safe write as every checkpoint
    (fsynced, renamed into place, a failed save keeps the old file, non-finite weights refused)."""
    from .checkpoint import FORMAT, _not_finite, _plain, _write_atomically

    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    bad = _not_finite(state)
    if bad is not None:
        raise HCRError(f"Not saving {path}: the weight '{bad}' holds NaN or infinity; training diverged, train again.")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model": MODEL_NAME,
        "class_names": ["<blank>"] + list(ALPHABET),
        "num_classes": NUM_CTC_CLASSES,
        "preprocessing": {"height": HEIGHT, "framing": "lines.normalise_line",
                          "values": "float in [0, 1], bright ink on black"},
        "metrics": _plain(metrics),
        "recipe": _plain(recipe),
        "torch_version": str(torch.__version__),
        "extra": {"config": _plain(model.config)},
        "state_dict": state,
    }
    _write_atomically(path, payload)
    return path


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
    refuse_non_finite(path, payload.get("state_dict"))
    try:
        model = CRNN(**payload["extra"]["config"])
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError):
        raise HCRError(f"{path} says it holds a line reader, but its weights do not fit: the file was edited "
                       "or saved by another version; retrain it or use the shipped checkpoint.") from None
    return model.to(device).eval(), payload


# --- Reading text for users ----------------------------------------------------------------------


@dataclass
class TextResult:
    text: str
    confidence: float  # probability of the least certain character
    unsure: bool  # confidence below predict.UNSURE_BELOW, or nothing read: check this reading
    char_probs: list = field(default_factory=list, repr=False)
    image: np.ndarray = field(default=None, repr=False)  # the normalised line the model saw

    def to_dict(self, path=None):
        out = {"path": path} if path is not None else {}
        out.update(text=self.text, confidence=round(self.confidence, 6), unsure=self.unsure)
        return out


class TextReader:
    """A trained line reader plus the line preprocessing; load once, read many lines."""

    def __init__(self, checkpoint=None, device="cpu"):
        self.path = checkpoint if checkpoint is not None else default_reader_checkpoint()
        self.model, self.info = load_reader(self.path, device=device)
        self.device = torch.device(device)

    @classmethod
    def from_model(cls, model, device="cpu"):
        """Wrap a CRNN trained in this session (the notebook's), no file needed."""
        reader = cls.__new__(cls)
        reader.path, reader.info, reader.device = "(in memory)", {}, torch.device(device)
        reader.model = model.to(reader.device).eval()
        return reader

    @torch.no_grad()
    def _read_images(self, images):
        line_set = LineSet.from_images(images, [""] * len(images))
        out = []
        for (text, confidence, probs), image in zip(read_lines(self.model, line_set, device=self.device), images):
            unsure = confidence < UNSURE_BELOW or not text.strip()  # nothing read is never a sure answer
            out.append(TextResult(text, float(confidence), bool(unsure), probs, image))
        return out

    def read(self, source, name=None):
        """One picture of a line (path, bytes, PIL image or array) -> TextResult; HCRError if unusable."""
        return self._read_images([prepare_line(source, name=name)])[0]

    def read_many(self, sources):
        """[(source, TextResult or HCRError)]: a bad picture gets its own error, the others are read."""
        prepared = []
        for source in sources:
            try:
                prepared.append(prepare_line(source))
            except HCRError as error:
                prepared.append(error)
        good = [p for p in prepared if not isinstance(p, HCRError)]
        results = iter(self._read_images(good) if good else [])
        return [(source, p if isinstance(p, HCRError) else next(results)) for source, p in zip(sources, prepared)]

    predict, predict_many = read, read_many  # a TextReader serves wherever a Predictor does (pad, web page)
