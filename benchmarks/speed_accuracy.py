"""The seed recipe and the default recipe, side by side, on the same data and machine.

    python -m benchmarks.speed_accuracy                  # 3 seeds, about 35 min on a 2-core CPU
    python -m benchmarks.speed_accuracy --seeds 0        # one seed, about 12 min
    python -m benchmarks.speed_accuracy --seeds 0 --set ema=0 --out build/no_ema    # the default recipe changed

For each seed it trains
- the seed recipe as the seeds ran it: torchvision datasets with per-item `ToTensor`, a
  DataLoader of batch 64, the baseline CNN, Adam 1e-3, 5 epochs, each dataset in its own framing;
- the default recipe of `helpers.training` on in-memory tensors, every image framed alike;
and prints wall time, images per second, test accuracy (digits, letters, overall), the ratio of
the two times, the time the default recipe needs to pass the seed recipe's final accuracy, and
inference speed. Test accuracy is measured on the full MNIST (10,000) and EMNIST Letters
(20,800) test files every half epoch (quarter epoch for the default) with the clock paused.
Writes assets/benchmark.json and assets/accuracy_vs_time.png.
"""

import argparse
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from helpers import data, evaluation, model, plots, records, training
from helpers.evaluation import fmt_mean_std
from helpers.labels import NUM_DIGITS
from helpers.paths import ASSETS, data_root

from .common import machine, run
from .inference import describe, inference_speed


