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
from tests.test_webapp_server import always_g_checkpoint

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


def start_app(*args):
    """`python app.py` exactly as a user starts it, on a free port; yields its address."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def web_demo():
    yield from start_app()


@pytest.fixture(scope="module")
def web_demo_always_g(tmp_path_factory):
    """The demo with a case-sensitive model that always says "g": the switch's effect is plain to see."""
    yield from start_app("--case-checkpoint", str(always_g_checkpoint(tmp_path_factory.mktemp("case") / "case.pt")))


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


BLANK_CANVAS = """() => {
  const c = document.querySelector('canvas');
  return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.every(v => v === 255);
}"""


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
    draw(page, page.locator("canvas"), "7", 0)
    page.wait_for_function("() => document.querySelector('.hcr-row .hcr-label')?.textContent === '7'", timeout=20_000)
    assert not page.evaluate(BLANK_CANVAS)
    page.locator("#file").set_input_files(str(photo))
    page.wait_for_function("() => document.querySelector('.hcr-row .hcr-label')?.textContent === 'K'", timeout=20_000)
    assert page.evaluate(BLANK_CANVAS), "an upload replaces the drawing: the canvas must be cleared"
    assert page.locator(".hcr-name").text_content() == "photo.jpg:"
    page.locator("#file").set_input_files(str(notes))
    message = page.locator(".hcr-message")
    message.wait_for(timeout=20_000)
    assert message.text_content().startswith("notes.png is not an image")
    page.close()


def test_web_demo_loads_without_errors(browser, web_demo):
    """No 404 (the favicon was one) and no error in the console while the page loads."""
    page = browser.new_page()
    failures = []
    page.on("console", lambda msg: msg.type == "error" and failures.append(msg.text))
    page.on("response", lambda r: r.status >= 400 and failures.append(f"{r.status} {r.url}"))
    page.on("pageerror", lambda error: failures.append(str(error)))
    page.goto(web_demo, wait_until="networkidle")
    page.locator("canvas").wait_for()
    page.wait_for_timeout(500)
    assert failures == []
    # A headless browser skips the favicon; a normal one asks for /favicon.ico unless the page names an icon.
    assert page.locator("link[rel~=icon]").count() == 1
    page.close()


def touch_draw(page, canvas, char, seed):
    """Draw `char` with one finger: touch events through the DevTools protocol, as a phone sends them."""
    cdp = page.context.new_cdp_session(page)
    box = canvas.bounding_box()
    strokes = to_canvas(wobbly_strokes(char, np.random.default_rng(seed), jitter=0.01), canvas=box["width"], margin=0.2)
    for stroke in strokes:
        points = [{"x": box["x"] + x, "y": box["y"] + y} for x, y in stroke]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [points[0]]})
        for point in points[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_web_demo_on_a_phone(browser, web_demo):
    """390 px wide, as an iPhone: no sideways scrolling, and a finger draws on the canvas."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                                  device_scale_factor=3)
    page = context.new_page()
    page.goto(web_demo)
    canvas = page.locator("canvas")
    canvas.wait_for()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    assert canvas.bounding_box()["x"] + canvas.bounding_box()["width"] <= 390
    canvas.scroll_into_view_if_needed()
    scrolled = page.evaluate("window.scrollY")
    touch_draw(page, canvas, "7", 0)
    page.wait_for_function("() => document.querySelector('.hcr-row .hcr-label')?.textContent === '7'", timeout=20_000)
    assert page.evaluate("window.scrollY") == scrolled, "drawing with a finger must not scroll the page"
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    context.close()


def shown(page, label):
    page.wait_for_function("c => document.querySelector('.hcr-row .hcr-label')?.textContent === c", arg=label,
                           timeout=20_000)


def test_web_demo_switches_to_the_case_sensitive_model(browser, web_demo_always_g):
    page = browser.new_page(viewport={"width": 900, "height": 620})
    page.goto(web_demo_always_g)
    assert page.locator("#mode").input_value() == "36"
    assert page.locator("#mode option").all_text_contents() == [
        "36 classes (0-9, A-Z)", "case-sensitive (0-9, A-Z, a-z)"]
    draw(page, page.locator("canvas"), "7", 0)
    shown(page, "7")
    with page.expect_request(lambda r: r.url.endswith("/predict")) as sent:
        page.select_option("#mode", "case")  # the same drawing is sent again, for the other model
    assert json.loads(sent.value.post_data)["mode"] == "case"
    shown(page, "g")
    page.get_by_role("button", name="Clear").click()
    draw(page, page.locator("canvas"), "A", 1)  # new drawings go to the model the switch shows
    shown(page, "g")
    page.select_option("#mode", "36")
    shown(page, "A")
    page.close()


SMALL_LETTERS = "abdehnrt"  # drawn with the case switch on; each must come back in small case


def test_web_demo_reads_small_letters_with_the_shipped_case_model(browser, web_demo):
    page = browser.new_page(viewport={"width": 900, "height": 620})
    page.goto(web_demo)
    canvas = page.locator("canvas")
    canvas.wait_for()
    page.select_option("#mode", "case")
    for seed, char in enumerate(SMALL_LETTERS):
        page.get_by_role("button", name="Clear").click()
        page.wait_for_function("!document.querySelector('.hcr-row')")
        draw(page, canvas, char, seed)
        shown(page, char)
    page.close()


NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
               "source": "from helpers.drawpad import DrawPad\nfrom helpers.predict import Predictor\n"
                         "pad = DrawPad(Predictor(), case_predictor=Predictor('case.pt', case_sensitive=True))\n"
                         "pad"}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    """A Jupyter server (JupyterLab and Notebook 7) over a folder holding one notebook with the pad."""
    folder = tmp_path_factory.mktemp("jupyter")
    (folder / "pad.ipynb").write_text(json.dumps(NOTEBOOK))
    always_g_checkpoint(folder / "case.pt")  # the pad's case-sensitive model says "g" to everything
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(folder / "server.log", "w") as log:
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


@pytest.mark.parametrize("front_end, path",
                         [("JupyterLab", "/lab/tree/pad.ipynb"), ("Notebook 7", "/notebooks/pad.ipynb")])
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
    page.locator("select.hcr-mode").select_option("case")  # the switch reaches the kernel: the "g" model answers
    page.wait_for_function("() => document.querySelector('.hcr-pad .hcr-row .hcr-label')?.textContent === 'g'",
                           timeout=30_000)
    page.locator("select.hcr-mode").select_option("36")
    page.wait_for_function("() => document.querySelector('.hcr-pad .hcr-row .hcr-label')?.textContent === 'A'",
                           timeout=30_000)
    page.close()
