"""Every figure of the tutorial, each a function that takes data and returns a Figure.

Figures are made without pyplot, so a notebook shows each once (as the cell's value) and
scripts never need a display. `save` writes the PNG that lands in assets/.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from .labels import CLASS_NAMES, EMNIST, MNIST, NUM_CLASSES, SOURCES

SOURCE_COLOURS = {MNIST: "#1f77b4", EMNIST: "#ff7f0e"}
RIGHT, WRONG = "#2a7d2a", "#c62828"


def save(fig, path, dpi=110):
    """Write a figure as PNG (creating the folder) and hand it back, so a cell can show it too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    return fig


def _image_grid(rows, cols, figsize):
    fig = Figure(figsize=figsize, layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, cols))
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def sample_grid(images, labels, sources, rows=4, cols=12, title=None):
    """Training images with their labels; blue titles for MNIST, orange for EMNIST."""
    fig, axes = _image_grid(rows, cols, (cols * 0.9, rows * 1.05 + 0.4))
    for ax, img, label, source in zip(axes.flat, images, labels, sources):
        ax.imshow(np.asarray(img).squeeze(), cmap="gray", vmin=0, vmax=255 if np.asarray(img).max() > 1 else 1)
        ax.set_title(CLASS_NAMES[int(label)], color=SOURCE_COLOURS[int(source)], fontsize=12)
    if title:
        fig.suptitle(title)
    return fig


def before_after(before, after, labels, titles=("as stored", "as the model sees it")):
    """Two rows of the same characters: e.g. EMNIST as stored vs upright, or before/after framing."""
    cols = len(labels)
    fig, axes = _image_grid(2, cols, (cols * 0.95, 2.6))
    for c in range(cols):
        for r, images in enumerate((before, after)):
            axes[r, c].imshow(np.asarray(images[c]).squeeze(), cmap="gray")
        axes[0, c].set_title(CLASS_NAMES[int(labels[c])], fontsize=11)
    for r, title in enumerate(titles):
        axes[r, 0].text(-0.15, 0.5, title, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=10)
    return fig


def class_balance(labels, sources):
    """How many training images each of the 36 classes has, coloured by source."""
    labels = np.asarray(labels)
    sources = np.asarray(sources)
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax = fig.subplots()
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    colours = [SOURCE_COLOURS[MNIST if c < 10 else EMNIST] for c in range(NUM_CLASSES)]
    ax.bar(range(NUM_CLASSES), counts, color=colours)
    ax.set_xticks(range(NUM_CLASSES), CLASS_NAMES)
    ax.set_ylabel("training images")
    ax.axhline(counts.mean(), color="grey", lw=1, ls="--")
    ax.text(NUM_CLASSES - 0.5, counts.mean(), f" mean {counts.mean():,.0f}", va="bottom", ha="right", color="grey")
    # Explicit patches: an empty `ax.bar([], [])` gives a legend entry in the default colour.
    handles = [Patch(color=SOURCE_COLOURS[s], label=f"{name}: {int((sources == s).sum()):,} images")
               for s, name in enumerate(SOURCES)]
    ax.legend(handles=handles, loc="upper right", bbox_to_anchor=(1, 0.9))
    ax.set_title("Class balance of the merged training set")
    return fig


