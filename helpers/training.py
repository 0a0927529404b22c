"""Training on in-memory tensors, seeded, on a GPU when there is one, else the CPU.

A recipe is a plain dataclass, checked when it is made, so the first versions' settings and the faster
default can be compared side by side and recorded in a checkpoint. `train` is the notebook's
training step (forward, loss, backward, step) with shuffling, augmentation, a learning-rate
schedule, progress bars and timed evaluations around it.
"""

import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from .errors import HCRError
from .evaluation import evaluate, hits
from .hardware import PRECISIONS, pick_device, seed_everything, use_bf16

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "onecycle")


@dataclass(frozen=True)
class Recipe:
    """How to train. The defaults are the first versions' settings: Adam 1e-3, batch 64, 5 epochs."""

    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "adam"  # "adam" or "adamw"
    lr: float = 1e-3  # the peak rate when schedule is "onecycle"
    weight_decay: float = 0.0  # on weight matrices and kernels, never on biases or BatchNorm
    schedule: str = "constant"  # "constant" or "onecycle"
    warmup: float = 0.25  # onecycle: share of the steps spent warming up to the peak rate
    augment: bool = False  # small random rotation, scale, shear, shift and stroke width
    recalibrate_bn: bool = True  # with augment: BatchNorm statistics measured again on clean images
    ema: float = 0.0  # if > 0: keep (and return) an exponential moving average of the weights
    precision: str = "fp32"  # "fp32", "bf16" (CPU autocast) or "auto" (bf16 where the CPU has it)
    channels_last: bool = False

    def __post_init__(self):
        """Check every choice now, so a typo stops here with the fix, not deep inside `train`."""
        for name, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("precision", PRECISIONS)):
            if getattr(self, name) not in choices:
                raise HCRError(f"Recipe {name}={getattr(self, name)!r} is unknown: choose one of {', '.join(choices)}.")
        whole = "a whole number of at least 1"
        for name, ok, rule in (
            ("epochs", _is_number(self.epochs, int) and self.epochs >= 1, whole),
            ("batch_size", _is_number(self.batch_size, int) and self.batch_size >= 1, whole),
            ("lr", _is_number(self.lr) and self.lr > 0, "a number above 0"),
            ("weight_decay", _is_number(self.weight_decay) and self.weight_decay >= 0, "0 or more"),
            ("warmup", _is_number(self.warmup) and 0 < self.warmup < 1, "a share of the steps between 0 and 1"),
            ("ema", _is_number(self.ema) and 0 <= self.ema < 1, "0 (off) or a decay below 1, such as 0.999"),
        ):
            if not ok:
                raise HCRError(f"Recipe {name}={getattr(self, name)!r} is invalid: make it {rule}.")

    def to_dict(self):
        return asdict(self)


def _is_number(value, kind=(int, float)):
    return isinstance(value, kind) and not isinstance(value, bool)


SEED_RECIPE = Recipe()
DEFAULT_RECIPE = Recipe(epochs=6, batch_size=256, optimizer="adamw", lr=3e-3, weight_decay=5e-4, schedule="onecycle",
                        warmup=0.1, augment=True, ema=0.999, precision="auto", channels_last=True)
CASE_RECIPE = Recipe(**{**asdict(DEFAULT_RECIPE), "epochs": 8})  # 62 classes: more to learn (benchmarks/case.py)


# --- Augmentation and loss ---------------------------------------------------------------------


