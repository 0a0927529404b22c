"""The notebook's drawing pad and the web server, driven from Python (the browser test drives
them through a real Chromium)."""

import io
import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import traitlets
from PIL import Image

from helpers import checkpoint, webapp
from helpers.drawpad import DrawPad
from helpers.predict import Predictor, preview_data_url
from helpers.strokes import render, wobbly_strokes
from tests.test_webapp_server import always_g_checkpoint


@pytest.fixture(scope="module")
def predictor():
    return Predictor(checkpoint.SHIPPED)


def drawing_bytes(char, seed=0, size=280):
    buffer = io.BytesIO()
    render(wobbly_strokes(char, np.random.default_rng(seed)), canvas=size, width=18).convert("RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def data_url(raw):
    import base64

    return "data:image/png;base64," + base64.b64encode(raw).decode()


def test_pad_predicts_what_is_drawn_and_clears(predictor):
    pad = DrawPad(predictor)
    assert pad.result == {}
    pad.image = data_url(drawing_bytes("7"))
    assert pad.result["label"] == "7" and len(pad.result["top3"]) == 3
    assert pad.result["preview"].startswith("data:image/png;base64,")
    pad.image = data_url(drawing_bytes("A", seed=1))
    assert pad.result["label"] == "A"
    pad.image = ""
    assert pad.result == {}


def test_pad_explains_an_empty_drawing_and_garbage(predictor):
    pad = DrawPad(predictor)
    blank = io.BytesIO()
    Image.new("RGBA", (280, 280), "white").save(blank, "PNG")
    pad.image = data_url(blank.getvalue())
    assert "no character" in pad.result["error"]
    pad.image = "data:image/png;base64,!!!"
    assert "damaged" in pad.result["error"]
    pad.image = preview_data_url(np.zeros((28, 28), np.float32))
    assert "error" in pad.result


@pytest.fixture(scope="module")
def case_checkpoint(tmp_path_factory):
    return always_g_checkpoint(tmp_path_factory.mktemp("case") / "case.pt")


def test_pad_switches_between_the_36_class_and_the_case_sensitive_model(predictor, case_checkpoint):
    pad = DrawPad(predictor, case_predictor=Predictor(case_checkpoint, case_sensitive=True))
    assert pad.mode == "36"
    pad.image = data_url(drawing_bytes("7"))
    assert pad.result["label"] == "7"
    pad.mode = "case"  # the reader flips the switch: the same drawing, read by the other model
    assert pad.result["label"] == "g"
    pad.mode = "36"
    assert pad.result["label"] == "7"
    with pytest.raises(traitlets.TraitError):
        pad.mode = "62"


def test_pad_loads_the_case_model_on_first_switch(predictor, case_checkpoint, monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoint, "TRAINED_CASE", tmp_path / "runs" / "case.pt")
    monkeypatch.setattr(checkpoint, "SHIPPED_CASE", tmp_path / "checkpoints" / "case.pt")
    pad = DrawPad(predictor)
    assert pad.case_predictor is None
    pad.image = data_url(drawing_bytes("7"))
    pad.mode = "case"
    assert "case-sensitive model is missing" in pad.result["error"]
    pad.mode = "36"
    assert pad.result["label"] == "7"
    monkeypatch.setattr(checkpoint, "SHIPPED_CASE", case_checkpoint)  # the model file has arrived
    pad.mode = "case"
    assert pad.result["label"] == "g" and pad.case_predictor is not None


@pytest.fixture(scope="module")
def server(predictor):
    srv = webapp.serve(predictor, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def post(url, body, headers=None):
    request = urllib.request.Request(url + "/predict", data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_page_and_script_are_served(server):
    with urllib.request.urlopen(server + "/", timeout=10) as r:
        page = r.read().decode()
    assert "<canvas" not in page and 'id="pad"' in page and 'type="file"' in page
    with urllib.request.urlopen(server + "/pad.js", timeout=10) as r:
        assert "createPad" in r.read().decode() and r.headers["Content-Type"].startswith("text/javascript")
    with urllib.request.urlopen(server + "/health", timeout=10) as r:
        assert json.loads(r.read())["ok"] is True


def test_predict_endpoint(server):
    status, result = post(server, drawing_bytes("K", seed=3))
    assert status == 200 and result["label"] == "K" and len(result["top3"]) == 3


def test_predict_endpoint_errors_are_sentences(server):
    status, result = post(server, b"GIF89a-not-really", {"X-File-Name": "cat%20photo.gif"})
    assert status == 400 and result["error"].startswith("cat photo.gif is not an image")
    status, result = post(server, b"")
    assert status == 400 and "empty" in result["error"]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server + "/nothing", timeout=10)
    assert info.value.code == 404


def test_too_big_upload_is_refused(server, monkeypatch):
    monkeypatch.setattr(webapp, "MAX_UPLOAD", 10)
    # The handler reads the limit at request time.
    status, result = post(server, b"x" * 11)
    assert status == 413 and "too big" in result["error"]
