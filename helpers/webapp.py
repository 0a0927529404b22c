"""The web demo: a local page to draw or upload a character (see the model's top-3) or a line of text.

    python app.py [--host 127.0.0.1] [--port 8000] [--checkpoint PATH] [--case-checkpoint PATH]
                  [--lines-checkpoint PATH]

Standard library only (http.server). The page is static; POST /predict takes the JSON
{"image": <data URL>, "mode": "36" | "case" | "text", "name": <file name, optional>} (or the raw
bytes of a PNG or JPEG, with ?mode=case or ?mode=text) and answers JSON: the top-3 (modes "36"
and "case"), the text read ("text": text, confidence, unsure, and the normalised line as
"preview"), or {"error": one sentence}.

It is a local demo, not a public server. It still refuses what a web page on the same machine
could trick a browser into sending (requests for another host name: DNS rebinding) and keeps
answering when clients stall or lie about sizes: bodies are capped, a connection only gets a
thread once its request has arrived, idle ones time out, and a fixed pool of threads works.
"""

import argparse
import contextlib
import errno
import ipaddress
import json
import queue
import re
import selectors
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import HCRError
from .predict import Predictor, answer, decode_data_url

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/pad.js": ("pad.js", "text/javascript; charset=utf-8")}
MODES = {"36": "36 classes (0-9, A-Z)", "case": "case-sensitive (0-9, A-Z, a-z)", "text": "a word or a line (text)"}

MAX_UPLOAD = 20 * 1024 * 1024  # bytes of request body; the page sends a picture as base64 (4/3 bigger)
SMALL_BODY = 1024 * 1024  # drawings are ~20 KB; bigger bodies are read one at a time
SOCKET_TIMEOUT = 10.0  # seconds a client may stay silent: before its request arrives, and while sending it
BODY_SECONDS = 30.0  # seconds to receive a whole upload, however slowly it trickles in
WORKERS = 16  # threads that answer requests; waiting connections cost no thread
MAX_CONNECTIONS = 256  # connections waiting for their request; the oldest is dropped beyond this
MAX_QUEUED = 64  # complete requests waiting for a worker; beyond this the demo answers 503 at once
HEADER_LIMIT = 65536  # a request whose headers do not end within this many bytes goes to a worker anyway


class Refusal(Exception):
    """A request the demo answers with an HTTP error status and one sentence."""

    def __init__(self, status, sentence):
        super().__init__(sentence)
        self.status = status


# --- The server: bounded threads, idle connections wait without one ---------------------------------------


def _headers_state(sock):
    """True once the request's headers have arrived, False while they have not, None if the client left."""
    try:
        head = sock.recv(HEADER_LIMIT, socket.MSG_PEEK)
    except BlockingIOError:
        return False
    except OSError:
        return None
    if not head:
        return None
    return b"\r\n\r\n" in head or b"\n\n" in head or len(head) >= HEADER_LIMIT