def training_curves(histories):
    """Loss and accuracy per epoch, on training and held-out images (validation or test), per run."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, (name, history) in enumerate(histories.items()):
        rows = history.epochs if hasattr(history, "epochs") else history["epochs"]
        epochs = [r["epoch"] for r in rows]
        colour = f"C{i}"
        ax_loss.plot(epochs, [r["train_loss"] for r in rows], "--", color=colour, label=f"{name} train")
        ax_acc.plot(epochs, [r["train_acc"] for r in rows], "--", color=colour, label=f"{name} train")
        if rows and "test_loss" in rows[0]:
            ax_loss.plot(epochs, [r["test_loss"] for r in rows], "-o", color=colour, label=f"{name} held-out")
            ax_acc.plot(epochs, [r["test_acc"] for r in rows], "-o", color=colour, label=f"{name} held-out")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy (36 classes)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def confusion_matrix(normalised, title="Confusion matrix (rows: true class, normalised)"):
    """The 36x36 matrix as a heatmap; off-diagonal cells of 2% or more carry their number."""
    import seaborn as sns

    fig = Figure(figsize=(12, 10.5), layout="constrained")
    ax = fig.subplots()
    percent = 100 * np.asarray(normalised)
    annot = np.where((percent >= 2) & ~np.eye(NUM_CLASSES, dtype=bool), np.round(percent).astype(int).astype(str), "")
    sns.heatmap(
        percent, ax=ax, cmap="Blues", vmin=0, vmax=100, square=True, annot=annot, fmt="",
        annot_kws={"fontsize": 7, "color": "#c62828"}, xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES,
        cbar_kws={"label": "% of the true class", "shrink": 0.8}, linewidths=0.2, linecolor="#eeeeee",
    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.tick_params(axis="y", rotation=0)
    ax.set_title(title + "\nred numbers: mistakes of 2% or more")
    return fig


def prediction_grid(images, labels, pred, confidence, rows=4, cols=10, title="Sample test predictions"):
    """Predictions with their confidence; mistakes in red with the true label."""
    fig, axes = _image_grid(rows, cols, (cols * 1.05, rows * 1.2 + 0.5))
    for ax, img, y, p, c in zip(axes.flat, images, labels, pred, confidence):
        ax.imshow(np.asarray(img).squeeze(), cmap="gray")
        ok = int(y) == int(p)
        text = f"{CLASS_NAMES[int(p)]} {100 * float(c):.0f}%" + ("" if ok else f"\n(true {CLASS_NAMES[int(y)]})")
        ax.set_title(text, color=RIGHT if ok else WRONG, fontsize=9)
        if not ok:
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_color(WRONG)
                spine.set_linewidth(2)
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title + " (green: right, red: wrong)")
    return fig


def confused_pairs(pairs, images, labels, pred, per_side=4):
    """For each confused pair (a, b): examples of a read as b, and of b read as a."""
    rows = len(pairs)
    fig, axes = _image_grid(rows, 2 * per_side + 1, ((2 * per_side + 1) * 0.95, rows * 1.1 + 0.5))
    labels = np.asarray(labels)
    pred = np.asarray(pred)
    for r, pair in enumerate(pairs):
        a, b = CLASS_NAMES.index(pair["a"]), CLASS_NAMES.index(pair["b"])
        axes[r, per_side].text(0.5, 0.5, f"{pair['a']} / {pair['b']}\n{pair['total']} errors",
                               ha="center", va="center", fontsize=11, transform=axes[r, per_side].transAxes)
        for side, (t, p) in enumerate(((a, b), (b, a))):
            idx = np.flatnonzero((labels == t) & (pred == p))[:per_side]
            for k, i in enumerate(idx):
                ax = axes[r, k if side == 0 else per_side + 1 + k]
                ax.imshow(np.asarray(images[i]).squeeze(), cmap="gray")
                ax.set_title(f"{CLASS_NAMES[t]}→{CLASS_NAMES[p]}", fontsize=9, color=WRONG)
    fig.suptitle("Most confused pairs: true→predicted (left: first read as second, right: the reverse)")
    return fig


def accuracy_vs_time(curves, target=None):
    """Test accuracy against training seconds for each recipe; `curves` maps name -> evaluations."""
    fig = Figure(figsize=(9, 5), layout="constrained")
    ax = fig.subplots()
    for i, (name, points) in enumerate(curves.items()):
        ax.plot([p["train_seconds"] for p in points], [p["overall_acc"] for p in points], "-o", ms=3,
                color=f"C{i}", label=name)
    if target is not None:
        ax.axhline(target, color="grey", ls="--", lw=1)
        ax.text(ax.get_xlim()[1], target, f"original recipe's final accuracy {target:.2f}% ", ha="right",
                va="bottom", color="grey", fontsize=9)
    ax.set(xlabel="training time (s, evaluation excluded)", ylabel="test accuracy, 36 classes (%)",
           title="Test accuracy against wall-clock training time")
    lows = [p["overall_acc"] for pts in curves.values() for p in pts]
    ax.set_ylim(max(min(lows) - 1, 80) if lows else 80, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def val_cer_curves(runs, title="Line readers trained for the whole budget: CER on the real val lines",
                   xlabel="training step (batches)"):
    """Val CER against training progress per run (`runs` maps name -> [[step or minute, CER %], ...]);
    the best point ringed."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    for i, (name, points) in enumerate(runs.items()):
        steps, cers = zip(*points) if points else ((), ())
        ax.plot(steps, cers, "-o", ms=3, color=f"C{i}", label=name)
        if points:
            best = int(np.argmin(cers))
            ax.plot([steps[best]], [cers[best]], "o", ms=10, mfc="none", color=f"C{i}")
    ax.set(xlabel=xlabel, ylabel="val CER (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return fig


def mix_shares(examples, model="the French prose model"):
    """One curve per line: `model`'s share of a mixed language model after each character read
    (`examples` maps a label to (text, shares); `decoding.MixedLM.shares`, column 1)."""
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    for i, (label, (text, shares)) in enumerate(examples.items()):
        ax.plot(np.arange(len(shares)), shares[:, 1], "-", color=f"C{i}", label=f"{label}: {text[:40]!r}")
    ax.set(xlabel="characters read", ylabel=f"share of {model}", ylim=(-0.03, 1.03),
           title="How the mix of two language models leans as a line is read")
    ax.grid(alpha=0.3)
    ax.legend(loc="center right", fontsize=8)
    return fig


def preprocessing_steps(examples):
    """One row per example: the picture, its grey levels, the cleaned ink, what the model sees."""
    steps = ("input", "grey", "ink found", "28x28 for the model")
    fig, axes = _image_grid(len(examples), len(steps), (len(steps) * 2.2, len(examples) * 2.2 + 0.3))
    for r, (name, original, prepared) in enumerate(examples):
        pictures = (original, prepared.grey, prepared.ink, prepared.image)
        for c, picture in enumerate(pictures):
            ax = axes[r, c]
            picture = np.asarray(picture)
            ax.imshow(picture, cmap=None if picture.ndim == 3 else ("gray_r" if c == 1 else "gray"))
            if r == 0:
                ax.set_title(steps[c], fontsize=10)
        axes[r, 0].text(-0.08, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=9)
    return fig


def case_class_counts(labels, title="Training images per class (EMNIST ByClass, this copy)"):
    """How unbalanced the 62 classes are: one bar per class, digits, capitals, small letters."""
    from .labels import CASE_CLASS_NAMES

    counts = np.bincount(np.asarray(labels), minlength=len(CASE_CLASS_NAMES))[: len(CASE_CLASS_NAMES)]
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    ax = fig.subplots()
    colours = ["#1f77b4"] * 10 + ["#ff7f0e"] * 26 + ["#2ca02c"] * 26
    ax.bar(range(len(counts)), counts, color=colours)
    ax.set_xticks(range(len(counts)), CASE_CLASS_NAMES)
    ax.set_ylabel("images")
    handles = [Patch(color=c, label=name) for c, name in
               (("#1f77b4", "digits"), ("#ff7f0e", "capitals"), ("#2ca02c", "small letters"))]
    ax.legend(handles=handles, loc="upper right")
    ax.set_title(title)
    return fig


def case_swaps(swaps, merged="cijklmopsuvwxyz", title="How often a letter is read in the other case"):
    """Two bars per letter: capitals read as small letters, and small letters read as capitals.

    `swaps` is `evaluation.case_swaps` (2 x 26, percent). Letters that ByMerge merges are marked
    with a grey band: their two rates should be high, since the shape alone cannot tell the case.
    """
    swaps = np.asarray(swaps, dtype=float)
    letters = "abcdefghijklmnopqrstuvwxyz"
    x = np.arange(26)
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    ax = fig.subplots()
    for k, ch in enumerate(letters):
        if ch in merged:
            ax.axvspan(k - 0.5, k + 0.5, color="#eeeeee", zorder=0)
    ax.bar(x - 0.2, np.nan_to_num(swaps[0]), 0.4, color="#ff7f0e", label="capital read as small (A -> a)")
    ax.bar(x + 0.2, np.nan_to_num(swaps[1]), 0.4, color="#2ca02c", label="small read as capital (a -> A)")
    ax.set_xticks(x, [f"{c.upper()}/{c}" for c in letters], fontsize=8)
    ax.set_ylabel("% of that class's test images")
    ax.legend(handles=ax.get_legend_handles_labels()[0] + [Patch(color="#eeeeee", label="merged in ByMerge")],
              loc="upper left")
    ax.set_title(title)
    return fig


def line_samples(images, texts, title="Synthetic lines, as the model sees them"):
    """Normalised line images (float, bright ink on black, any widths), each under its text."""
    fig = Figure(figsize=(11, 0.9 * len(images) + 0.4), layout="constrained")
    axes = fig.subplots(len(images), 1, squeeze=False)[:, 0]
    width = max(np.asarray(im).shape[1] for im in images)
    for ax, image, text in zip(axes, images, texts):
        image = np.asarray(image)
        ax.imshow(1 - image, cmap="gray", vmin=0, vmax=1, aspect="equal")
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_title(repr(text), fontsize=9, loc="left")
        ax.axis("off")
    fig.suptitle(title)
    return fig


def ctc_columns(image, probs, alphabet, text, blank="·"):
    """What CTC sees: the line, and under it each column's probabilities for the classes that win
    somewhere (the blank first), with the greedy reading.

    `probs` is (columns, classes) softmax output for one line; class 0 is the blank and class
    k + 1 is alphabet[k]. One output column covers `image width / columns` pixels.
    """
    image, probs = np.asarray(image), np.asarray(probs)
    used = sorted(set(probs.argmax(1).tolist()) | {0})
    names = [blank if k == 0 else repr(alphabet[k - 1])[1:-1] or " " for k in used]
    fig = Figure(figsize=(12, 2.2 + 0.22 * len(used)), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[1, max(2, 0.22 * len(used))], sharex=True)
    columns = probs.shape[0]
    top.imshow(1 - image, cmap="gray", vmin=0, vmax=1, aspect="auto", extent=(-0.5, columns - 0.5, 1, 0))
    top.set_yticks([])
    top.set_title(f"greedy reading: {text!r}", loc="left")
    bottom.imshow(probs[:, used].T, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    bottom.set_yticks(range(len(used)), names, fontsize=8)
    bottom.set_xlabel("output column (one per 4 pixels of the line)")
    bottom.set_ylabel("class")
    return fig


def page_reading(picture, results, title="A page read line by line"):
    """The picture with each line's box, and the text read under each box."""
    picture = np.asarray(picture.convert("L") if hasattr(picture, "convert") else picture)
    h, w = picture.shape[:2]
    fig = Figure(figsize=(11, 11 * h / w + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(picture, cmap="gray", vmin=0, vmax=255)
    for k, r in enumerate(results, 1):
        left, top, right, bottom = r.box
        ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, edgecolor="tab:red", lw=1.2))
        ax.text(left, bottom + 2, f"{k}: {r.text}", va="top", fontsize=8, color="tab:blue",
                bbox={"facecolor": "white", "alpha": 0.7, "pad": 1, "edgecolor": "none"})
    ax.set_title(title)
    ax.axis("off")
    return fig
