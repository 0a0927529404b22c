"""The web demo's server against clients that lie, stall, hang up, send bombs, or come from another site.

Each test talks to a server started in this process on 127.0.0.1 and a free port, mostly with raw
sockets, because a well-behaved client (urllib) cannot send what these tests send. Most use a stub
model (`stub_server`), so that they take milliseconds.
"""

import base64
import contextlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import checkpoint, crnn, webapp
from helpers.framing import LINE_HEIGHT
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


class StubPredictor:
    """Stands in for a model in tests of the server alone: webapp.answer is replaced, or it says K."""

    path = "stub.pt"

    def predict(self, source, name=None):
        raise AssertionError("not used: the stub server's answer is stubbed")


def stub_answer(predictor, image, name=None, stop=None):
    return {"label": "K", "confidence": 1.0, "top3": [["K", 1.0]], "unsure": False}


@pytest.fixture
def stub_server(monkeypatch):
    """A server whose model answers K at once, so that tests of the server take milliseconds."""
    monkeypatch.setattr(webapp, "answer", stub_answer)
    srv = start(StubPredictor())
    yield srv
    srv.shutdown()
    srv.server_close()


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
        return read_reply(sock)


def read_reply(sock):
    """(status, JSON body or None) of what the server sends until it closes; (None, None) if nothing."""
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


def request(port, method, path, body=b"", headers=None, version="1.0"):
    """One HTTP/1.0 request with the usual headers (Host: 127.0.0.1:port) unless `headers` replaces them."""
    lines = [f"{method} {path} HTTP/{version}"]
    fields = {"Host": f"127.0.0.1:{port}", **({"Content-Length": str(len(body))} if method == "POST" else {}),
              **(headers or {})}
    lines += [f"{k}: {v}" for k, v in fields.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def post_json(port, payload, headers=None, seconds=5.0):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    return exchange(port, request(port, "POST", "/predict", body, headers), seconds)


FIRST_USE_SECONDS = 60.0  # a first text request loads the reader and its LM: how fast is the benchmarks' business


# --- Sizes that lie (issue 9, item 6; issue 16, item 1) ---------------------------------------------------------


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
                      {"Content-Length": None, "Transfer-Encoding": "chunked", "Content-Type": "image/png"},
                      version="1.1")
    status, body = exchange(port, chunked)
    assert status == 411 and "Content-Length" in body["error"]
    missing = request(port, "POST", "/predict", headers={"Content-Length": None, "Content-Type": "image/png"})
    status, body = exchange(port, missing, close_write=True)
    assert status == 411 and "Content-Length" in body["error"]


def refused_while_sending(port, body, kind):
    """(status, error) that a client still sending `body` reads back, three times over (a reset fails it)."""
    answers = set()
    for _ in range(3):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body, method="POST",
                                     headers={"Content-Type": kind})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        answers.add((info.value.code, json.loads(info.value.read())["error"]))
    assert len(answers) == 1
    return answers.pop()


def test_a_refused_upload_still_gets_its_answer(server):
    """A 25 MB upload is refused (413) before its body is read; the client, still sending, must get that answer."""
    status, error = refused_while_sending(port_of(server), b"x" * 25_000_000, "image/png")
    assert status == 413 and "too big" in error


def test_every_refusal_before_the_body_is_read_still_gets_its_answer(stub_server):
    """A 5 MB form post is refused (415) before its body is read: the client, still sending, gets the JSON,
    not a reset connection (only 411 and 413 drained the body before)."""
    status, error = refused_while_sending(port_of(stub_server), b"x" * 5_000_000, "application/x-www-form-urlencoded")
    assert status == 415 and "application/json" in error


def test_a_body_just_over_the_cap_is_413_without_being_read(stub_server):
    port = port_of(stub_server)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # sends the headers only
        sock.sendall(request(port, "POST", "/predict", headers={"Content-Type": "application/json",
                                                                  "Content-Length": str(webapp.MAX_BODY + 1)}))
        status, body = read_reply(sock)
    assert status == 413 and "under 9 MB" in body["error"] and time.monotonic() - started < 2


