"""The web demo and the notebook's drawing pad in a real headless Chromium, driven by Playwright.

The mouse draws the strokes of characters on the canvas, as a person would, and the test reads
the predictions the page shows. Needs Debian's chromium (`make browser`); skipped without it
unless HCR_REQUIRE_BROWSER=1 (CI). HCR_SCREENSHOTS=1 saves the README's screenshots to assets/.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.strokes import render, to_canvas, wobbly_strokes
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("HCR_SCREENSHOTS") == "1"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"]
CHARACTERS = "7A3KM"  # drawn on the canvas; each must come back as the top guess


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("HCR_REQUIRE_BROWSER") == "1":
            pytest.fail("HCR_REQUIRE_BROWSER=1 but chromium is not installed: run `make browser` as root")
        pytest.skip("chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def web_demo():
    """`python app.py` exactly as a user starts it, on a free port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def draw(page, canvas, char, seed):
    """Draw `char` with the mouse: press, move through the stroke's points, release."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    size = box["width"]
    strokes = to_canvas(wobbly_strokes(char, np.random.default_rng(seed), jitter=0.01), canvas=size, margin=0.2)
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
        page.mouse.up()


def top_guess(scope, timeout=20_000):
    label = scope.locator(".hcr-row .hcr-label").first
    label.wait_for(timeout=timeout)
    return label


def test_web_demo_reads_characters_drawn_with_the_mouse(browser, web_demo):
    page = browser.new_page(viewport={"width": 900, "height": 620})
    page.goto(web_demo)
    canvas = page.locator("canvas")
    canvas.wait_for()
    for seed, char in enumerate(CHARACTERS):
        page.get_by_role("button", name="Clear").click()
        page.wait_for_function("!document.querySelector('.hcr-row')")
        draw(page, canvas, char, seed)
        page.wait_for_function(
            "c => document.querySelector('.hcr-row .hcr-label')?.textContent === c", arg=char, timeout=20_000)
        assert page.locator(".hcr-row").count() == 3
        assert page.locator(".hcr-seen img").get_attribute("src").startswith("data:image/png;base64,")
    if SCREENSHOTS:
        page.screenshot(path=str(ROOT / "assets" / "web_demo.png"))
    page.get_by_role("button", name="Clear").click()
    page.wait_for_selector(".hcr-message")
    page.close()


def test_web_demo_upload_and_bad_file(browser, web_demo, tmp_path):
    photo = tmp_path / "photo.jpg"
    ink = render(wobbly_strokes("K", np.random.default_rng(5)), canvas=300, width=20)
    paper = Image.new("RGB", ink.size, (225, 220, 200))
    paper.paste((30, 30, 60), mask=Image.eval(ink, lambda v: 255 - v))
    paper.save(photo, quality=85)
    notes = tmp_path / "notes.png"
    notes.write_text("this is not a picture")
    page = browser.new_page()
    page.goto(web_demo)
    page.locator("#file").set_input_files(str(photo))
    page.wait_for_function("() => document.querySelector('.hcr-row .hcr-label')?.textContent === 'K'", timeout=20_000)
    page.locator("#file").set_input_files(str(notes))
    message = page.locator(".hcr-message")
    message.wait_for(timeout=20_000)
    assert message.text_content().startswith("notes.png is not an image")
    page.close()


NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
               "source": "from helpers.drawpad import DrawPad\nfrom helpers.predict import Predictor\n"
                         "pad = DrawPad(Predictor())\npad"}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """A Jupyter server (JupyterLab and Notebook 7) over a folder holding one notebook with the pad."""
    folder = tmp_path_factory.mktemp("jupyter")
    (folder / "pad.ipynb").write_text(json.dumps(NOTEBOOK))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
         "--IdentityProvider.token=hcr", f"--ServerApp.root_dir={folder}", "--LabApp.news_url=",
         "--ServerApp.ip=127.0.0.1"],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/status?token=hcr", seconds=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def kernel_idle(server, seconds=90):
    """Wait until the page's kernel has started and is idle (asked from the server, not the UI)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        with urllib.request.urlopen(f"{server}/api/kernels?token=hcr", timeout=5) as response:
            kernels = json.loads(response.read())
        if kernels and all(k["execution_state"] == "idle" for k in kernels):
            return
        time.sleep(0.5)
    raise TimeoutError("the notebook's kernel did not start")


@pytest.mark.parametrize("front_end, path", [("JupyterLab", "/lab/tree/pad.ipynb"), ("Notebook 7", "/notebooks/pad.ipynb")])
def test_drawing_pad_in_jupyter(browser, jupyter, front_end, path):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(f"{jupyter}{path}?token=hcr")
    cell = page.locator(".jp-CodeCell .jp-InputArea-editor").first
    cell.wait_for(timeout=90_000)
    kernel_idle(jupyter)
    cell.click()
    page.keyboard.press("Shift+Enter")
    canvas = page.locator(".hcr-pad canvas")
    canvas.wait_for(timeout=90_000)
    pad = page.locator(".hcr-pad")
    for seed, char in enumerate("7A"):
        pad.locator("button", has_text="Clear").click()
        draw(page, canvas, char, seed)
        page.wait_for_function(
            "c => document.querySelector('.hcr-pad .hcr-row .hcr-label')?.textContent === c", arg=char, timeout=30_000)
    assert pad.locator(".hcr-row").count() == 3
    if SCREENSHOTS and front_end == "JupyterLab":
        pad.screenshot(path=str(ROOT / "assets" / "drawing_pad.png"))
    page.close()
