"""The class-balance legend must tell MNIST from EMNIST (its two entries were both blue)."""

import numpy as np
from matplotlib.colors import to_hex

from helpers import plots
from helpers.labels import EMNIST, MNIST


def test_class_balance_legend_shows_each_source_in_its_bar_colour():
    labels = np.arange(36).repeat(3)
    sources = np.where(labels < 10, MNIST, EMNIST)
    fig = plots.class_balance(labels, sources)
    ax = fig.axes[0]
    legend = ax.get_legend()
    shown = [to_hex(handle.get_facecolor()) for handle in legend.legend_handles]
    assert shown == [plots.SOURCE_COLOURS[MNIST], plots.SOURCE_COLOURS[EMNIST]]
    # and the bars themselves: digits in the MNIST colour, letters in the EMNIST colour
    bars = [to_hex(bar.get_facecolor()) for bar in ax.patches[:36]]
    assert set(bars[:10]) == {plots.SOURCE_COLOURS[MNIST]} and set(bars[10:]) == {plots.SOURCE_COLOURS[EMNIST]}
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[0].startswith("MNIST: 30 images") and texts[1].startswith("EMNIST: 78 images")