class DemoServer(ThreadingHTTPServer):
    """http.server's threading server with bounds, so that stalled clients cannot exhaust it.

    A new connection waits in a selector, with no thread, until its request headers have all
    arrived; then one of WORKERS threads answers it. Connections that stay silent (or stop halfway
    through their headers) are closed after SOCKET_TIMEOUT, and at most MAX_CONNECTIONS wait.
    """

    daemon_threads = True
    request_queue_size = 64  # listen backlog (the standard library's is 5)
    allow_reuse_address = True

    def __init__(self, address, handler):
        super().__init__(address, handler)
        self._arrivals = queue.SimpleQueue()  # accepted sockets, for the waiting room's thread
        self._jobs = queue.Queue()  # sockets whose request has arrived, for the workers
        self._closing = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._waiting = {}  # socket -> (client address, deadline), oldest first
        self._partial = set()  # sent part of their headers: polled, not selected (they stay readable)
        self._pool = [threading.Thread(target=self._waiting_room, name="hcr-wait", daemon=True)]
        self._pool += [threading.Thread(target=self._work, name=f"hcr-worker-{i}", daemon=True) for i in range(WORKERS)]
        for thread in self._pool:
            thread.start()

    def process_request(self, request, client_address):
        """Called by serve_forever for each accepted connection: park it, never block here."""
        self._arrivals.put((request, client_address))
        self._wake()

    def _wake(self):
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _waiting_room(self):
        while not self._closing.is_set():
            try:
                self._sort_waiting()
            except Exception as error:  # never let this thread die: the server would stop answering
                print(f"web demo: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        for sock in list(self._waiting):
            self._leave(sock, answer=False)
        self._selector.close()

    def _sort_waiting(self):
        """One round: admit new connections, pass on complete requests, close expired ones."""
        ready = [key.fileobj for key, _ in self._selector.select(0.1 if self._partial else 0.5)]
        if self._wake_r in ready:
            with contextlib.suppress(OSError):
                self._wake_r.recv(4096)
            self._admit()
        for sock in [s for s in ready if s is not self._wake_r] + list(self._partial):
            if sock not in self._waiting:
                continue
            state = _headers_state(sock)
            if state is False and sock not in self._partial:
                self._selector.unregister(sock)
                self._partial.add(sock)
            elif state is not False:
                self._leave(sock, answer=state)
        now = time.monotonic()
        for sock in [s for s, (_, deadline) in self._waiting.items() if deadline < now]:
            self._leave(sock, answer=False)

    def _admit(self):
        while True:
            try:
                sock, address = self._arrivals.get_nowait()
            except queue.Empty:
                return
            if len(self._waiting) >= MAX_CONNECTIONS:  # drop the connection that has waited longest
                self._leave(next(iter(self._waiting)), answer=False)
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)
            self._waiting[sock] = (address, time.monotonic() + SOCKET_TIMEOUT)

    def _leave(self, sock, answer):
        """Take a socket out of the waiting room: to a worker (answer=True), or closed."""
        address, _ = self._waiting.pop(sock)
        if sock in self._partial:
            self._partial.discard(sock)
        else:
            self._selector.unregister(sock)
        if not answer:
            self.shutdown_request(sock)
        elif self._jobs.qsize() >= MAX_QUEUED:
            self._refuse_busy(sock)
        else:
            sock.settimeout(SOCKET_TIMEOUT)
            self._jobs.put((sock, address))

    def _refuse_busy(self, sock):
        body = json.dumps({"error": "The demo is busy with other requests: try again in a moment."}).encode()
        head = ("HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        with contextlib.suppress(OSError):
            sock.send(head.encode() + body)
        self.shutdown_request(sock)

    def _work(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            self.process_request_thread(*job)  # ThreadingMixIn's: handle, report errors, close

    def handle_error(self, request, client_address):
        """A client that hangs up or goes silent is normal; anything else gets one line, no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        print(f"web demo: a request failed ({type(error).__name__}: {error}); the server keeps running.",
              file=sys.stderr, flush=True)

    def server_close(self):
        """Stop the threads and close every connection still waiting (call shutdown() first)."""
        if not hasattr(self, "_pool"):  # the address could not be bound: nothing was started
            return super().server_close()
        self._closing.set()
        self._wake()
        for _ in range(WORKERS):
            self._jobs.put(None)
        self._pool[0].join(timeout=5)
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()


class DemoServer6(DemoServer):
    address_family = socket.AF_INET6


# --- The page's state: the models, and which Host names are ours ---------------------------------------------


def load_predictor(mode, checkpoint=None):
    """The predictor for one mode of the page: "36", "case" (case-sensitive, 62 classes) or "text" (a line)."""
    if mode == "case":
        return Predictor(checkpoint, case_sensitive=True)
    if mode == "text":
        return Predictor(checkpoint, text=True)
    return Predictor(checkpoint)


class Models:
    """The predictors the page switches between, each loaded on first use and then kept."""

    def __init__(self, checkpoints=None, loaded=None):
        self.checkpoints = {mode: None for mode in MODES} | (checkpoints or {})
        self._loaded = {mode: p for mode, p in (loaded or {}).items() if p is not None}
        self._lock = threading.Lock()

    def get(self, mode):
        """The predictor for `mode`; HCRError (one sentence) if its model file is missing or wrong."""
        with self._lock:
            if mode not in self._loaded:
                self._loaded[mode] = load_predictor(mode, self.checkpoints[mode])
            return self._loaded[mode]

    def file_names(self):
        """The loaded models' file names, never their folders (any page on this machine can ask)."""
        with self._lock:
            return {mode: Path(str(p.path)).name for mode, p in self._loaded.items()}


def url_host(host):
    """How a Host header writes this address: IPv6 in brackets."""
    return f"[{host}]" if ":" in host else host


def allowed_hosts(host, port):
    """The Host header values a browser sends when it really means this server."""
    names = {"127.0.0.1", "localhost", "[::1]", url_host(host).lower()}
    hosts = {f"{name}:{port}" for name in names}
    return hosts | names if port == 80 else hosts


def host_is_ours(value, allowed, port, any_ip):
    """DNS rebinding needs a host *name*: accept ours, and IP addresses when listening on all of them."""
    value = (value or "").strip().lower()
    if value in allowed:
        return True
    name, _, got_port = value.rpartition(":")
    if not any_ip or got_port != str(port):
        return False
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


# --- The requests -------------------------------------------------------------------------------------------


def content_length(headers):
    """The body's size from the headers; Refusal for anything but one plain number within MAX_UPLOAD."""
    if headers.get("Transfer-Encoding"):
        raise Refusal(HTTPStatus.LENGTH_REQUIRED,
                      "Send the image with a Content-Length header, as the page does (chunked uploads are refused).")
    values = {v.strip() for v in headers.get_all("Content-Length") or []}
    if not values:
        raise Refusal(HTTPStatus.LENGTH_REQUIRED, "Send the image with a Content-Length header, as the page does.")
    value = values.pop()
    if values or not re.fullmatch(r"[0-9]{1,15}", value):
        raise Refusal(HTTPStatus.BAD_REQUEST,
                      f"The Content-Length '{value[:40]}' is not a size in bytes: send the image again from the page.")
    length = int(value)
    if length > MAX_UPLOAD:
        limit = MAX_UPLOAD * 3 // 4 // 2**20
        raise Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                      f"The upload is too big ({length / 2**20:.0f} MB): upload a picture under {limit} MB.")
    return length


def sent_json(headers):
    return (headers.get("Content-Type") or "").split(";")[0].strip().lower() == "application/json"


def parse_request(body, is_json, query, headers):
    """(mode, image bytes, file name or None) from the page's JSON, or from a raw PNG/JPEG body.

    The page sends drawings without a name and uploads with the file's name.
    """
    if not is_json:
        name = unquote(headers.get("X-File-Name") or "")[:200] or None
        return check_mode(parse_qs(query).get("mode", ["36"])[0]), body, name
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        request = None
    if not isinstance(request, dict) or not isinstance(request.get("image"), str):
        raise Refusal(HTTPStatus.BAD_REQUEST,
                      'The request is not the JSON the page sends ({"image": data URL, "mode": ...}): reload the page.')
    name = request.get("name")
    name = str(name)[:200] if name else None
    mode = check_mode(str(request.get("mode", "36")))
    url = request["image"]
    if url in ("data:", "data:,"):  # how a browser reads an empty file
        return mode, b"", name
    try:
        return mode, decode_data_url(url), name
    except HCRError as error:
        sentence = f"{name} arrived damaged: upload it again." if name else str(error)
        raise Refusal(HTTPStatus.BAD_REQUEST, sentence) from None


def check_mode(mode):
    if mode not in MODES:
        raise Refusal(HTTPStatus.BAD_REQUEST, f"Unknown mode '{mode[:20]}': use one of {', '.join(MODES)}.")
    return mode


class Handler(BaseHTTPRequestHandler):
    """GET the page, its script and /health; POST /predict. Every answer is JSON or a static file."""

    server_version = "hcr-demo"
    sys_version = ""

    def log_message(self, *args):  # quiet: one line per request would drown the console
        pass

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status, payload):
        self._send(status, json.dumps(payload).encode(), "application/json")

    def do_GET(self):
        self._guarded(self._get)

    def do_POST(self):
        self._guarded(self._post)

    def _guarded(self, route):
        """Answer every request with JSON, whatever happens; a client that left needs no answer."""
        try:
            self._check_host()
            route()
        except Refusal as refusal:
            self._json(refusal.status, {"error": str(refusal)})
            if self._unread:
                self._discard_unread()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as error:
            self.server.handle_error(self.request, self.client_address)
            with contextlib.suppress(OSError):
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {
                    "error": f"The demo failed on this request ({type(error).__name__}): try again, "
                             "and restart python app.py if it happens again."})

    _unread = False  # True while a POST's body has not been read in full

    def _discard_unread(self):
        """Take in (a bounded part of) a refused body, so that closing does not reset the connection
        before the client has read the answer."""
        deadline, taken = time.monotonic() + 3.0, 0
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(0.5)
            while time.monotonic() < deadline and taken < 2 * MAX_UPLOAD:  # 64 KB at a time, then dropped
                chunk = self.rfile.read1(65536)
                if not chunk:
                    break
                taken += len(chunk)

    def _check_host(self):
        server = self.server
        host = self.headers.get("Host")
        if not host_is_ours(host, server.allowed_hosts, server.port, server.any_ip):
            raise Refusal(HTTPStatus.MISDIRECTED_REQUEST,
                          f"This demo only answers at {server.url} (this request was for "
                          f"'{(host or '')[:80]}'): open that address.")

    def _get(self):
        path = urlsplit(self.path).path
        if path == "/health":
            return self._json(HTTPStatus.OK, {"ok": True, "models": self.server.models.file_names()})
        if path not in FILES:
            raise Refusal(HTTPStatus.NOT_FOUND, f"No page at {path[:80]}: open / instead.")
        name, content_type = FILES[path]
        self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), content_type)

    def _post(self):
        self._unread = True
        url = urlsplit(self.path)
        if url.path != "/predict":
            raise Refusal(HTTPStatus.NOT_FOUND, "Send images to /predict.")
        length = content_length(self.headers)
        big = length > SMALL_BODY
        gate = waiting_for(self.server.big_body, BODY_SECONDS) if big else contextlib.nullcontext(True)
        with gate as admitted:  # big bodies one at a time: memory holds at most one
            if not admitted:
                raise Refusal(HTTPStatus.SERVICE_UNAVAILABLE,
                              "Another big upload is on its way: try again in a moment.")
            is_json = sent_json(self.headers)
            body = self._read(length)
            self._unread = False
            mode, image, name = parse_request(body, is_json, url.query, self.headers)
            del body  # in JSON, the decoded image is all that stays in memory while the model runs
            status, result = self._predict(mode, image, name or ("The drawing" if is_json else "The image"))
            result.update({"name": name} if name else {})
        self._json(status, result)

    def _read(self, length):
        """Exactly `length` bytes of body, refused if they take longer than BODY_SECONDS to arrive."""
        body = bytearray(length)
        view, got = memoryview(body), 0
        deadline = time.monotonic() + BODY_SECONDS
        while got < length:
            if time.monotonic() > deadline:
                raise Refusal(HTTPStatus.REQUEST_TIMEOUT,
                              f"The upload took longer than {BODY_SECONDS:.0f} s: try again, or send a smaller "
                              "picture.")
            n = self.rfile.readinto1(view[got:])
            if not n:
                raise Refusal(HTTPStatus.BAD_REQUEST,
                              f"The upload stopped after {got} of {length} bytes: send it again.")
            got += n
        return body

    def _predict(self, mode, image, called):
        """(status, the dict the page shows); `called` is how error sentences name the image."""
        try:
            predictor = self.server.models.get(mode)
        except HCRError as error:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)}
        with self.server.predict_lock:  # one forward pass at a time: torch on 2 cores gains nothing from more
            result = answer(predictor, image, name=called)
        return (HTTPStatus.BAD_REQUEST if "error" in result else HTTPStatus.OK), result