def test_a_content_length_longer_than_the_body_is_408_on_time(stub_server, monkeypatch):
    """The old server waited 30 s, holding a worker; now the body has BODY_SECONDS and costs no thread."""
    monkeypatch.setattr(webapp, "BODY_SECONDS", 1.0)
    port = port_of(stub_server)
    started = time.monotonic()
    status, body = exchange(port, request(port, "POST", "/predict", b"x" * 10,
                                          {"Content-Length": "100", "Content-Type": "image/png"}))
    assert status == 408 and "10 of 100 bytes" in body["error"] and time.monotonic() - started < 3


def test_a_content_length_shorter_than_the_body_reads_no_further(stub_server):
    port = port_of(stub_server)
    payload = json.dumps({"image": drawing_url(), "mode": "36"}).encode()
    status, body = exchange(port, request(port, "POST", "/predict", payload,
                                          {"Content-Length": "20", "Content-Type": "application/json"}))
    assert status == 400 and "not the JSON the page sends" in body["error"]


def test_only_a_few_big_bodies_are_held_at_once(stub_server, monkeypatch):
    """Memory holds at most BIG_BODIES big uploads: one more is refused at once, small bodies still pass."""
    monkeypatch.setattr(webapp, "BIG_BODY", 100)
    monkeypatch.setattr(webapp, "BIG_BODIES", 1)
    port = port_of(stub_server)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(request(port, "POST", "/predict", b"x" * 10, {"Content-Length": "5000",
                                                                   "Content-Type": "image/png"}))  # then stalls
        time.sleep(0.3)
        status, body = exchange(port, request(port, "POST", "/predict", b"y" * 5000, {"Content-Type": "image/png"}))
        assert status == 503 and "big uploads" in body["error"]
        status, body = exchange(port, request(port, "POST", "/predict", b"z" * 50, {"Content-Type": "image/png"}))
        assert status == 200 and body["label"] == "K"
    time.sleep(0.3)  # the first upload is gone: the next big one gets its turn
    status, body = exchange(port, request(port, "POST", "/predict", b"y" * 5000, {"Content-Type": "image/png"}))
    assert status == 200


def test_headers_over_the_limit_are_refused_in_json(stub_server):
    port = port_of(stub_server)
    status, body = exchange(port, request(port, "GET", "/health", headers={"X-Padding": "a" * 70_000}))
    assert status == 431 and "16 KB" in body["error"]  # sent at once: h11 parses it, the Guard counts it
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:  # sent in pieces: h11 stops early
        sock.sendall(request(port, "GET", "/health")[:-2])
        with contextlib.suppress(OSError):  # the server may close before the last piece
            for _ in range(10):
                sock.sendall(b"X-Padding: " + b"a" * 7000 + b"\r\n")
        status, body = read_reply(sock)
    assert status == 400 and "16 KB" in body["error"]


def test_sockets_held_open_and_silent_do_not_lock_out_a_real_request(stub_server, monkeypatch):
    """Every slot full of silent sockets: the one silent longest is closed to make room, so the next
    request is answered, in JSON, and a silent socket is what went."""
    monkeypatch.setattr(webapp, "MAX_CONNECTIONS", 8)
    port = port_of(stub_server)
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(12)]
    try:
        time.sleep(0.2)
        for _ in range(3):
            status, body = exchange(port, request(port, "GET", "/health"))
            assert status == 200 and isinstance(body, dict)
        closed = 0
        for sock in silent:
            sock.settimeout(0.01)
            with contextlib.suppress(TimeoutError, socket.timeout):
                closed += sock.recv(1) == b""
        assert closed >= 4  # at least the 4 over the limit
    finally:
        for sock in silent:
            sock.close()


