"""The web demo and the notebook's drawing pad in a real headless Chromium, driven by Playwright.

The mouse draws the strokes of characters on the canvas, as a person would, and the test reads
the predictions the page shows; in the text mode it writes whole words on the wide canvas.
Needs Debian's chromium (`make browser`); skipped without it unless HCR_REQUIRE_BROWSER=1 (CI).
HCR_SCREENSHOTS=1 saves the README's screenshots to assets/.
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

from helpers import crnn
from helpers.strokes import TEMPLATES, render, wobbly_strokes
from tests.conftest import ROOT
from tests.test_webapp_server import always_g_checkpoint, always_q_reader

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("HCR_SCREENSHOTS") == "1"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"]
CHARACTERS = "7A3KM"  # drawn on the canvas; each must come back as the top guess
WORD = "ROOM 101"  # written with the mouse in the text mode; the shipped line reader must read exactly this



def to_canvas(strokes, canvas=280, margin=0.2):
    """Stroke points in pixel coordinates of a square canvas, where the test moves the mouse."""
    pts = np.concatenate(strokes)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    scale = canvas * (1 - 2 * margin) / max((hi - lo).max(), 1e-6)
    centre = (lo + hi) / 2
    return [[(float(x), float(y)) for x, y in (s - centre) * scale + canvas / 2] for s in strokes]

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
    """The demo with the shipped models (the line reader is always checkpoints/lines.pt, never runs/)."""
    yield from start_app("--lines-checkpoint", str(crnn.SHIPPED))


@pytest.fixture(scope="module")
def web_demo_fakes(tmp_path_factory):
    """The demo with a case-sensitive model that always says "g" and a line reader that always reads "q":
    the switch's effect is plain to see."""
    folder = tmp_path_factory.mktemp("fakes")
    yield from start_app("--case-checkpoint", str(always_g_checkpoint(folder / "case.pt")),
                         "--lines-checkpoint", str(always_q_reader(folder / "lines.pt")))


def draw(page, canvas, char, seed):
    """Draw `char` with the mouse on the square canvas."""
    canvas.scroll_into_view_if_needed()
    size = canvas.bounding_box()["width"]
    mouse_strokes(page, canvas, to_canvas(wobbly_strokes(char, np.random.default_rng(seed), jitter=0.01),
                                          canvas=size, margin=0.2))


X_HEIGHT = 0.6  # height of small letters without ascenders, relative to capitals, as in handwriting
SMALL = "acemnorsuvwxz"
SAME_SHAPE = "cosuvwxz"  # small letters with no template of their own: written as their capital, smaller
LETTER_GAP, WORD_GAP = 0.22, 0.6  # space between letters and between words, in cap heights


def line_strokes(text, width, height, seed=0):
    """Strokes (pixels of a width x height canvas) that write `text` as one line of handwriting.

    Letters sit side by side on one baseline: capitals, digits and ascenders at cap height, small
    letters at X_HEIGHT of it; a space is a wider gap. The line is centred and as big as fits.
    """
    rng = np.random.default_rng(seed)
    strokes, x = [], 0.0  # in cap heights, the baseline at y = 0; x is where the next letter starts
    for char in text:
        if char == " ":
            x += WORD_GAP - LETTER_GAP
            continue
        template = char if char in TEMPLATES else char.upper() if char in SAME_SHAPE else None
        if template is None:
            raise ValueError(f"{char!r} has no stroke template: write 0-9, A-Z, {SAME_SHAPE} or "
                             f"{''.join(c for c in TEMPLATES if c.islower())}")
        letter = wobbly_strokes(template, rng, jitter=0.01, slant=0.1, rotate=3.0)
        lo, hi = np.concatenate(letter).min(axis=0), np.concatenate(letter).max(axis=0)
        scale = (X_HEIGHT if char in SMALL else 0.85 if char == "t" else 1.0) / (hi - lo)[1]
        strokes += [(s - [lo[0], hi[1]]) * scale + [x, 0] for s in letter]
        x += (hi - lo)[0] * scale + LETTER_GAP
    x -= LETTER_GAP
    cap = min(0.55 * height, 0.9 * width / x)  # pixels
    origin = np.array([(width - x * cap) / 2, (height + cap) / 2])
    return [[(float(px), float(py)) for px, py in s * cap + origin] for s in strokes]