def seed_recipe(seed, test_original, evals_per_epoch=2, epochs=5):
    """The seeds' loop: per-item PIL -> ToTensor through a DataLoader, baseline CNN, Adam 1e-3."""
    from PIL import Image
    from torch.utils.data import ConcatDataset, DataLoader
    from torchvision import datasets, transforms

    root = str(data_root())
    upright = transforms.Compose([transforms.Lambda(lambda img: img.transpose(Image.Transpose.TRANSPOSE)),
                                  transforms.ToTensor()])
    train_set = ConcatDataset([
        datasets.MNIST(root, train=True, download=True, transform=transforms.ToTensor()),
        datasets.EMNIST(root, split="letters", train=True, download=True, transform=upright,
                        target_transform=lambda y: y + NUM_DIGITS - 1),
    ])
    torch.manual_seed(seed)
    net = model.build_model("baseline")
    loader = DataLoader(train_set, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    test_images = test_original.to_float()
    steps = len(loader)
    marks = {round(steps * k / evals_per_epoch) for k in range(1, evals_per_epoch + 1)}
    points, clock, seen = [], 0.0, 0
    for epoch in range(epochs):
        net.train()
        started = time.perf_counter()
        for step, (x, y) in enumerate(loader, 1):
            optimizer.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            optimizer.step()
            seen += len(y)
            if step in marks:
                clock += time.perf_counter() - started
                points.append({"epoch": epoch + step / steps, "train_seconds": clock, "images_seen": seen,
                               **evaluation.evaluate(net, test_original, torch.device("cpu"), test_images)})
                net.train()
                started = time.perf_counter()
        clock += time.perf_counter() - started
    logits = evaluation.predict_logits(net, test_images, torch.device("cpu"))
    final = evaluation.summarise(logits, test_original.labels, test_original.sources)
    return net, {"train_seconds": clock, "images_seen": seen, "images_per_second": seen / clock,
                 "curve": points, **final}


def default_recipe(seed, train_set, test_set, recipe, evals_per_epoch=4, prep_seconds=0.0):
    """The default recipe (compact CNN, in-memory tensors) on the given images."""
    net = model.build_model("compact", seed=seed)
    history = training.train(net, train_set, test_set, recipe, seed=seed, progress=False,
                             evals_per_epoch=evals_per_epoch, log=None)
    images = test_set.to_float()
    final = evaluation.summarise(evaluation.predict_logits(net, images), test_set.labels, test_set.sources)
    shifted = evaluation.summarise(shifted_logits(net, images), test_set.labels, test_set.sources)
    return net, {"train_seconds": history.train_seconds, "data_seconds": prep_seconds,
                 "images_seen": history.images_seen, "images_per_second": history.images_seen / history.train_seconds,
                 "curve": history.evaluations, **final, "shift_tta": shifted}


def shifted_logits(net, images):
    """Test-time augmentation, measured but not shipped: the mean probability over the image and
    its four 1-pixel shifts (5x the inference cost)."""
    probs = evaluation.predict_logits(net, images).softmax(1)
    for shift, dim in ((1, 3), (-1, 3), (1, 2), (-1, 2)):
        probs += evaluation.predict_logits(net, torch.roll(images, shift, dim)).softmax(1)
    return (probs / 5).log()


def recipe_change(text):
    """"ema=0" -> ("ema", 0.0), typed like the default recipe's field, for --set."""
    name, _, value = text.partition("=")
    fields = training.DEFAULT_RECIPE.to_dict()
    if name not in fields or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=VALUE with NAME one of {', '.join(fields)}")
    kind = type(fields[name])
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise argparse.ArgumentTypeError(f"{text!r}: {name} is true or false")
        return name, value.lower() == "true"
    return name, kind(value)


def time_to(curve, target):
    """Training seconds at the first evaluation that reaches `target` overall accuracy."""
    for point in curve:
        if point["overall_acc"] >= target:
            return point["train_seconds"]
    return None


def mean_spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder for benchmark.json and the figure")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", type=recipe_change,
                        help="change the default recipe, e.g. ema=0 or recalibrate_bn=false (repeatable)")
    args = parser.parse_args(argv)
    if args.set and args.out == ASSETS:
        parser.error("with --set, name a folder with --out: assets/benchmark.json is the default recipe's record")
    recipe = replace(training.DEFAULT_RECIPE, **dict(args.set))

    started = time.perf_counter()
    test_original = data.load_characters(train=False, framing="original")
    train_original = data.load_characters(train=True, framing="original")
    original_seconds = time.perf_counter() - started
    started = time.perf_counter()
    train_set = data.reframe(train_original)
    test_set = data.reframe(test_original)
    prep_seconds = original_seconds + time.perf_counter() - started

    runs = []
    for seed in args.seeds:
        print(f"--- seed {seed}: seed recipe (5 epochs, batch 64, per-item loading) ...", flush=True)
        seed_net, seed_run = seed_recipe(seed, test_original)
        print(f"    {seed_run['train_seconds']:.0f} s, overall {seed_run['overall_acc']:.2f}%", flush=True)
        print(f"--- seed {seed}: default recipe on the seeds' framing (same task as the seed recipe) ...", flush=True)
        _, same_task = default_recipe(seed, train_original, test_original, recipe, prep_seconds=original_seconds)
        print(f"--- seed {seed}: default recipe, every image framed alike (what the project ships) ...", flush=True)
        default_net, default_run = default_recipe(seed, train_set, test_set, recipe, prep_seconds=prep_seconds)
        target = seed_run["overall_acc"]
        reached = time_to(same_task["curve"], target)
        runs.append({"seed": seed, "seed_recipe": seed_run, "default_recipe_seed_framing": same_task,
                     "default_recipe": default_run,
                     "time_ratio": seed_run["train_seconds"] / same_task["train_seconds"],
                     "time_to_seed_accuracy": reached,
                     "time_to_accuracy_ratio": seed_run["train_seconds"] / reached if reached else None})
        for name, arm in (("same task", same_task), ("framed alike", default_run)):
            print(f"    {name}: {arm['train_seconds']:.0f} s, digits {arm['digits_acc']:.2f}%, letters "
                  f"{arm['letters_acc']:.2f}%, overall {arm['overall_acc']:.2f}%", flush=True)
        print(f"    same task passes the seed recipe's {target:.2f}% after "
              f"{reached if reached is None else round(reached, 1)} s of training", flush=True)

    inference = {"seed recipe (baseline)": inference_speed(seed_net, test_original.to_float()),
                 "default recipe (compact)": inference_speed(default_net, test_set.to_float())}

    keys = ("train_seconds", "images_per_second", "digits_acc", "letters_acc", "overall_acc",
            "digits_tolerant_acc", "letters_tolerant_acc", "letters_26way_acc", "digits_10way_acc")
    arms = ("seed_recipe", "default_recipe_seed_framing", "default_recipe")
    summary = {name: {k: mean_spread([r[name][k] for r in runs]) for k in keys} for name in arms}
    for name in arms[1:]:
        summary[name]["shift_tta"] = {k: mean_spread([r[name]["shift_tta"][k] for r in runs])
                                      for k in ("digits_acc", "letters_acc", "overall_acc")}
    summary["time_ratio"] = mean_spread([r["time_ratio"] for r in runs])
    summary["time_to_seed_accuracy"] = mean_spread([r["time_to_seed_accuracy"] for r in runs])
    summary["time_to_accuracy_ratio"] = mean_spread([r["time_to_accuracy_ratio"] for r in runs])

    print()
    print(f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; seeds {args.seeds}; mean ± standard deviation")
    print(f"{'':28s}{'seed recipe':>22s}{'default, seed framing':>24s}{'default, framed alike':>24s}")
    rows = [("training time (s)", "train_seconds", 0), ("images / second", "images_per_second", 0),
            ("digits test accuracy (%)", "digits_acc", 2), ("letters test accuracy (%)", "letters_acc", 2),
            ("overall test accuracy (%)", "overall_acc", 2), ("letters, 26-way (%)", "letters_26way_acc", 2),
            ("digits, look-alikes ok (%)", "digits_tolerant_acc", 2),
            ("letters, look-alikes ok (%)", "letters_tolerant_acc", 2)]
    for label, key, digits in rows:
        cells = [fmt_mean_std(summary[arm][key], digits) for arm in arms]
        print(f"{label:28s}{cells[0]:>22s}{cells[1]:>24s}{cells[2]:>24s}")
    for label, key in (("digits, 4-shift TTA (%)", "digits_acc"), ("letters, 4-shift TTA (%)", "letters_acc"),
                       ("overall, 4-shift TTA (%)", "overall_acc")):
        cells = ["-"] + [fmt_mean_std(summary[arm]["shift_tta"][key], 2) for arm in arms[1:]]
        print(f"{label:28s}{cells[0]:>22s}{cells[1]:>24s}{cells[2]:>24s}")
    print(f"time ratio on the same task (seed recipe / default recipe): {fmt_mean_std(summary['time_ratio'], 2)}x")
    print(f"the default recipe passes the seed recipe's final accuracy after "
          f"{fmt_mean_std(summary['time_to_seed_accuracy'])} s of training: "
          f"{fmt_mean_std(summary['time_to_accuracy_ratio'])}x sooner than the seed recipe finishes")
    print(f"data preparation, once: {original_seconds:.1f} s to load; {prep_seconds:.1f} s to load and frame alike")
    for name, speed in inference.items():
        print(describe(name, speed))

    payload = {"seeds_option": " ".join(map(str, args.seeds)), "machine": machine(), "seeds": args.seeds,
               "data_seconds": prep_seconds, "summary": summary, "inference": inference, "runs": runs,
               "default_recipe": recipe.to_dict()}
    records.write("benchmark.json", payload, folder=args.out)
    curves = {"seed recipe": runs[0]["seed_recipe"]["curve"],
              "default recipe, seeds' framing": runs[0]["default_recipe_seed_framing"]["curve"],
              "default recipe, framed alike (shipped)": runs[0]["default_recipe"]["curve"]}
    plots.save(plots.accuracy_vs_time(curves, target=runs[0]["seed_recipe"]["overall_acc"]),
               args.out / "accuracy_vs_time.png")
    return payload


if __name__ == "__main__":
    run(main)