# --- Pixels: small files that decode to huge pictures (item 2) -----------------------------------------------------


def png(size, mode="1"):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(5000, 4000), (20000, 20000)])
@pytest.mark.parametrize("kind", ["PNG", "TIFF"])
def test_pictures_over_16_megapixels_are_refused_before_decoding(stub_server, size, kind, monkeypatch):
    """Whatever the format: a TIFF (or BMP, WebP) sent as image/png was once decoded up to 60 megapixels."""
    monkeypatch.setattr(webapp, "answer", lambda *a, **k: pytest.fail("the model must not see it"))
    port = port_of(stub_server)
    if kind == "PNG":
        bomb = png(size)
    else:
        buffer = io.BytesIO()
        Image.new("1", size).save(buffer, "TIFF", compression="tiff_deflate")
        bomb = buffer.getvalue()
    assert len(bomb) < 200_000  # small on the wire
    started = time.monotonic()
    status, body = post_json(port, {"image": "data:image/png;base64," + base64.b64encode(bomb).decode(),
                                    "mode": "36", "name": "bomb.png"})
    assert status == 413 and body["error"].startswith("bomb.png") and "16 megapixels" in body["error"]
    assert time.monotonic() - started < 2


def test_a_phone_photo_is_read(server):
    photo = io.BytesIO()
    Image.new("RGB", (4032, 3024), "white").save(photo, "JPEG")
    status, body = exchange(port_of(server), request(port_of(server), "POST", "/predict", photo.getvalue(),
                                                     {"Content-Type": "image/jpeg"}))
    assert status == 400 and "no character" in body["error"]  # read, and found blank


# --- The pool: two threads, a bounded queue, one lane for big pictures (items 1, 2) ---------------------------------