def mouse_strokes(page, canvas, strokes):
    """Draw strokes given in canvas pixels with the mouse: press, move through the points, release."""
    box = canvas.bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
        page.mouse.up()


def write(page, canvas, text, seed=0):
    """Write `text` with the mouse on the wide canvas, letter after letter."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    mouse_strokes(page, canvas, line_strokes(text, box["width"], box["height"], seed))


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
    """Draw `char` with one finger on the square canvas."""
    size = canvas.bounding_box()["width"]
    touch_strokes(page, canvas, to_canvas(wobbly_strokes(char, np.random.default_rng(seed), jitter=0.01),
                                          canvas=size, margin=0.2))


def touch_strokes(page, canvas, strokes):
    """Strokes in canvas pixels, drawn with one finger: touch events through the DevTools protocol, as a
    phone sends them."""
    cdp = page.context.new_cdp_session(page)
    box = canvas.bounding_box()
    for stroke in strokes:
        points = [{"x": box["x"] + x, "y": box["y"] + y} for x, y in stroke]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [points[0]]})
        for point in points[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def phone_page(browser, url):
    """A page 390 px wide with touch, as an iPhone shows it (close it with page.context.close())."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                                  device_scale_factor=3)
    page = context.new_page()
    page.goto(url)
    return page


def test_web_demo_on_a_phone(browser, web_demo):
    """390 px wide, as an iPhone: no sideways scrolling, and a finger draws on the canvas."""
    page = phone_page(browser, web_demo)
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
    page.context.close()


def shown(page, label):
    page.wait_for_function("c => document.querySelector('.hcr-row .hcr-label')?.textContent === c", arg=label,
                           timeout=20_000)


def test_web_demo_switches_to_the_case_sensitive_model(browser, web_demo_fakes):
    page = browser.new_page(viewport={"width": 900, "height": 620})
    page.goto(web_demo_fakes)
    assert page.locator("#mode").input_value() == "36"
    assert page.locator("#mode option").all_text_contents() == [
        "36 classes (0-9, A-Z)", "case-sensitive (0-9, A-Z, a-z)", "a word or a line (text)"]
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


def canvas_shape(canvas):
    box = canvas.bounding_box()
    return box["width"], box["height"]


def shown_text(page, text, timeout=20_000):
    page.wait_for_function("t => document.querySelector('.hcr-text')?.textContent === t", arg=text, timeout=timeout)


def test_web_demo_text_mode_shows_the_text_while_writing(browser, web_demo_fakes, tmp_path):
    page = browser.new_page(viewport={"width": 900, "height": 620})
    page.goto(web_demo_fakes)
    canvas = page.locator("canvas")
    draw(page, canvas, "7", 0)
    shown(page, "7")
    sent = []
    page.on("request", lambda r: r.url.endswith("/predict") and sent.append(json.loads(r.post_data)["mode"]))
    page.select_option("#mode", "text")
    width, height = canvas_shape(canvas)
    assert width / height > 3.5 and width > 600, "the text mode writes on a wide canvas that fills the page"
    assert page.evaluate(BLANK_CANVAS), "the square drawing does not fit the wide canvas: it is wiped"
    assert page.locator(".hcr-message").text_content().startswith("Write a word or a line")
    mouse_strokes(page, canvas, line_strokes("K7AB", width, height)[:1])  # the first stroke of the first letter
    shown_text(page, "q")  # a reading is shown as soon as a stroke ends, before the word is complete
    assert page.locator(".hcr-confidence").text_content().startswith("confidence 100%")
    assert page.locator(".hcr-seen img.hcr-line").get_attribute("src").startswith("data:image/png;base64,")
    assert page.locator(".hcr-row").count() == 0 and page.locator(".hcr-unsure").count() == 0
    before = len(sent)
    mouse_strokes(page, canvas, line_strokes("K7AB", width, height)[1:])
    page.wait_for_timeout(500)
    assert len(sent) - before >= 5 and set(sent) == {"text"}, "every stroke sends the line to the line reader"
    shown_text(page, "q")
    page.get_by_role("button", name="Clear").click()
    page.wait_for_selector(".hcr-message")
    assert page.evaluate(BLANK_CANVAS) and canvas_shape(canvas)[0] == width
    photo = tmp_path / "k.png"
    render(wobbly_strokes("K", np.random.default_rng(5)), canvas=300, width=20).save(photo)
    page.locator("#file").set_input_files(str(photo))  # an upload in the text mode is read as a line
    shown_text(page, "q")
    assert page.locator(".hcr-name").text_content() == "k.png:"
    page.select_option("#mode", "36")  # back to one character: a square canvas, the upload read again
    shown(page, "K")
    width, height = canvas_shape(canvas)
    assert abs(width - height) < 2
    page.close()