def augment_batch(x, generator):
    """Random small rotation, scale, shear, shift and stroke width, for a whole batch at once.

    Drawn on the CPU generator so that a seed fixes the result on every device.
    """
    n = x.shape[0]

    def uniform(low, high):
        return (torch.rand(n, generator=generator) * (high - low) + low).to(x.device)

    angle = uniform(-12, 12) * math.pi / 180
    scale = uniform(0.85, 1.1)
    aspect = uniform(0.9, 1.1)
    shear = uniform(-0.2, 0.2)
    shift_x, shift_y = uniform(-0.15, 0.15), uniform(-0.15, 0.15)  # +-2 px of 28
    cos, sin = torch.cos(angle), torch.sin(angle)
    sx, sy = 1 / (scale * aspect), aspect / scale  # affine_grid maps output -> input
    theta = torch.stack([torch.stack([cos * sx, (-sin + shear) * sx, shift_x], 1),
                         torch.stack([sin * sy, cos * sy, shift_y], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Thicker or thinner strokes: blend towards a 3x3 dilation or erosion.
    amount = uniform(-0.6, 1.0).view(n, 1, 1, 1)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return torch.where(amount > 0, x + amount * (thick - x), x + amount * (x - thin))


def target_set_loss(target_sets):
    """A loss for labels that stand for a set of right classes (e.g. "A or a" for EMNIST Letters).

    `target_sets` is a bool (number of labels, number of classes) table: row i marks the classes
    that count as right for label i. The loss is -log of the probability the model gives to
    the whole set, so a one-class row is plain cross-entropy. Pass the result as `loss_fn`.
    """
    table = torch.as_tensor(target_sets, dtype=torch.bool)

    def loss_fn(logits, labels):
        allowed = table.to(logits.device)[labels]
        inside = torch.logsumexp(logits.masked_fill(~allowed, float("-inf")), 1)
        return (torch.logsumexp(logits, 1) - inside).mean()

    loss_fn.target_sets = table  # lets `evaluation.evaluate` count any class of the set as right
    return loss_fn


# --- Training --------------------------------------------------------------------------------


@dataclass
class History:
    """Per-epoch records, plus every evaluation made on the way with the training time so far."""

    epochs: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    train_seconds: float = 0.0
    images_seen: int = 0


def make_optimizer(model, recipe, steps_per_epoch):
    """The recipe's optimiser (no weight decay on biases and BatchNorm) and its schedule (or None)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[recipe.optimizer](groups, lr=recipe.lr)
    if recipe.schedule == "constant":
        return optimizer, None
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch, pct_start=recipe.warmup)


def _warming_ema(decay):
    """torch's EMA update, with a memory that grows over the first steps (decay (1 + n) / (10 + n)
    up to `decay`), so that early averages are not mostly the random starting weights."""

    def update(averaged, current, steps):
        n = float(steps)
        get_ema_multi_avg_fn(min(decay, (1 + n) / (10 + n)))(averaged, current, steps)

    return update


def recalibrate_batchnorm(model, batches, device=None):
    """`torch.optim.swa_utils.update_bn` with dropout off, as it is when the model is used; the
    random numbers that dropout would draw are left to the training."""
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    rates = [m.p for m in drops]
    for m in drops:
        m.p = 0.0
    try:
        update_bn(batches, model, device)
    finally:
        for m, rate in zip(drops, rates):
            m.p = rate


def train(model, train_set, test_set=None, recipe=SEED_RECIPE, seed=0, device=None, progress=True,
          evals_per_epoch=1, log=print, loss_fn=None):
    """Train `model` in place and return a History.

    `test_set` (optional) is evaluated `evals_per_epoch` times an epoch, and the clock
    (`train_seconds`) stops meanwhile, so evaluations made only to draw curves do not slow the
    recipe down on paper. `loss_fn(logits, labels)` defaults to cross-entropy; see
    `target_set_loss` for labels that allow several classes. `log` gets one line per epoch.
    """
    seed_everything(seed)
    device = pick_device(device)
    loss_fn = loss_fn or F.cross_entropy
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    bf16 = use_bf16(recipe.precision, device)
    images, labels = train_set.to_float(), train_set.labels
    test_images = test_set.to_float() if test_set is not None else None
    steps_per_epoch = math.ceil(len(images) / recipe.batch_size)
    optimizer, scheduler = make_optimizer(model, recipe, steps_per_epoch)
    # The weight average (if any) averages BatchNorm statistics too (use_buffers), to match its weights.
    ema = AveragedModel(model, multi_avg_fn=_warming_ema(recipe.ema), use_buffers=True) if recipe.ema else None
    clean = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:8192]].split(512)

    def trained():
        """The model to use: averaged if asked, with BatchNorm statistics measured again on clean
        images, since those gathered on augmented ones make letters pass for digits (see README)."""
        out = ema.module if ema else model
        if recipe.augment and recipe.recalibrate_bn:
            recalibrate_batchnorm(out, clean, device)
        return out

    eval_steps = {round(steps_per_epoch * k / evals_per_epoch) for k in range(1, evals_per_epoch + 1)}
    generator = torch.Generator().manual_seed(seed)
    history = History()
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        batches = torch.randperm(len(images), generator=generator).split(recipe.batch_size)
        bar = progress_bar(steps_per_epoch, f"epoch {epoch}/{recipe.epochs}", progress)
        loss_sum, right, seen = 0.0, 0, 0
        started = time.perf_counter()
        for step, idx in enumerate(batches, 1):
            x, y = images[idx].to(device), labels[idx].to(device)
            if recipe.augment:
                x = augment_batch(x, generator)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x.contiguous(memory_format=memory_format))
            loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += loss.item() * len(y)
            right += hits(logits, y, loss_fn).sum().item()
            seen += len(y)
            history.images_seen += len(y)
            if bar is not None:
                bar.update(1)
                if step % 20 == 0 or step == steps_per_epoch:
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * right / seen:.1f}%")
            if test_set is not None and step in eval_steps:
                history.train_seconds += time.perf_counter() - started  # the clock stops here...
                started = time.perf_counter()
                evaluated = trained()  # ...but this model's recalibration counts in its time
                ready = history.train_seconds + time.perf_counter() - started
                history.evaluations.append({"epoch": epoch - 1 + step / steps_per_epoch, "train_seconds": ready,
                                            "images_seen": history.images_seen,
                                            **evaluate(evaluated, test_set, device, test_images, loss_fn)})
                model.train()
                started = time.perf_counter()  # ...and starts again
        history.train_seconds += time.perf_counter() - started
        if bar is not None:
            bar.close()
        history.epochs.append(_epoch_row(epoch, loss_sum / seen, 100 * right / seen, history))
        if log is not None:
            log(_epoch_line(history.epochs[-1], recipe.epochs))

    started = time.perf_counter()
    model.load_state_dict(trained().state_dict())  # the averaged weights, if any, recalibrated
    history.train_seconds += time.perf_counter() - started
    model.eval()
    return history


def progress_bar(total, desc, enabled):
    """A tqdm bar (a widget in a notebook, a line of text elsewhere), or None."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, unit="batch") if enabled else None


def _epoch_row(epoch, train_loss, train_acc, history):
    """One epoch's record, with the held-out scores when an evaluation closed the epoch."""
    row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "seconds": history.train_seconds}
    last = history.evaluations[-1] if history.evaluations else {}
    if last.get("epoch") == epoch:
        row.update(test_loss=last["loss"], test_acc=last["overall_acc"])
        row.update({f"test_{k}": last[k] for k in ("digits_acc", "letters_acc") if k in last})
    return row


def _epoch_line(row, epochs):
    line = f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.3f}, train acc {row['train_acc']:.2f}%"
    if "test_acc" in row:
        parts = [f"{k} {row[f'test_{k}_acc']:.2f}%" for k in ("digits", "letters") if f"test_{k}_acc" in row]
        line += f" | held-out acc {row['test_acc']:.2f}%" + (f" ({', '.join(parts)})" if parts else "")
    return line + f" | {row['seconds']:.0f} s"
