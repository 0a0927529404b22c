"""Training and evaluation on in-memory tensors, seeded, on CUDA, Apple MPS or the CPU.

A recipe is a plain dataclass, so the seeds' settings and the faster default can be compared
side by side and recorded in a checkpoint.
"""

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .labels import EMNIST, MNIST, NUM_CLASSES

DEVICE_ENV = "HCR_DEVICE"


@dataclass
class Recipe:
    """How to train. The defaults are the seeds' settings: Adam 1e-3, batch 64, 5 epochs."""

    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "adam"  # "adam" or "adamw"
    lr: float = 1e-3  # the peak rate when schedule is "onecycle"
    weight_decay: float = 0.0
    schedule: str = "constant"  # "constant" or "onecycle"
    warmup: float = 0.25  # onecycle: share of the steps spent warming up to the peak rate
    label_smoothing: float = 0.0
    augment: bool = False  # small random affine jitter and stroke-width changes
    style_augment: bool = False  # with augment: random blur and gamma too
    recalibrate_bn: bool = True  # with augment or ema: BatchNorm statistics from clean images
    ema: float = 0.0  # if > 0: evaluate and keep an exponential moving average of the weights
    precision: str = "fp32"  # "fp32", "bf16" (CPU autocast) or "auto" (bf16 where the CPU has it)
    channels_last: bool = False

    def to_dict(self):
        return asdict(self)


SEED_RECIPE = Recipe()
DEFAULT_RECIPE = Recipe(
    epochs=6,
    batch_size=256,
    optimizer="adamw",
    lr=3e-3,
    weight_decay=5e-4,
    schedule="onecycle",
    warmup=0.1,
    label_smoothing=0.1,
    augment=True,
    style_augment=False,
    ema=0.999,
    precision="auto",
    channels_last=True,
)


# --- Reproducibility and hardware -------------------------------------------------------------