UNSURE_TEXT = """async () => {
  const { showResults } = await import('/pad.js');
  const box = document.createElement('div');
  showResults(box, { text: 'R00M', confidence: 0.31, unsure: true, preview: '' }, 'text');
  return [box.querySelector('.hcr-text').textContent, box.querySelector('.hcr-confidence').textContent,
          box.querySelector('.hcr-unsure')?.textContent];
}"""


def test_web_demo_text_mode_says_when_it_is_unsure(browser, web_demo_fakes):
    page = browser.new_page()
    page.goto(web_demo_fakes)
    text, confidence, unsure = page.evaluate(UNSURE_TEXT)
    assert text == "R00M" and confidence.startswith("confidence 31%") and "unsure" in unsure
    page.close()


def test_web_demo_text_mode_on_a_phone(browser, web_demo_fakes):
    """390 px wide: the wide canvas still fits without sideways scrolling, and a finger writes on it."""
    page = phone_page(browser, web_demo_fakes)
    page.select_option("#mode", "text")
    canvas = page.locator("canvas")
    width, height = canvas_shape(canvas)
    assert width / height > 3.5
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    assert canvas.bounding_box()["x"] + width <= 390
    canvas.scroll_into_view_if_needed()
    scrolled = page.evaluate("window.scrollY")
    touch_strokes(page, canvas, line_strokes("AB7", width, height))
    shown_text(page, "q")
    assert page.evaluate("window.scrollY") == scrolled, "writing with a finger must not scroll the page"
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    page.context.close()


def test_web_demo_reads_a_word_written_with_the_mouse(browser, web_demo):
    """The shipped line reader reads WORD, written letter by letter with the mouse on the wide canvas."""
    if not crnn.SHIPPED.is_file():
        pytest.skip(f"the shipped line reader {crnn.SHIPPED.relative_to(ROOT)} is absent: train it (lines chapter)")
    page = browser.new_page(viewport={"width": 900, "height": 620})
    page.goto(web_demo)
    page.select_option("#mode", "text")
    canvas = page.locator("canvas")
    write(page, canvas, WORD)
    try:
        shown_text(page, WORD, timeout=30_000)  # the first reading also loads the model
    except Exception:  # a timeout: say what the page shows instead
        pytest.fail(f"the page shows {page.locator('.hcr-text, .hcr-message').first.text_content()!r}, "
                    f"not {WORD!r}")
    if SCREENSHOTS:
        page.screenshot(path=str(ROOT / "assets" / "web_demo_text.png"))
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
                         "pad = DrawPad(Predictor(), case_predictor=Predictor('case.pt', case_sensitive=True),\n"
                         "              text_reader=Predictor('lines.pt', text=True))\n"
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
    always_q_reader(folder / "lines.pt")  # and its line reader reads "q"
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
    page.locator("select.hcr-mode").select_option("text")  # a wide canvas; the text shows while writing
    page.wait_for_selector(".hcr-pad .hcr-message", timeout=30_000)
    width, height = canvas_shape(canvas)
    assert width / height > 3.5
    write(page, canvas, "AB7")
    page.wait_for_function("() => document.querySelector('.hcr-pad .hcr-text')?.textContent === 'q'", timeout=30_000)
    page.close()
