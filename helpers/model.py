"""The CNNs: the first versions' baseline, which the tutorial explains layer by layer, and the default.

Models are built by name (`build_model`) so a checkpoint can record which one it holds.
"""

import torch
from torch import nn

from .errors import HCRError
from .labels import NUM_CLASSES


class BaselineCNN(nn.Sequential):
    """The first versions' CNN, unchanged: two conv/pool stages and a small dense head."""

    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__(
            nn.Conv2d(1, 32, kernel_size=3, padding=1),  # 1x28x28 -> 32x28x28
            nn.ReLU(),
            nn.MaxPool2d(2),  # -> 32x14x14
            nn.Conv2d(32, 64, kernel_size=3, padding=1),  # -> 64x14x14
            nn.ReLU(),
            nn.MaxPool2d(2),  # -> 64x7x7
            nn.Flatten(),  # -> 3136
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )


def _conv_bn(c_in, c_out, batchnorm=True):
    if not batchnorm:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True)]
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class CompactCNN(nn.Sequential):
    """The default: five 3x3 convolutions with BatchNorm, most of them on 14x14 and 7x7 grids.

    BatchNorm lets it train at a high learning rate, so a one-cycle schedule converges in a few
    epochs; depth at low resolution buys accuracy cheaply on a CPU; dropout and a small dense
    head keep it from memorising. Channel counts are multiples of 16, which CPU kernels prefer.
    """

    def __init__(self, num_classes=NUM_CLASSES, channels=(16, 32, 32, 64, 64), hidden=256, dropout=0.2,
                 batchnorm=True):
        a, b, c, d, e = channels
        bn = batchnorm
        head = [nn.Linear(e * 3 * 3, hidden, bias=not bn)] + ([nn.BatchNorm1d(hidden)] if bn else [])
        super().__init__(
            *_conv_bn(1, a, bn),  # 28x28
            nn.MaxPool2d(2),  # -> 14x14
            *_conv_bn(a, b, bn),
            *_conv_bn(b, c, bn),
            nn.MaxPool2d(2),  # -> 7x7
            *_conv_bn(c, d, bn),
            *_conv_bn(d, e, bn),
            nn.MaxPool2d(2),  # -> 3x3
            nn.Flatten(),
            nn.Dropout(dropout),
            *head,
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )


MODELS = {"baseline": BaselineCNN, "compact": CompactCNN}


def build_model(name, num_classes=NUM_CLASSES, seed=None, **options):
    """A fresh, untrained model by name; with a seed, the same initial weights every time.

    `options` reach the model's constructor (e.g. batchnorm=False for an ablation).
    """
    if name not in MODELS:
        raise HCRError(f"There is no model called {name!r}: choose one of {', '.join(MODELS)}.")
    if seed is not None:
        torch.manual_seed(seed)
    return MODELS[name](num_classes=num_classes, **options)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_table(model, input_shape=(1, 1, 28, 28)):
    """Rows of (layer, output shape, parameters) from a dry run, to show the model layer by layer."""
    rows = []
    hooks = [
        m.register_forward_hook(
            lambda mod, inp, out: rows.append(
                (mod.__class__.__name__, tuple(out.shape[1:]), sum(p.numel() for p in mod.parameters()))
            )
        )
        for m in model.children()
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows
