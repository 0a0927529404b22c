"""The CNNs: the seeds' baseline, which the tutorial explains layer by layer, and the default.

Models are built by name (`build_model`) so a checkpoint can record which one it holds.
"""

import torch
from torch import nn

from .labels import NUM_CLASSES


class BaselineCNN(nn.Sequential):
    """The seeds' CNN, unchanged: two conv/pool stages and a small dense head."""

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


def _conv_bn(c_in, c_out, kernel=3):
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class CompactCNN(nn.Sequential):
    """The default: the baseline's idea with BatchNorm, one more conv stage and dropout.

    BatchNorm lets it train at a high learning rate (so a one-cycle schedule converges in a few
    epochs); the extra stage sees whole strokes at 7x7; dropout keeps the dense layer honest.
    """

    def __init__(self, num_classes=NUM_CLASSES, width=32, dropout=0.25):
        w = width
        super().__init__(
            *_conv_bn(1, w),  # 28x28
            *_conv_bn(w, w),
            nn.MaxPool2d(2),  # -> 14x14
            *_conv_bn(w, 2 * w),
            *_conv_bn(2 * w, 2 * w),
            nn.MaxPool2d(2),  # -> 7x7
            *_conv_bn(2 * w, 4 * w),
            nn.MaxPool2d(2),  # -> 3x3
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(4 * w * 3 * 3, 256, bias=False),
            nn.BatchNorm1d(256),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(256, num_classes),
        )


MODELS = {"baseline": BaselineCNN, "compact": CompactCNN}


def build_model(name, num_classes=NUM_CLASSES):
    """A fresh, untrained model by name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](num_classes=num_classes)


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
