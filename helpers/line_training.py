"""Training the line reader: a mix of real, synthetic and font lines, the loop, and the recipe.

The model, its decoding and its checkpoints live in `crnn`; this module only teaches it. Every
batch draws from the sources by their shares (`LineRecipe`), the clock stops while val is read,
and the weights that read val best are kept. `train_reader` is the whole recipe behind
`python -m benchmarks.lines train`; chapter 3 calls its pieces (`build_parts`, `start_from`,
`train_lines`) for a short fine-tune.
"""

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from .alphabet import ALPHABET, ascii_fold
from .augment import augment_lines
from .crnn import BATCH_PIXELS, CRNN, LINE_HEIGHT, ctc_loss, evaluate_lines, pixel_batches
from .errors import HCRError
from .hardware import pick_device, seed_everything, use_bf16
from .lines import LineSet
from .training import progress_bar

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
                degrade=0.0, batch_pixels=BATCH_PIXELS, eval_every=300, progress=True, log=print, weight_decay=1e-2,
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
            x = augment_lines(x, generator, augment, degraded=degrade)
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
    degrade: float = 0.0  # the chance of a binarised, a blurred and a low-resolution line each (`augment.degrade`)
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
                          lr=recipe.lr, seed=recipe.seed + 1, augment=recipe.augment, degrade=recipe.degrade,
                          eval_every=240,
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


