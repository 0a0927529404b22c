"""How fast the model reads: a batch of test images, one image, and one PNG from file to top-3.

    python -m benchmarks.inference     # the shipped model; seconds, no training, no data files needed

A live drawing pad needs an answer in well under 20 ms. This was a timed test once; timings
on a shared machine are a measurement, not a pass/fail check, so they live here.
"""

import io
import statistics
import time

import numpy as np
import torch

from helpers import checkpoint
from helpers.predict import Predictor
from helpers.strokes import render, wobbly_strokes

from .common import machine, run

TARGET_MS = 20.0  # one picture, PNG to top-3, for a drawing pad that answers while you draw


def inference_speed(net, images, repeats=200):
    """Images per second in batches of 1024, and milliseconds for one image (model alone and full path)."""
    net = net.cpu().eval()
    with torch.no_grad():
        net(images[:1024])  # warm up
        started = time.perf_counter()
        for start in range(0, len(images), 1024):
            net(images[start : start + 1024])
        batch_rate = len(images) / (time.perf_counter() - started)
        one = images[:1]
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            net(one)
            times.append(time.perf_counter() - t)
    predictor = Predictor.from_model(net)
    buffer = io.BytesIO()
    render(wobbly_strokes("A", np.random.default_rng(0)), canvas=280, width=18).save(buffer, "PNG")
    png = buffer.getvalue()
    predictor.predict(png)  # warm up
    full = []
    for _ in range(repeats // 4):
        t = time.perf_counter()
        predictor.predict(png)
        full.append(time.perf_counter() - t)
    return {"batch_images_per_second": batch_rate, "one_image_model_ms": 1000 * statistics.median(times),
            "one_image_png_to_top3_ms": 1000 * statistics.median(full)}


def describe(name, speed):
    return (f"inference, {name}: {speed['batch_images_per_second']:.0f} images/s in batches of 1024; one image "
            f"{speed['one_image_model_ms']:.2f} ms (model), {speed['one_image_png_to_top3_ms']:.1f} ms (PNG -> top-3)")


def main():
    net, _ = checkpoint.load_checkpoint(checkpoint.SHIPPED)
    images = torch.rand(10240, 1, 28, 28)  # the speed does not depend on what the pixels show
    speed = inference_speed(net, images)
    m = machine()
    print(f"{m['processor']}, {m['threads']} threads, torch {m['torch']}, bf16 instructions: {m['bf16']}")
    print(describe("shipped model", speed))
    ok = speed["one_image_png_to_top3_ms"] < TARGET_MS
    print(f"target: one picture from PNG to top-3 in under {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    return speed


if __name__ == "__main__":
    run(main)