def seed_everything(seed):
    """Same seed, same machine, same numbers: seeds Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name=None):
    """The argument, else $HCR_DEVICE, else CUDA, then Apple MPS, then the CPU."""
    name = name or os.environ.get(DEVICE_ENV)
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_native_bf16():
    """bf16 autocast only pays on CPUs with bf16 instructions (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(recipe, device):
    if device.type != "cpu":
        return False
    return recipe.precision == "bf16" or (recipe.precision == "auto" and cpu_has_native_bf16())


# --- Augmentation ----------------------------------------------------------------------------


def _gaussian(sigma=1.0, size=5):
    t = torch.arange(size) - size // 2
    k = torch.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    return (k / k.sum()).view(1, 1, size, size)


_BLUR = _gaussian()


def augment_batch(x, generator, style=True):
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
    theta = torch.stack(
        [
            torch.stack([cos * sx, (-sin + shear) * sx, shift_x], 1),
            torch.stack([sin * sy, cos * sy, shift_y], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Thicker or thinner strokes: blend towards a 3x3 dilation or erosion.
    amount = uniform(-0.6, 1.0).view(n, 1, 1, 1)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    x = torch.where(amount > 0, x + amount * (thick - x), x + amount * (x - thin))
    if not style:
        return x
    # Pen and scanner style: EMNIST's strokes are blurrier than MNIST's, and a model that sees
    # that will read a blurry 1 as an L. Random blur and gamma on both make style uninformative.
    blurred = F.conv2d(x, _BLUR.to(x.device), padding=2)
    x = x + uniform(-0.5, 1.0).clamp(min=0).view(n, 1, 1, 1) * (blurred - x)
    x = x / x.amax(dim=(1, 2, 3), keepdim=True).clamp(min=1e-3)
    gamma = torch.exp(uniform(-0.7, 0.7)).view(n, 1, 1, 1)  # <1 bolder and softer, >1 thinner and crisper
    return x.clamp(min=0).pow(gamma)


@torch.no_grad()
def recalibrate_batchnorm(model, images, device, count=4096, batch_size=512):
    """Re-estimate BatchNorm statistics on clean (un-augmented) training images.

    Augmented images are blurrier and thicker than real ones; BatchNorm's running averages,
    collected on them during training, then misjudge clean inputs (measured here: 95% -> 88%).
    One pass over a few thousand clean images puts the statistics back where inputs live.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the pass
    was_training = model.training
    model.train()
    for start in range(0, min(count, len(images)), batch_size):
        model(images[start : start + batch_size].to(device))
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.train(was_training)


class WeightAverage:
    """An exponential moving average of a model's weights (Polyak averaging).

    Mid-run, at a high learning rate, the weights jump around; their running average is a
    much better model at any moment, so accuracy arrives sooner and the final model is
    smoother. The decay warms up (short memory at first) so early averages are not stale.
    """

    def __init__(self, model, decay):
        self.decay = decay
        self.params = [p for p in model.parameters()]
        self.average = [p.detach().clone() for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def update(self):
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(self.average, [p.detach() for p in self.params], 1.0 - decay)

    @torch.no_grad()
    def swap(self):
        """Exchange the live weights and the averaged ones (call twice to swap back)."""
        for live, avg in zip(self.params, self.average):
            tmp = live.detach().clone()
            live.copy_(avg)
            avg.copy_(tmp)


# --- Evaluation ------------------------------------------------------------------------------


@torch.no_grad()
def predict_logits(model, images, device=None, batch_size=1024):
    """Logits for float images (N, 1, 28, 28), computed in batches, returned on the CPU."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        out.append(model(images[start : start + batch_size].to(device)).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, NUM_CLASSES)


def accuracy_report(logits, labels, sources):
    """Accuracy in percent overall and per source, plus the mean loss."""
    pred = logits.argmax(1)
    right = pred == labels
    out = {"loss": F.cross_entropy(logits, labels).item(), "overall_acc": 100 * right.float().mean().item()}
    for key, source in (("digits_acc", MNIST), ("letters_acc", EMNIST)):
        mask = sources == source
        out[key] = 100 * right[mask].float().mean().item() if mask.any() else float("nan")
    return out


def evaluate(model, dataset, device=None, images=None):
    """Loss and accuracy (overall, digits, letters) of a model on a CharacterSet."""
    images = dataset.to_float() if images is None else images
    return accuracy_report(predict_logits(model, images, device), dataset.labels, dataset.sources)


# --- Training --------------------------------------------------------------------------------


@dataclass
class History:
    """Per-epoch records, plus every evaluation made on the way with the training time so far."""

    epochs: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    train_seconds: float = 0.0
    images_seen: int = 0

    def to_dict(self):
        return asdict(self)


def _progress_bar(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, unit="batch")


def train(
    model,
    train_set,
    test_set=None,
    recipe=SEED_RECIPE,
    seed=0,
    device=None,
    progress=True,
    evals_per_epoch=1,
    log=print,
    stop_when=None,
):
    """Train in place and return a History.

    The clock (`train_seconds`) stops while the test set is evaluated, so evaluations made only
    to draw curves do not slow the recipe down on paper. `stop_when(evaluation)` may end training
    early (for example once a target accuracy is reached; normal runs leave it None).
    """
    seed_everything(seed)
    device = pick_device(device) if not isinstance(device, torch.device) else device
    generator = torch.Generator().manual_seed(seed)
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    model.to(device).to(memory_format=memory_format)
    bf16 = use_bf16(recipe, device)

    images = train_set.to_float()
    labels = train_set.labels
    test_images = test_set.to_float() if test_set is not None else None
    # A fixed random sample of clean training images for `recalibrate_batchnorm`.
    calibration = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:8192]]

    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "adam":
        optimizer = torch.optim.Adam(groups, lr=recipe.lr)
    elif recipe.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=recipe.lr)
    else:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}")
    steps_per_epoch = math.ceil(len(images) / recipe.batch_size)
    scheduler = None
    if recipe.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch, pct_start=recipe.warmup
        )
    elif recipe.schedule != "constant":
        raise ValueError(f"unknown schedule {recipe.schedule!r}")

    average = WeightAverage(model, recipe.ema) if recipe.ema > 0 else None
    eval_steps = {round(steps_per_epoch * k / evals_per_epoch) for k in range(1, evals_per_epoch + 1)}
    history = History()
    clock = 0.0
    stopped = False
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        bar = _progress_bar(steps_per_epoch, f"epoch {epoch}/{recipe.epochs}", progress)
        loss_sum, right, seen = 0.0, 0, 0
        started = time.perf_counter()
        for step in range(1, steps_per_epoch + 1):
            idx = order[(step - 1) * recipe.batch_size : step * recipe.batch_size]
            x = images[idx].to(device)
            y = labels[idx].to(device)
            if recipe.augment:
                x = augment_batch(x, generator, style=recipe.style_augment)
            x = x.contiguous(memory_format=memory_format)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if average is not None:
                average.update()
            loss_sum += loss.item() * len(y)
            right += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            history.images_seen += len(y)
            if bar is not None:
                bar.update(1)
                if step % 20 == 0 or step == steps_per_epoch:
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * right / seen:.1f}%")
            if test_set is not None and step in eval_steps:
                if average is not None:
                    average.swap()
                if recipe.recalibrate_bn and (recipe.augment or average is not None):
                    recalibrate_batchnorm(model, calibration, device)
                clock += time.perf_counter() - started
                record = {"epoch": epoch - 1 + step / steps_per_epoch, "train_seconds": clock,
                          "images_seen": history.images_seen, **evaluate(model, test_set, device, test_images)}
                history.evaluations.append(record)
                if average is not None:
                    average.swap()
                model.train()
                if stop_when is not None and stop_when(record):
                    stopped = True
                    break
                started = time.perf_counter()
        if bar is not None:
            bar.close()
        if stopped:
            break
        if recipe.augment and recipe.recalibrate_bn and average is None and not (
                test_set is not None and steps_per_epoch in eval_steps):
            recalibrate_batchnorm(model, calibration, device)
        clock += time.perf_counter() - started
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": 100 * right / seen, "seconds": clock}
        if history.evaluations and history.evaluations[-1]["epoch"] == epoch:
            last = history.evaluations[-1]
            row.update(test_loss=last["loss"], test_acc=last["overall_acc"],
                       test_digits_acc=last["digits_acc"], test_letters_acc=last["letters_acc"])
        history.epochs.append(row)
        if log is not None:
            log(_epoch_line(row, recipe.epochs))
    if average is not None:  # keep the averaged weights, with BatchNorm statistics to match
        started = time.perf_counter()
        average.swap()
        if recipe.recalibrate_bn:
            recalibrate_batchnorm(model, calibration, device)
        clock += time.perf_counter() - started
    history.train_seconds = clock
    model.eval()
    return history


def _epoch_line(row, epochs):
    line = f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.3f}, train acc {row['train_acc']:.2f}%"
    if "test_acc" in row:
        line += (f" | held-out acc {row['test_acc']:.2f}% (digits {row['test_digits_acc']:.2f}%, "
                 f"letters {row['test_letters_acc']:.2f}%)")
    return line + f" | {row['seconds']:.0f} s"
