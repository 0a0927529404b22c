"""The web demo's server against clients that lie, stall, hang up or come from another host name.

Each test talks to a server started in this process on 127.0.0.1 and a free port, mostly with raw
sockets, because a well-behaved client (urllib) cannot send what these tests send.
"""

import base64
import io
import json
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from helpers import checkpoint, crnn, webapp
from helpers.labels import CASE_CLASS_NAMES
from helpers.lines import encode
from helpers.model import build_model
from helpers.predict import Predictor
from helpers.strokes import render, wobbly_strokes
from tests.conftest import ROOT


def always_g_checkpoint(path):
    """A 62-class checkpoint whose model says "g" whatever it sees, so a test can tell which model answered."""
    import torch

    model = build_model("compact", num_classes=len(CASE_CLASS_NAMES), seed=0)
    last = model[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        last.bias[CASE_CLASS_NAMES.index("g")] = 10.0
    return checkpoint.save_checkpoint(path, model, "compact", class_names=CASE_CLASS_NAMES)


def always_q_reader(path, logit=10.0):
    """A tiny line reader (untrained CRNN) whose head says "q" in every column, so that it reads
    any line as "q": a test can tell that the line reader answered. A small `logit` makes it unsure."""
    import torch

    model = crnn.CRNN(channels=(4, 4, 4, 4), hidden=8, layers=1)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.bias[encode("q")[0]] = logit
    return crnn.save_reader(path, model)


@pytest.fixture(scope="module")
def case_checkpoint(tmp_path_factory):
    return always_g_checkpoint(tmp_path_factory.mktemp("case") / "case.pt")


@pytest.fixture(scope="module")
def lines_checkpoint(tmp_path_factory):
    return always_q_reader(tmp_path_factory.mktemp("lines") / "lines.pt")


@pytest.fixture
def no_lines_model(monkeypatch, tmp_path):
    """As on a machine where neither runs/lines.pt nor checkpoints/lines.pt exists."""
    monkeypatch.setattr(crnn, "TRAINED", tmp_path / "runs" / "lines.pt")
    monkeypatch.setattr(crnn, "SHIPPED", tmp_path / "checkpoints" / "lines.pt")


@pytest.fixture
def no_case_model(monkeypatch, tmp_path):
    """As on a machine where neither runs/case.pt nor checkpoints/case.pt exists."""
    monkeypatch.setattr(checkpoint, "TRAINED_CASE", tmp_path / "runs" / "case.pt")
    monkeypatch.setattr(checkpoint, "SHIPPED_CASE", tmp_path / "checkpoints" / "case.pt")


@pytest.fixture(scope="module")
def predictor():
    return Predictor(checkpoint.SHIPPED)


def port_of(server):
    return server.server_address[1]


def start(predictor, **kwargs):
    server = webapp.serve(predictor, port=0, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def server(predictor):
    srv = start(predictor)
    yield srv
    srv.shutdown()
    srv.server_close()


def drawing_url(char="K", seed=3):
    buffer = io.BytesIO()
    render(wobbly_strokes(char, np.random.default_rng(seed)), canvas=280, width=18).convert("RGBA").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def line_url(text="K7", width=1120, height=280):
    """A PNG data URL of `text` written side by side on a white canvas as wide as the page's text canvas."""
    canvas = Image.new("L", (width, height), 255)
    for i, char in enumerate(text):
        letter = render(wobbly_strokes(char, np.random.default_rng(i)), canvas=height, width=18)
        canvas.paste(letter, (40 + i * height * 3 // 4, 0), Image.eval(letter, lambda v: 255 - v))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def exchange(port, raw, seconds=5.0, close_write=False):
    """Send raw bytes and read the whole reply: (status, JSON body or None); status None if no reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        sock.sendall(raw)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    reply = b"".join(chunks)
    if not reply:
        return None, None
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def request(port, method, path, body=b"", headers=None):
    """One HTTP/1.0 request with the usual headers (Host: 127.0.0.1:port) unless `headers` replaces them."""
    lines = [f"{method} {path} HTTP/1.0"]
    fields = {"Host": f"127.0.0.1:{port}", **({"Content-Length": str(len(body))} if method == "POST" else {}),
              **(headers or {})}
    lines += [f"{k}: {v}" for k, v in fields.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def post_json(port, payload, headers=None):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    return exchange(port, request(port, "POST", "/predict", body, headers))


# --- Sizes that lie (issue 9, item 6) ---------------------------------------------------------------------------


def test_negative_content_length_is_refused_at_once(server):
    """Content-Length: -1 used to make the server read until the client closed (no size cap at all)."""
    port = port_of(server)
    status, body = exchange(port, request(port, "POST", "/predict", b"x" * 1000, {"Content-Length": "-1"}))
    assert status == 400 and "Content-Length" in body["error"]


@pytest.mark.parametrize("value", ["abc", "12abc", "+5", "1e3", "5, 6"])
def test_content_length_that_is_not_a_number_gets_a_sentence(server, value):
    port = port_of(server)
    status, body = exchange(port, request(port, "POST", "/predict", b"12345", {"Content-Length": value}))
    assert status == 400 and body["error"].endswith(".") and "not a size in bytes" in body["error"]


def test_chunked_or_missing_length_is_refused_with_411(server):
    port = port_of(server)
    chunked = request(port, "POST", "/predict", b"5\r\nhello\r\n0\r\n\r\n",
                      {"Content-Length": None, "Transfer-Encoding": "chunked"})
    status, body = exchange(port, chunked)
    assert status == 411 and "Content-Length" in body["error"]
    status, body = exchange(port, request(port, "POST", "/predict", headers={"Content-Length": None}), close_write=True)
    assert status == 411 and "Content-Length" in body["error"]


def test_a_refused_upload_still_gets_its_answer(server):
    """A 25 MB upload is refused (413) before its body is read; the client, still sending, must get that answer."""
    import urllib.error
    import urllib.request

    body = b"x" * 25_000_000
    for _ in range(3):
        req = urllib.request.Request(f"http://127.0.0.1:{port_of(server)}/predict", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        assert info.value.code == 413 and "too big" in json.loads(info.value.read())["error"]


def test_a_body_cut_short_is_answered(server):
    port = port_of(server)
    cut_short = request(port, "POST", "/predict", b"x" * 10, {"Content-Length": "100"})
    status, body = exchange(port, cut_short, close_write=True)
    assert status == 400 and "stopped after 10 of 100 bytes" in body["error"]


def test_big_bodies_are_read_one_at_a_time(predictor, monkeypatch):
    """Memory holds at most one big upload: a second one waits for the first, then gives up with 503."""
    monkeypatch.setattr(webapp, "SMALL_BODY", 100, raising=False)
    monkeypatch.setattr(webapp, "BODY_SECONDS", 1.0, raising=False)
    srv = start(predictor)
    port = port_of(srv)
    try:
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow.sendall(request(port, "POST", "/predict", b"x" * 10, {"Content-Length": "5000"}))  # then stalls
        time.sleep(0.3)
        status, body = exchange(port, request(port, "POST", "/predict", b"y" * 5000))
        assert status == 503 and "big upload" in body["error"]
        status, body = exchange(port, request(port, "POST", "/predict", b"z" * 50))  # small bodies pass
        assert status == 400 and "not an image" in body["error"]
        slow.close()  # the first upload ends: the next big one gets its turn
        time.sleep(0.3)
        status, body = exchange(port, request(port, "POST", "/predict", b"y" * 5000))
        assert status == 400 and "not an image" in body["error"]
    finally:
        srv.shutdown()
        srv.server_close()


# --- Any failure while handling one image (item 7) ---------------------------------------------------------------


def test_an_unexpected_error_is_a_json_500_and_the_server_keeps_running(server, monkeypatch, capfd):
    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(webapp, "answer", broken)
    status, body = post_json(port_of(server), {"image": drawing_url(), "mode": "36"})
    assert status == 500 and body["error"].count(". ") == 0 and "RuntimeError" in body["error"]
    monkeypatch.undo()
    status, body = post_json(port_of(server), {"image": drawing_url(), "mode": "36"})
    assert status == 200 and body["label"] == "K"
    assert "Traceback" not in capfd.readouterr().err


def test_clients_that_hang_up_print_no_traceback(server, capfd):
    raw = request(port_of(server), "POST", "/predict", base64.b64decode(drawing_url().split(",")[1]))  # a raw PNG
    for _ in range(10):  # send a request, then reset the connection before the answer comes
        sock = socket.create_connection(("127.0.0.1", port_of(server)))
        sock.sendall(raw)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    time.sleep(1.0)
    assert exchange(port_of(server), request(port_of(server), "GET", "/health"))[0] == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err


# --- Stalled connections (item 8) ---------------------------------------------------------------------------------


def test_stalled_connections_take_no_thread_and_are_closed(predictor, monkeypatch):
    monkeypatch.setattr(webapp, "SOCKET_TIMEOUT", 1.5, raising=False)
    srv = start(predictor)
    try:
        time.sleep(0.2)
        before = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", port_of(srv)), timeout=6) for _ in range(10)]
        halfway = [socket.create_connection(("127.0.0.1", port_of(srv)), timeout=6) for _ in range(10)]
        for sock in halfway:  # slowloris: headers that never end
            sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port_of(srv)}\r\n".encode())
        time.sleep(0.5)
        started = time.monotonic()
        status, body = exchange(port_of(srv), request(port_of(srv), "GET", "/health"))
        assert status == 200 and body["ok"] and time.monotonic() - started < 2
        assert threading.active_count() - before <= 2, "stalled connections must not hold threads"
        for sock in idle + halfway:  # the server closes them after SOCKET_TIMEOUT
            assert sock.recv(100) == b""
            sock.close()
    finally:
        srv.shutdown()
        srv.server_close()


# --- Host names (item 9: DNS rebinding) ---------------------------------------------------------------------------


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1:{port}", 200), ("localhost:{port}", 200), ("LOCALHOST:{port}", 200), ("[::1]:{port}", 200),
    ("attacker.example:{port}", 421), ("127.0.0.1.attacker.example:{port}", 421), ("localhost:1", 421),
    ("192.168.1.20:{port}", 421), (None, 421)])
def test_only_our_own_host_names_are_answered(server, host, expected):
    port = port_of(server)
    status, body = exchange(port, request(port, "GET", "/health", headers={"Host": host and host.format(port=port)}))
    assert status == expected
    if expected != 200:
        assert f"http://127.0.0.1:{port}/" in body["error"]
    status, _ = post_json(port, {"image": drawing_url(), "mode": "36"}, {"Host": host and host.format(port=port)})
    assert status == expected


def test_listening_on_all_addresses_accepts_ip_addresses_but_not_names(predictor):
    srv = start(predictor, host="0.0.0.0")
    try:
        port = port_of(srv)
        assert exchange(port, request(port, "GET", "/health", headers={"Host": f"192.168.1.20:{port}"}))[0] == 200
        assert exchange(port, request(port, "GET", "/health", headers={"Host": f"evil.example:{port}"}))[0] == 421
    finally:
        srv.shutdown()
        srv.server_close()


def test_health_names_the_model_file_without_its_folder(server):
    status, body = exchange(port_of(server), request(port_of(server), "GET", "/health"))
    assert status == 200 and body["models"] == {"36": "default.pt"}
    assert str(ROOT) not in json.dumps(body)


# --- The page's JSON (the switch between models) ------------------------------------------------------------------


def test_the_page_json_request_names_the_file(server):
    status, body = post_json(port_of(server), {"image": drawing_url("K"), "mode": "36", "name": "my k.png"})
    assert status == 200 and body["label"] == "K" and body["name"] == "my k.png"
    status, body = post_json(port_of(server), {"image": drawing_url("7", 1), "mode": "36"})
    assert status == 200 and body["label"] == "7" and "name" not in body
    status, body = post_json(port_of(server), {"image": "data:", "mode": "36", "name": "empty.png"})
    assert status == 400 and body["error"].startswith("empty.png is empty")


def test_the_case_sensitive_model_is_loaded_on_first_use_and_kept(predictor, case_checkpoint):
    srv = start(predictor, case_checkpoint=case_checkpoint)
    port = port_of(srv)
    try:
        assert exchange(port, request(port, "GET", "/health"))[1]["models"] == {"36": "default.pt"}
        status, body = post_json(port, {"image": drawing_url("K"), "mode": "case", "name": "k.png"})
        assert status == 200 and body["label"] == "g" and len(body["top3"]) == 3 and body["name"] == "k.png"
        assert exchange(port, request(port, "GET", "/health"))[1]["models"] == {"36": "default.pt", "case": "case.pt"}
        kept = srv.models.get("case")
        assert post_json(port, {"image": drawing_url("K"), "mode": "36"})[1]["label"] == "K"
        assert post_json(port, {"image": drawing_url("K"), "mode": "case"})[1]["label"] == "g"
        assert srv.models.get("case") is kept
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_missing_case_model_is_one_sentence(server, no_case_model):
    status, body = post_json(port_of(server), {"image": drawing_url("K"), "mode": "case"})
    assert status == 503 and "case-sensitive model is missing" in body["error"]
    status, body = post_json(port_of(server), {"image": drawing_url("K"), "mode": "36"})
    assert status == 200 and body["label"] == "K"


def test_the_text_mode_reads_a_line_with_the_line_reader(predictor, lines_checkpoint):
    """mode "text" goes to the line reader, loaded on first use and kept; its answer is the text and the line it saw."""
    srv = start(predictor, lines_checkpoint=lines_checkpoint)
    port = port_of(srv)
    try:
        assert exchange(port, request(port, "GET", "/health"))[1]["models"] == {"36": "default.pt"}
        status, body = post_json(port, {"image": line_url("K7"), "mode": "text"})
        assert status == 200 and set(body) == {"text", "confidence", "unsure", "preview"}
        assert body["text"] == "q" and isinstance(body["unsure"], bool) and 0 <= body["confidence"] <= 1
        assert body["preview"].startswith("data:image/png;base64,")
        seen = Image.open(io.BytesIO(base64.b64decode(body["preview"].split(",")[1])))
        assert seen.height == 32 and seen.width > seen.height  # the normalised line, not a 28x28 character
        assert exchange(port, request(port, "GET", "/health"))[1]["models"] == {"36": "default.pt", "text": "lines.pt"}
        kept = srv.models.get("text")
        status, body = post_json(port, {"image": line_url("AB"), "mode": "text", "name": "my word.png"})
        assert status == 200 and body["text"] == "q" and body["name"] == "my word.png"
        assert post_json(port, {"image": drawing_url("K"), "mode": "36"})[1]["label"] == "K"
        raw = base64.b64decode(line_url("K7").split(",")[1])
        status, body = exchange(port, request(port, "POST", "/predict?mode=text", raw))
        assert status == 200 and body["text"] == "q"
        assert srv.models.get("text") is kept
    finally:
        srv.shutdown()
        srv.server_close()


def test_the_text_mode_explains_a_blank_canvas(predictor, lines_checkpoint):
    srv = start(predictor, lines_checkpoint=lines_checkpoint)
    blank = io.BytesIO()
    Image.new("RGBA", (1120, 280), "white").save(blank, "PNG")
    try:
        status, body = post_json(port_of(srv), {"image": "data:image/png;base64," + base64.b64encode(
            blank.getvalue()).decode(), "mode": "text"})
        assert status == 400 and set(body) == {"error"}
        assert body["error"].startswith("The drawing shows no writing") and body["error"].count(". ") == 0
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_missing_line_reader_is_one_sentence(server, no_lines_model):
    status, body = post_json(port_of(server), {"image": line_url(), "mode": "text"})
    assert status == 503 and "line-reading model is missing" in body["error"]
    assert post_json(port_of(server), {"image": drawing_url("K"), "mode": "36"})[1]["label"] == "K"


@pytest.mark.parametrize("payload, words", [
    ({"image": "data:image/png;base64,AAAA", "mode": "62"}, "Unknown mode"),
    ({"mode": "36"}, "not the JSON the page sends"),
    ([1, 2], "not the JSON the page sends"),
    ({"image": "data:image/png;base64,!!!", "mode": "36"}, "damaged"),
])
def test_malformed_page_requests_get_a_sentence(server, payload, words):
    status, body = post_json(port_of(server), payload)
    assert status == 400 and words in body["error"]


# --- The command line (item 9) -----------------------------------------------------------------------------------


def run_app(*args):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_help_shows_the_defaults():
    out = run_app("--help").stdout
    assert "(default: 8000)" in out and "(default: 127.0.0.1)" in out and "--case-checkpoint" in out
    assert "--lines-checkpoint" in out and "checkpoints/lines.pt" in out


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_one_sentence(port):
    done = run_app("--port", port)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "--port" in done.stderr


def test_a_port_in_use_is_one_sentence():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = run_app("--port", str(busy.getsockname()[1]))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "already in use" in done.stderr