def serve(predictor=None, host="127.0.0.1", port=8000, case_predictor=None, checkpoint=None, case_checkpoint=None,
          text_reader=None, lines_checkpoint=None):
    """A started server (call .serve_forever() or run it in a thread); port 0 picks a free one.

    Pass predictors to use them (`text_reader`: a `Predictor(text=True)`), or checkpoints (None: the
    default files) to load them on first use.
    """
    server_class = DemoServer6 if ":" in host else DemoServer
    server = server_class((host, port), Handler)
    server.port = server.server_address[1]
    server.allowed_hosts = allowed_hosts(host, server.port)
    server.any_ip = host in ("", "0.0.0.0", "::")
    server.url = f"http://{'127.0.0.1' if server.any_ip else url_host(host)}:{server.port}/"
    server.models = Models({"36": checkpoint, "case": case_checkpoint, "text": lines_checkpoint},
                           {"36": predictor, "case": case_predictor, "text": text_reader})
    server.predict_lock = threading.Lock()
    server.big_body = threading.Lock()  # held while a body over SMALL_BODY is read and answered
    return server


@contextlib.contextmanager
def waiting_for(lock, seconds):
    """`with waiting_for(lock, s) as admitted`: the lock if it comes within `seconds`, else admitted is False."""
    admitted = lock.acquire(timeout=seconds)
    try:
        yield admitted
    finally:
        if admitted:
            lock.release()