class Gate:
    """A stub for webapp.answer that holds every image whose name starts with "hold" until released."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.stops, self.seen = {}, []

    def __call__(self, predictor, image, name=None, stop=None):
        self.stops[name], _ = stop, self.seen.append(name)
        if name.startswith("hold"):
            self.started.release()
            self.release.wait(10)
        return {"label": "K", "name": name}


def post_in_background(port, payload, results):
    thread = threading.Thread(target=lambda: results.append(post_json(port, payload)), daemon=True)
    thread.start()
    return thread


def test_a_full_pool_answers_503_at_once(stub_server, monkeypatch):
    gate = Gate()
    monkeypatch.setattr(webapp, "answer", gate)
    monkeypatch.setattr(webapp, "WAITING", 1)
    port, results = port_of(stub_server), []
    threads = [post_in_background(port, {"image": drawing_url(), "name": f"hold {i}"}, results) for i in range(2)]
    assert gate.started.acquire(timeout=5) and gate.started.acquire(timeout=5)  # both threads are busy
    threads.append(post_in_background(port, {"image": drawing_url(), "name": "waits"}, results))  # the one in line
    time.sleep(0.3)
    started = time.monotonic()
    status, body = post_json(port, {"image": drawing_url(), "mode": "36"})
    assert status == 503 and "busy" in body["error"] and body["error"].count(". ") == 0
    assert time.monotonic() - started < 1
    status, body = exchange(port, request(port, "GET", "/health"))  # the event loop is free
    assert status == 200
    gate.release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(status for status, _ in results) == [200, 200, 200]


def test_big_pictures_take_one_thread_and_drawings_keep_the_other(stub_server, monkeypatch):
    gate = Gate()
    monkeypatch.setattr(webapp, "answer", gate)
    monkeypatch.setattr(webapp, "BIG_PICTURE", 100_000)
    monkeypatch.setattr(webapp, "BIG_WAITING", 0)
    port, results = port_of(stub_server), []
    big = "data:image/png;base64," + base64.b64encode(png((400, 400))).decode()
    thread = post_in_background(port, {"image": big, "name": "hold big"}, results)
    assert gate.started.acquire(timeout=5)
    status, body = post_json(port, {"image": big, "name": "another big one"})
    assert status == 503 and "big pictures" in body["error"]
    status, body = post_json(port, {"image": drawing_url(), "name": "a drawing"})
    assert status == 200 and body["label"] == "K"
    gate.release.set()
    thread.join(10)
    assert results[0][0] == 200


def test_a_client_that_hangs_up_stops_its_work_and_its_waiting_request_is_dropped(stub_server, monkeypatch):
    """A page of 80 lines holds a core for seconds: before this, it was read to the end for a client
    that had gone, and requests sent and abandoned by the dozen were all read in turn."""
    gate = Gate()
    monkeypatch.setattr(webapp, "answer", gate)
    port = port_of(stub_server)
    held = []
    for name in ("hold 1", "hold 2", "queued"):  # two fill the threads, the third waits for one
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        body = json.dumps({"image": drawing_url(), "name": name}).encode()
        sock.sendall(request(port, "POST", "/predict", body, {"Content-Type": "application/json"}))
        held.append(sock)
        if name.startswith("hold"):
            assert gate.started.acquire(timeout=5)
    time.sleep(0.3)
    held[0].close()
    held[2].close()
    deadline = time.monotonic() + 5
    while not gate.stops["hold 1"].is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gate.stops["hold 1"].is_set() and not gate.stops["hold 2"].is_set()
    gate.release.set()
    assert read_reply(held[1])[0] == 200
    held[1].close()
    assert post_json(port, {"image": drawing_url(), "name": "after"})[0] == 200
    assert "queued" not in gate.seen  # dropped: its client had gone before a thread was free


def test_the_big_lane_gives_freed_memory_back_even_when_the_reading_fails(monkeypatch):
    """On this machine, a stream of 16 MP pictures left the server 60 MB bigger without it (web_load)."""
    webapp._give_memory_back()  # the real one: glibc's malloc_trim, or nothing where there is none
    calls = []
    monkeypatch.setattr(webapp, "_give_memory_back", lambda: calls.append("trim"))
    assert webapp._read_big(lambda x: x + 1, 1) == 2 and calls == ["trim"]
    with pytest.raises(ValueError):
        webapp._read_big(int, "not a number")
    assert calls == ["trim", "trim"]


def test_big_pictures_in_the_server_give_memory_back(stub_server, monkeypatch):
    calls = []
    monkeypatch.setattr(webapp, "_give_memory_back", lambda: calls.append("trim"))
    monkeypatch.setattr(webapp, "BIG_PICTURE", 100_000)
    port = port_of(stub_server)
    assert post_json(port, {"image": drawing_url(), "name": "small"})[0] == 200 and calls == []
    big = "data:image/png;base64," + base64.b64encode(png((400, 400))).decode()
    assert post_json(port, {"image": big, "name": "big"})[0] == 200 and calls == ["trim"]


def test_a_path_with_a_trailing_slash_is_a_json_404_not_an_empty_redirect(stub_server):
    port = port_of(stub_server)
    body = json.dumps({"image": drawing_url()}).encode()
    status, reply = exchange(port, request(port, "POST", "/predict/", body, {"Content-Type": "application/json"}))
    assert status == 404 and "open / instead" in reply["error"]


# --- Any failure while handling one image (issue 9, item 7) -----------------------------------------------------


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
    raw = request(port_of(server), "POST", "/predict", base64.b64decode(drawing_url().split(",")[1]),
                  {"Content-Type": "image/png"})
    for _ in range(10):  # send a request, then reset the connection before the answer comes
        sock = socket.create_connection(("127.0.0.1", port_of(server)))
        sock.sendall(raw)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    time.sleep(1.0)
    assert exchange(port_of(server), request(port_of(server), "GET", "/health"))[0] == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err


# --- Slow clients (issue 16, item 1) ------------------------------------------------------------------------------


def trickle(sock, data, stop, every=0.2):
    """Send `data` one byte every `every` seconds until it is sent, the server closes, or `stop` is set."""
    for byte in data:
        if stop.is_set():
            return
        try:
            sock.send(bytes([byte]))
        except OSError:
            return
        time.sleep(every)


def test_slow_header_clients_hold_no_thread_and_are_closed_on_time(stub_server, monkeypatch):
    """Sixteen clients trickling their headers a byte at a time held the old server's 16 workers for as long as
    they liked; now /health answers at once, no thread is taken, and each is closed after HEADER_SECONDS."""
    monkeypatch.setattr(webapp, "HEADER_SECONDS", 1.5)
    port, stop = port_of(stub_server), threading.Event()
    time.sleep(0.2)
    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=6) for _ in range(16)]
    head = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n" + "X-Slow: " + "a" * 200
    senders = [threading.Thread(target=trickle, args=(s, head.encode(), stop), daemon=True) for s in socks]
    silent = [socket.create_connection(("127.0.0.1", port), timeout=6) for _ in range(8)]
    for sender in senders:
        sender.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        status, body = exchange(port, request(port, "GET", "/health"))
        assert status == 200 and body["ok"] and time.monotonic() - started < 1
        assert threading.active_count() - before <= 16 + 2, "the server must not take a thread per slow client"
        started = time.monotonic()
        for sock in socks + silent:  # closed by the server, while still trickling
            assert sock.recv(100) == b""
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        for sock in socks + silent:
            sock.close()


def test_slow_bodies_do_not_delay_drawings(stub_server, monkeypatch):
    monkeypatch.setattr(webapp, "BODY_SECONDS", 2.0)
    port, stop = port_of(stub_server), threading.Event()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=6) for _ in range(16)]
    for sock in socks:
        sock.sendall(request(port, "POST", "/predict", headers={"Content-Type": "application/json",
                                                                  "Content-Length": "1000"}))
    senders = [threading.Thread(target=trickle, args=(s, b"{" * 1000, stop), daemon=True) for s in socks]
    for sender in senders:
        sender.start()
    try:
        time.sleep(0.3)
        started = time.monotonic()
        status, body = post_json(port, {"image": drawing_url(), "mode": "36"})
        assert status == 200 and time.monotonic() - started < 1
        for sock in socks:
            status, body = read_reply(sock)
            assert status == 408 and "longer than 2 s" in body["error"]
    finally:
        stop.set()
        for sock in socks:
            sock.close()


# --- Host names (issue 9, item 9: DNS rebinding) ------------------------------------------------------------------


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


# --- Other sites' pages (issue 16, item 3) ------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"}, {"Origin": "null"}, {"Origin": "http://localhost:1"},
    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}])
def test_requests_from_other_sites_are_refused(stub_server, headers, monkeypatch):
    monkeypatch.setattr(webapp, "answer", lambda *a, **k: pytest.fail("the model must not see it"))
    status, body = post_json(port_of(stub_server), {"image": drawing_url(), "mode": "36"}, headers)
    assert status == 403 and "only answers its own page" in body["error"]


def test_the_page_itself_is_answered_and_links_to_it_still_open(stub_server):
    port = port_of(stub_server)
    ours = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert post_json(port, {"image": drawing_url(), "mode": "36"}, ours)[0] == 200
    link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}  # a link from another page
    assert exchange(port, request(port, "GET", "/", headers=link))[0] == 200
    typed = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}  # typed in the address bar
    assert exchange(port, request(port, "GET", "/", headers=typed))[0] == 200
    embedded = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}  # <script src> on another site
    assert exchange(port, request(port, "GET", "/health", headers=embedded))[0] == 403


@pytest.mark.parametrize("kind", ["text/plain", "multipart/form-data; boundary=x",
                                  "application/x-www-form-urlencoded", "image/gif", None])
def test_only_the_content_types_the_page_sends_are_taken(stub_server, kind, monkeypatch):
    """text/plain, forms and a typeless Blob are what another site may send without asking the browser first."""
    monkeypatch.setattr(webapp, "answer", lambda *a, **k: pytest.fail("the model must not see it"))
    port = port_of(stub_server)
    body = json.dumps({"image": drawing_url(), "mode": "36"}).encode()
    status, answer = exchange(port, request(port, "POST", "/predict", body, {"Content-Type": kind}))
    assert status == 415 and "application/json" in answer["error"]


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


def test_a_model_still_loading_does_not_hold_up_the_others(monkeypatch):
    """The line reader and its LM take seconds to load; drawings for the model already loaded used
    to wait for them behind one lock (the load test's slowest drawing: about 2.5 s)."""
    loading, release = threading.Event(), threading.Event()

    def slow_load(mode, path):
        loading.set()
        release.wait(10)
        return f"{mode} model"

    monkeypatch.setattr(webapp, "load", slow_load)
    models = webapp.Models(loaded={"36": "the 36-class model"})
    thread = threading.Thread(target=models.get, args=("text",), daemon=True)
    thread.start()
    assert loading.wait(5)
    started = time.monotonic()
    assert models.get("36") == "the 36-class model" and time.monotonic() - started < 1
    release.set()
    thread.join(5)
    assert models.get("text") == "text model"


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
        status, body = post_json(port, {"image": line_url("K7"), "mode": "text"}, seconds=FIRST_USE_SECONDS)
        assert status == 200 and set(body) == {"text", "confidence", "unsure", "lines", "preview"}
        assert body["text"] == "q" and isinstance(body["unsure"], bool) and 0 <= body["confidence"] <= 1
        assert body["preview"].startswith("data:image/png;base64,")
        seen = Image.open(io.BytesIO(base64.b64decode(body["preview"].split(",")[1])))
        assert seen.height == LINE_HEIGHT and seen.width > seen.height  # the normalised line, not a 28x28 character
        assert exchange(port, request(port, "GET", "/health"))[1]["models"] == {"36": "default.pt", "text": "lines.pt"}
        kept = srv.models.get("text")
        status, body = post_json(port, {"image": line_url("AB"), "mode": "text", "name": "my word.png"})
        assert status == 200 and body["text"] == "q" and body["name"] == "my word.png"
        assert post_json(port, {"image": drawing_url("K"), "mode": "36"})[1]["label"] == "K"
        raw = base64.b64decode(line_url("K7").split(",")[1])
        status, body = exchange(port, request(port, "POST", "/predict?mode=text", raw,
                                                  {"Content-Type": "image/png"}))
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
            blank.getvalue()).decode(), "mode": "text"}, seconds=FIRST_USE_SECONDS)
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


def test_json_nested_thousands_deep_is_a_400_not_a_crash(server):
    body = ("[" * 3000 + "]" * 3000).encode()
    port = port_of(server)
    status, answer = exchange(port, request(port, "POST", "/predict", body, {"Content-Type": "application/json"}), 5.0)
    assert status == 400 and "not the JSON the page sends" in answer["error"]


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


def test_the_server_runs_with_few_malloc_arenas_and_few_threads():
    """MALLOC_ARENA_MAX=2 (set by app.py before torch loads) kept 40 image bombs at 1 GB instead of 5.3 GB."""
    proc = subprocess.Popen([sys.executable, "app.py", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={k: v for k, v in os.environ.items()
                                                                    if k != "MALLOC_ARENA_MAX"})
    try:
        first, line = proc.stdout.readline(), proc.stdout.readline()
        assert first.startswith("Loading the line reader") and line.startswith("Open http://127.0.0.1:"), first + line
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environ
        port = int(line.split(":")[2].split("/")[0])
        assert exchange(port, request(port, "GET", "/health"))[0] == 200
        threads = int(next(x for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                           if x.startswith("Threads:")).split()[1])
        assert threads <= 8
    finally:
        proc.terminate()
        proc.wait(timeout=10)
