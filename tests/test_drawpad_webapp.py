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

from helpers import checkpoint, crnn, webapp
from helpers.drawpad import DrawPad
from helpers.predict import Predictor, preview_data_url
from helpers.strokes import render, wobbly_strokes
from tests.test_webapp_server import always_g_checkpoint, always_q_reader, line_url


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
def lines_checkpoint(tmp_path_factory):
    return always_q_reader(tmp_path_factory.mktemp("lines") / "lines.pt")


def test_pad_reads_a_line_in_text_mode(predictor, lines_checkpoint):
    pad = DrawPad(predictor, text_reader=Predictor(lines_checkpoint, text=True))
    pad.image = data_url(drawing_bytes("7"))
    assert pad.result["label"] == "7"
    pad.mode = "text"  # pad.js makes the canvas wide and blank: the square drawing is gone
    assert pad.image == "" and pad.result == {}
    pad.image = line_url("K7")
    assert set(pad.result) == {"text", "confidence", "unsure", "lines", "preview"} and pad.result["text"] == "q"
    assert pad.result["preview"].startswith("data:image/png;base64,")
    pad.image = line_url("AB")  # every stroke sends the canvas again: the text follows the writing
    assert pad.result["text"] == "q"
    pad.image = ""
    assert pad.result == {}
    pad.image = line_url("K7")
    pad.mode = "36"  # back to the square canvas: blank again
    assert pad.image == "" and pad.result == {}


def test_pad_explains_a_blank_line(predictor, lines_checkpoint):
    pad = DrawPad(predictor, text_reader=Predictor(lines_checkpoint, text=True), mode="text")
    blank = io.BytesIO()
    Image.new("RGBA", (1120, 280), "white").save(blank, "PNG")
    pad.image = data_url(blank.getvalue())
    assert pad.result["error"].startswith("The drawing shows no writing")


def test_pad_takes_a_text_reader_trained_in_the_notebook(predictor, lines_checkpoint):
    """The lines chapter wraps its own model: `DrawPad(..., text_reader=TextReader.from_model(model))`."""
    reader = crnn.TextReader.from_model(crnn.load_reader(lines_checkpoint)[0])
    pad = DrawPad(predictor, text_reader=reader, mode="text", image=line_url("K7"))
    assert pad.result["text"] == "q"


def test_pad_loads_the_line_reader_on_first_switch(predictor, lines_checkpoint, monkeypatch, tmp_path):
    monkeypatch.setattr(crnn, "TRAINED", tmp_path / "runs" / "lines.pt")
    monkeypatch.setattr(crnn, "SHIPPED", tmp_path / "checkpoints" / "lines.pt")
    pad = DrawPad(predictor)
    assert pad.text_reader is None
    pad.mode = "text"
    pad.image = line_url("K7")
    assert "line-reading model is missing" in pad.result["error"]
    monkeypatch.setattr(crnn, "SHIPPED", lines_checkpoint)  # the model file has arrived
    pad.image = line_url("AB")
    assert pad.result["text"] == "q" and pad.text_reader is not None


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
        script = r.read().decode()
        assert "createPad" in script and r.headers["Content-Type"].startswith("text/javascript")
    for mode, text in webapp.MODES.items():  # the page's switch offers what the server reads
        assert f'["{mode}", "{text}"]' in script
    with urllib.request.urlopen(server + "/health", timeout=10) as r:
        assert json.loads(r.read())["ok"] is True


def test_predict_endpoint(server):
    status, result = post(server, drawing_bytes("K", seed=3), {"Content-Type": "image/png"})
    assert status == 200 and result["label"] == "K" and len(result["top3"]) == 3


def test_predict_endpoint_errors_are_sentences(server):
    status, result = post(server, b"GIF89a-not-really", {"X-File-Name": "cat%20photo.gif", "Content-Type": "image/png"})
    assert status == 400 and result["error"].startswith("cat photo.gif is not an image")
    status, result = post(server, b"", {"Content-Type": "image/png"})
    assert status == 400 and "empty" in result["error"]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server + "/nothing", timeout=10)
    assert info.value.code == 404


def test_too_big_upload_is_refused(server, monkeypatch):
    monkeypatch.setattr(webapp, "MAX_BODY", 10)  # the server reads the limit at request time
    status, result = post(server, b"x" * 11, {"Content-Type": "image/png"})
    assert status == 413 and "too big" in result["error"]


def test_a_form_or_text_post_is_refused(server):
    """What a page on another site may send without asking (urllib's default type is a form's)."""
    assert post(server, drawing_bytes("K", seed=3))[0] == 415
    assert post(server, drawing_bytes("K", seed=3), {"Content-Type": "text/plain"})[0] == 415


def test_the_page_is_answered_and_another_site_is_not(server):
    same = {"Content-Type": "application/json", "Origin": server, "Sec-Fetch-Site": "same-origin"}
    body = json.dumps({"image": data_url(drawing_bytes("K", seed=3)), "mode": "36"}).encode()
    assert post(server, body, same)[1]["label"] == "K"
    status, result = post(server, body, same | {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert status == 403 and "only answers its own page" in result["error"]


def test_a_file_name_with_a_lone_surrogate_is_kept_writable():
    """JSON may carry "\\ud800", which UTF-8 cannot write: the name is mended, not a 500 later."""
    import json

    body = json.dumps({"image": "data:,", "mode": "text", "name": "a\ud800b.png"}).encode()
    _, _, name = webapp.parse_request(body, True, "", None)
    assert json.dumps(name, ensure_ascii=False).encode("utf-8") and name.startswith("a") and name.endswith("b.png")
    _, _, raw_name = webapp.parse_request(b"", False, "mode=text", "%ED%A0%80.png")
    raw_name.encode("utf-8")