# --- Command line -------------------------------------------------------------------------------------------


def port_number(text):
    """--port's type: a whole number; the range is checked after parsing, with one sentence."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None


def listen_error(error, host, port):
    """Why the server could not start, and what to do, in one sentence."""
    if isinstance(error, socket.gaierror):
        return f"there is no address called {host}: pass --host 127.0.0.1 (the default) or one of this computer."
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this computer: pass --host 127.0.0.1 (the default)."
    reason = "it is already in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
    return (f"cannot listen on {host} port {port} ({reason}): pass another --port, "
            f"for example --port {port + 1 if 0 < port < 65535 else 8001}.")


def _auto(value):
    return None if value == "auto" else value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python app.py", description="Draw or upload a character (see the top-3) "
                                     "or a word or a line (see the text). "
                                     "A local demo for your own browser, not a public server.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (other machines cannot reach 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8000, help="port to listen on (0 picks a free one)")
    parser.add_argument("--checkpoint", default="auto",
                        help="36-class model; auto = runs/default.pt if you trained one, else checkpoints/default.pt")
    parser.add_argument("--case-checkpoint", default="auto",
                        help="case-sensitive model, loaded when the page first asks for it; auto = runs/case.pt "
                             "if you trained one, else checkpoints/case.pt")
    parser.add_argument("--lines-checkpoint", default="auto",
                        help="line reader for the page's text mode, loaded when the page first asks for it; "
                             "auto = runs/lines.pt if you trained one, else checkpoints/lines.pt")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} is not a port number: pass one from 1 to 65535, such as 8000 "
              "(0 picks a free one).", file=sys.stderr)
        return 2
    try:
        server = serve(None, args.host, args.port, checkpoint=_auto(args.checkpoint),
                       case_checkpoint=_auto(args.case_checkpoint), lines_checkpoint=_auto(args.lines_checkpoint))
    except OSError as error:
        print(f"error: {listen_error(error, args.host, args.port)}", file=sys.stderr)
        return 2
    try:
        predictor = server.models.get("36")  # now, so that a wrong --checkpoint stops here with its sentence
    except HCRError as error:
        server.server_close()
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Open {server.url} in your browser (model: {predictor.path}). Ctrl+C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
