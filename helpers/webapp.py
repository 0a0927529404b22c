"""The web demo: a local page to draw or upload a character (see the model's top-3) or a line of text.

    python app.py [--host 127.0.0.1] [--port 8000] [--checkpoint PATH] [--case-checkpoint PATH]
                  [--lines-checkpoint PATH]

Starlette on uvicorn. The page is static; POST /predict takes the JSON {"image": <data URL>,
"mode": "36" | "case" | "text", "name": <file name, optional>} (or the raw bytes of a PNG or
JPEG, sent as image/png or image/jpeg, with ?mode=case or ?mode=text) and answers JSON: the top-3
(modes "36" and "case"), the text read ("text": text, confidence, unsure, and the normalised line
as "preview"), or {"error": one sentence}.

It is a local demo for one browser on one machine, not a public server. What it defends against:

- Slow clients. The event loop holds a waiting connection for the price of a socket, never a
  thread. The headers must be complete within HEADER_SECONDS and HEADER_BYTES (DemoProtocol), and
  the body within BODY_SECONDS more (Guard); then the connection is closed or answered 408.
- Other web pages in the same browser. A page on another site may POST text/plain, forms or a
  Blob without asking, and it may point a host name of its own at 127.0.0.1 (DNS rebinding). So
  the demo answers only its own Host names (421), only requests whose Origin is its own address
  and whose Sec-Fetch-Site is same-origin or none (403), and only the content types the page or
  a script sends: application/json, image/png, image/jpeg (415). A browser asks first before
  it sends those types cross-site, and the demo never says yes.
- Big inputs. A body may have MAX_BODY = 12 MB: a 9 MB file once the page has base64-encoded it,
  which is more than a 12-megapixel phone JPEG (2-6 MB) needs. A picture may have MAX_PIXELS =
  16 megapixels: a 4032x3024 phone photo is 12.2, and 48-megapixel phones save 12 by default. The
  pixels are read from the file's header before it is decoded, so a small "bomb" that would
  decode to 100 megapixels costs nothing. preprocess.MAX_PIXELS (60) stays the limit for files
  on disk.
- CPU and memory. All the decoding and the model run in THREADS = 2 threads (one per core), with
  at most WAITING requests queued; beyond that the answer is 503 at once. Pictures over
  BIG_PICTURE pixels are read on one more thread of their own, one at a time and at a lower CPU
  priority, so photos and bombs cannot delay the drawings. Few threads also mean few malloc
  arenas: app.py starts the server with MALLOC_ARENA_MAX=2, and the big lane hands freed heap
  back (malloc_trim), which keeps memory from ratcheting up under a stream of big pictures.
- Clients that hang up. A request whose client has gone is dropped while it waits for a thread,
  and a page being read stops at its next line (`watch_for_hang_up`).
"""

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import json
import os
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, unquote

import h11
import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import HCRError
from .predict import MODES, answer, decode_data_url, load

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/pad.js": ("pad.js", "text/javascript; charset=utf-8")}
CONTENT_TYPES = {"application/json", "image/png", "image/jpeg"}  # what the page and scripts send

MAX_BODY = 12 * 2**20  # bytes of request body: a 9 MB picture once base64-encoded (see above)
MAX_PIXELS = 16_000_000  # a phone photo (12 MP) with room to spare; drawings are 0.08-0.3 MP
BIG_PICTURE = 2_000_000  # pixels: pictures above this are read by one thread at most
BIG_WAITING = 4  # big pictures waiting for that thread; more get 503 at once
BIG_BODY = 2**20  # bytes: drawings are ~20 KB; at most BIG_BODIES bodies over this are held at once
BIG_BODIES = 4
HEADER_BYTES = 16384  # request line and headers (a browser sends about 1 KB)
HEADER_SECONDS = 5.0  # for the headers, from the connection (or the previous answer) on
BODY_SECONDS = 10.0  # for the body, once the headers are in
THREADS = 2  # for decoding and the model: one per core
WAITING = 32  # requests waiting for a thread; more get 503 at once
MAX_CONNECTIONS = 256  # open connections; beyond this the one idle longest is closed (DemoProtocol)


class Refusal(Exception):
    """A request the demo answers with an HTTP error status and one sentence."""

    def __init__(self, status, sentence):
        super().__init__(sentence)
        self.status = status


def error_json(status, sentence, close=False):
    """The JSON answer with one sentence; `close` ends the connection too (its unread bytes are not a request)."""
    return JSONResponse({"error": sentence}, status, headers={"Cache-Control": "no-store",
                                                              "X-Content-Type-Options": "nosniff"}
                        | ({"Connection": "close"} if close else {}))


# --- The connection: a deadline for the headers -------------------------------------------------------------


class DemoProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for the request headers and JSON for bad HTTP.

    uvicorn times out a connection that stays silent after an answer, but not a new connection
    that sends nothing, nor one that sends its headers a byte at a time. Here each connection must
    complete its next request's headers within HEADER_SECONDS of connecting (or of the previous
    answer); h11 refuses headers over HEADER_BYTES. Over MAX_CONNECTIONS, the one that has waited
    longest without a request is closed (uvicorn's own limit would refuse every newcomer, in plain text).
    """

    def connection_made(self, transport):
        super().connection_made(transport)
        self._expect_headers(None)
        if len(self.connections) > MAX_CONNECTIONS:
            self._make_room()

    def _make_room(self):
        """Full: close the connection that has waited longest without a request. Sockets held open
        and silent (or reopened as fast as they close) then push each other out, while a browser's
        request, whose headers arrive at once, is served."""
        waiting = [c for c in self.connections if c is not self and getattr(c, "_waiting_cycle", 0) is c.cycle]
        if waiting:
            min(waiting, key=lambda c: c._waiting_since).transport.close()
            return
        body = json.dumps({"error": "The demo is answering as many requests as it can: try again in a moment."})
        self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body.encode()))
        self.transport.close()

    def on_response_complete(self):
        answered = self.cycle
        super().on_response_complete()  # may start a pipelined request: then self.cycle changes
        self._expect_headers(answered)

    def _expect_headers(self, cycle):
        self._waiting_cycle, self._waiting_since = cycle, self.loop.time()  # waiting while self.cycle is cycle

        def expire():
            if self.cycle is cycle and not self.transport.is_closing():  # no new request since
                self.transport.close()

        self.loop.call_later(HEADER_SECONDS, expire)

    def send_400_response(self, msg):
        """h11 could not parse the request: say so in JSON, as every other answer."""
        body = json.dumps({"error": "The request is not valid HTTP (a Content-Length that is not a size in bytes, "
                                    f"or headers over {HEADER_BYTES // 1024} KB): send it again from the page."})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                      h11.Data(data=body.encode()), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


# --- Which requests are ours: Host, Origin, content type, size -------------------------------------------------


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


def check_same_origin(method, headers):
    """Refuse what another site's page sent: its Origin is not our address, or the browser says cross-site.

    Following a link to the page from elsewhere (a GET navigation) is fine; nothing else is.
    """
    origin, site = headers.get("origin"), headers.get("sec-fetch-site")
    if origin is not None and origin.lower() != f"http://{headers.get('host', '').strip().lower()}":
        raise Refusal(403, f"This demo only answers its own page, not one from {origin[:80]}: open the demo itself.")
    navigation = method in ("GET", "HEAD") and headers.get("sec-fetch-mode") == "navigate"
    if site not in (None, "same-origin", "none") and not navigation:
        raise Refusal(403, f"This demo only answers its own page (the browser says this request is {site[:20]}): "
                           "open the demo itself.")


def content_type(headers):
    """The body's type, if it is one the page sends; else Refusal 415."""
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in CONTENT_TYPES:
        raise Refusal(415, f"The demo takes {', '.join(sorted(CONTENT_TYPES))}, not '{kind[:40] or 'no type'}': "
                           "send the picture from the page, or as image/png or image/jpeg.")
    return kind


def content_length(headers):
    """The body's size (h11 has checked it is a number); Refusal if missing or over MAX_BODY."""
    if "content-length" not in headers:
        raise Refusal(411, "Send the image with a Content-Length header, as the page does "
                           "(chunked uploads are refused).")
    length = int(headers["content-length"])
    if length > MAX_BODY:
        raise Refusal(413, f"The upload is too big ({length / 2**20:.0f} MB): upload a picture under "
                           f"{MAX_BODY * 3 // 4 // 2**20} MB.")
    return length


async def read_body(receive, length):
    """The whole body, within BODY_SECONDS; Refusal 408 if it comes slower, 400 if the client stops."""
    body = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Refusal(400, f"The upload stopped after {len(body)} of {length} bytes: send it again.")
                body += message.get("body", b"")
                if not message.get("more_body"):
                    return bytes(body)
    except TimeoutError:
        raise Refusal(408, f"The upload took longer than {BODY_SECONDS:.0f} s ({len(body)} of {length} bytes "
                           "arrived): send it again.") from None


class Guard:
    """ASGI middleware: refuse what is not ours before any work, and read POST bodies in full, on a deadline.

    The app behind it only sees requests whose body has arrived, so a slow client never holds a thread.
    """

    def __init__(self, app, demo):
        self.app, self.demo = app, demo

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        big = False
        unread = scope["method"] == "POST"  # a body the client is still sending when refused
        try:
            headers = Headers(scope=scope)
            demo = self.demo
            if not host_is_ours(headers.get("host"), demo.allowed_hosts, demo.port, demo.any_ip):
                raise Refusal(421, f"This demo only answers at {demo.url} (this request was for "
                                   f"'{headers.get('host', '')[:80]}'): open that address.")
            check_same_origin(scope["method"], headers)
            if sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > HEADER_BYTES:
                raise Refusal(431, f"The request's headers are over {HEADER_BYTES // 1024} KB (a browser sends about "
                                   "1 KB): send it again from the page.")
            if scope["method"] == "POST" and scope["path"] == "/predict":
                content_type(headers)
                length = content_length(headers)
                if length > BIG_BODY:  # memory holds only a few big uploads at a time
                    if demo.big_bodies >= BIG_BODIES:
                        raise Refusal(503, "Other big uploads are on their way: try again in a moment.")
                    demo.big_bodies, big = demo.big_bodies + 1, True
                unread = False  # from here on, read_body answers for what arrives (or fails to)
                body = await read_body(receive, length)
                receive = replayed(body, receive)
            unread = False
            await self.app(scope, receive, send)
        except Refusal as refusal:
            if unread:  # every refusal before the body was read (421, 403, 431, 415, 411, 413, 503)
                await discard(receive)
            await error_json(refusal.status, str(refusal), close=True)(scope, receive, send)
        finally:
            if big:
                self.demo.big_bodies -= 1


async def discard(receive):
    """Take in and drop (a bounded part of) a refused body, until it pauses for half a second.

    uvicorn closes the connection after the answer when the client said Connection: close, and
    unread bytes would turn that into a reset before the client has read the answer.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(BODY_SECONDS):
            for _ in range(4 * MAX_BODY // 65536):
                async with asyncio.timeout(0.5):
                    message = await receive()
                if message["type"] != "http.request" or not message.get("more_body"):
                    return


def replayed(body, receive):
    """An ASGI receive that gives the body already read, then whatever the connection says next."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def again():
        return pending.pop() if pending else await receive()

    return again


# --- The work: two threads, a queue with a limit, a lane for big pictures --------------------------------------


def _give_memory_back():
    """Hand freed heap back to the system (glibc's malloc_trim; elsewhere nothing): a decoded 16 MP
    photo leaves hundreds of MB free in the heap, which glibc keeps and the server's RSS shows."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _read_big(function, *args):
    try:
        return function(*args)
    finally:
        _give_memory_back()


def _lower_priority():
    """Run this thread at a lower CPU priority (Linux sets it per thread), so big pictures yield to drawings."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class Pool:
    """THREADS threads for everything that costs CPU; Refusal 503 when WAITING requests already wait.

    Pictures over BIG_PICTURE go to one more thread of their own, at a lower CPU priority, one
    at a time: a phone photo or a bomb never takes a drawing's thread or its share of the cores.
    """

    def __init__(self):
        self.executor = ThreadPoolExecutor(THREADS, thread_name_prefix="hcr-model")
        self.big_executor = ThreadPoolExecutor(1, thread_name_prefix="hcr-big", initializer=_lower_priority)
        self.jobs = 0  # running or waiting (only the event loop's thread changes it)
        self.big_lane = asyncio.Semaphore(1)  # pictures over BIG_PICTURE: one at a time
        self.big_waiting = 0

    async def run(self, function, *args, executor=None):
        if self.jobs >= THREADS + WAITING:
            raise Refusal(503, "The demo is busy with other requests: try again in a moment.")
        self.jobs += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(executor or self.executor, function, *args)
        finally:
            self.jobs -= 1

    async def run_big(self, function, *args):
        """Like run, for a picture over BIG_PICTURE: on its own thread, at most BIG_WAITING waiting."""
        if self.big_lane.locked() and self.big_waiting >= BIG_WAITING:
            raise Refusal(503, "The demo is busy with other big pictures: try again in a moment.")
        self.big_waiting += 1
        try:
            await self.big_lane.acquire()
        finally:
            self.big_waiting -= 1
        try:
            return await self.run(_read_big, function, *args, executor=self.big_executor)
        finally:
            self.big_lane.release()

    def close(self):
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.big_executor.shutdown(wait=False, cancel_futures=True)


def parse_request(body, is_json, query, file_name):
    """(mode, image bytes, file name or None) from the page's JSON, or from a raw PNG/JPEG body.

    The page sends drawings without a name and uploads with the file's name.
    """
    if not is_json:
        name = _printable(unquote(file_name or "")[:200]) or None
        return check_mode(parse_qs(query).get("mode", ["36"])[0]), body, name
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested thousands deep
        request = None
    if not isinstance(request, dict) or not isinstance(request.get("image"), str):
        raise Refusal(400, 'The request is not the JSON the page sends ({"image": data URL, "mode": ...}): '
                           "reload the page.")
    name = request.get("name")
    name = _printable(str(name)[:200]) if name else None
    mode = check_mode(str(request.get("mode", "36")))
    url = request["image"]
    if url in ("data:", "data:,"):  # how a browser reads an empty file
        return mode, b"", name
    try:
        return mode, decode_data_url(url), name
    except HCRError as error:
        raise Refusal(400, f"{name} arrived damaged: upload it again." if name else str(error)) from None


def _printable(name):
    """A file name that can be written back as UTF-8 (JSON allows lone surrogates, "\\ud800", UTF-8 does not)."""
    return name.encode("utf-8", "replace").decode("utf-8")


def check_mode(mode):
    if mode not in MODES:
        raise Refusal(400, f"Unknown mode '{mode[:20]}': use one of {', '.join(MODES)}.")
    return mode


def picture_pixels(image, called):
    """The picture's pixel count from its header, without decoding it (0 if Pillow cannot read it:
    the predictor then says what it is); Refusal 413 over MAX_PIXELS, whatever the format (a BMP,
    TIFF or WebP is decoded as readily as a PNG)."""
    try:
        with Image.open(BytesIO(image)) as picture:
            width, height = picture.size
    except Image.DecompressionBombError:
        too_many = f"{called} has far more than {MAX_PIXELS // 10**6} megapixels: upload a smaller copy."
        raise Refusal(413, too_many) from None
    except Exception:
        return 0
    if width * height > MAX_PIXELS:
        raise Refusal(413, f"{called} is too big for the demo ({width}x{height} pixels, over "
                           f"{MAX_PIXELS // 10**6} megapixels): upload a smaller copy.")
    return width * height


def read_request(body, is_json, query, file_name):
    """Parse the request and size the picture: (mode, image, name, called, pixels)."""
    mode, image, name = parse_request(body, is_json, query, file_name)
    called = name or ("The drawing" if is_json else "The image")
    return mode, image, name, called, picture_pixels(image, called)


GONE = "The browser that sent this request has gone, so it was not read."


def run_model(models, mode, image, called, gone=None):
    """(status, the dict the page shows); `called` is how error sentences name the image. `gone` (a
    threading.Event) is set once the client has hung up: a request that waited is then dropped, and
    a page stops between two lines."""
    if gone is not None and gone.is_set():
        raise Refusal(400, GONE)
    try:
        predictor = models.get(mode)
    except HCRError as error:
        return 503, {"error": str(error)}
    result = answer(predictor, image, name=called, stop=gone)
    return (400 if "error" in result else 200), result


def handle(models, body, is_json, query, file_name, gone=None):
    """One job in the pool for a drawing: read the request, then the model, unless the picture is big.

    (name, status, result), or (name, None, request) for a picture over BIG_PICTURE, which the
    caller hands to the big picture's own thread.
    """
    mode, image, name, called, pixels = read_request(body, is_json, query, file_name)
    if pixels > BIG_PICTURE:
        return name, None, (mode, image, called)
    return (name, *run_model(models, mode, image, called, gone))


# --- The page's state: the models -------------------------------------------------------------------------------


class Models:
    """The predictors the page switches between, each loaded on first use (`main` loads the 36-class
    model and the line reader at start) and then kept."""

    def __init__(self, checkpoints=None, loaded=None):
        self.checkpoints = {mode: None for mode in MODES} | (checkpoints or {})
        self._loaded = {mode: p for mode, p in (loaded or {}).items() if p is not None}
        self._locks = {mode: threading.Lock() for mode in MODES}  # one per mode: loading the line reader and
        # its LM takes seconds, and drawings for the loaded model must not wait for it

    def get(self, mode):
        """The predictor for `mode`; HCRError (one sentence) if its model file is missing or wrong."""
        with self._locks[mode]:
            if mode not in self._loaded:
                self._loaded[mode] = load(mode, self.checkpoints[mode])
            return self._loaded[mode]

    def file_names(self):
        """The loaded models' file names, never their folders (any page on this machine can ask)."""
        return {mode: Path(str(p.path)).name for mode, p in dict(self._loaded).items()}


# --- The routes -----------------------------------------------------------------------------------------------


PLAIN = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


async def static_file(request):
    name, kind = FILES[request.url.path]
    return Response((STATIC / name).read_bytes(), headers=PLAIN | {"X-Frame-Options": "DENY"}, media_type=kind)


async def health(request):
    return JSONResponse({"ok": True, "models": request.app.state.demo.models.file_names()}, headers=PLAIN)


async def watch_for_hang_up(receive, gone):
    """Set `gone` when the client hangs up (uvicorn then says http.disconnect)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def predict(request):
    demo = request.app.state.demo
    is_json = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
    body = await request.body()
    gone = threading.Event()
    watcher = asyncio.create_task(watch_for_hang_up(request.receive, gone))
    try:
        name, status, result = await demo.pool.run(handle, demo.models, body, is_json, request.url.query,
                                                   request.headers.get("x-file-name"), gone)
        if status is None:
            status, result = await demo.pool.run_big(run_model, demo.models, *result, gone)
        return JSONResponse(result | ({"name": name} if name else {}), status, headers=PLAIN)
    except Refusal:
        raise
    except Exception as error:  # a bug: one line on the console and a JSON answer, and the server keeps running
        print(f"web demo: a request failed ({type(error).__name__}: {error}); the server keeps running.",
              file=sys.stderr, flush=True)
        return error_json(500, f"The demo failed on this request ({type(error).__name__}): try again, "
                               "and restart python app.py if it happens again.")
    finally:
        watcher.cancel()


async def refused(request, refusal):
    return error_json(refusal.status, str(refusal))


async def http_error(request, error):
    if error.status_code == 404:
        return error_json(404, f"No page at {request.url.path[:80]}: open / instead.")
    return error_json(error.status_code, f"{request.method} is not how the page asks for {request.url.path[:80]}: "
                                         "open / instead.")


def build_app(demo):
    routes = [Route(path, static_file) for path in FILES] + [Route("/health", health),
                                                             Route("/predict", predict, methods=["POST"])]
    app = Starlette(routes=routes, exception_handlers={Refusal: refused, HTTPException: http_error})
    app.router.redirect_slashes = False  # /predict/ is a JSON 404, not a 307 with an empty body
    app.state.demo = demo
    return Guard(app, demo)


# --- The server -----------------------------------------------------------------------------------------------


class DemoServer:
    """The demo bound to its port: serve_forever() runs it in this thread, shutdown() stops it from another."""

    def __init__(self, sock, host, models):
        self.socket = sock
        self.server_address = sock.getsockname()[:2]
        self.port = self.server_address[1]
        self.allowed_hosts = allowed_hosts(host, self.port)
        self.any_ip = host in ("", "0.0.0.0", "::")
        self.url = f"http://{'127.0.0.1' if self.any_ip else url_host(host)}:{self.port}/"
        self.models = models
        self.pool = Pool()
        self.big_bodies = 0
        config = uvicorn.Config(build_app(self), http=DemoProtocol, ws="none", lifespan="off", log_config=None,
                                log_level="error", access_log=False, proxy_headers=False, server_header=False,
                                timeout_keep_alive=int(HEADER_SECONDS), h11_max_incomplete_event_size=HEADER_BYTES,
                                timeout_graceful_shutdown=3)
        self.uvicorn = uvicorn.Server(config)
        self._stopped = threading.Event()

    def serve_forever(self):
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self):
        self.uvicorn.should_exit = True
        self._stopped.wait(10)

    def server_close(self):
        self.pool.close()
        self.socket.close()


def serve(predictor=None, host="127.0.0.1", port=8000, case_predictor=None, checkpoint=None, case_checkpoint=None,
          text_reader=None, lines_checkpoint=None):
    """A server bound to its port (call .serve_forever() or run it in a thread); port 0 picks a free one.

    Pass predictors to use them (`text_reader`: a `Predictor(text=True)`), or checkpoints (None: the
    default files) to load them on first use. OSError if the address cannot be used.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128)
    models = Models({"36": checkpoint, "case": case_checkpoint, "text": lines_checkpoint},
                    {"36": predictor, "case": case_predictor, "text": text_reader})
    return DemoServer(sock, host, models)


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
    if error.errno == errno.EACCES:
        return f"port {port} needs administrator rights: pass a port above 1023, such as --port 8000."
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
                        help="line reader for the page's text mode, loaded at start; "
                             "auto = runs/lines.pt if newer than checkpoints/lines.pt, else the latter")
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
    import warnings

    import torch

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)  # refused above 16 MP anyway
    torch.set_num_threads(1)  # the pool's two threads are the parallelism: one core each (set before any model)
    try:
        predictor = server.models.get("36")  # now, so that a wrong --checkpoint stops here with its sentence
    except HCRError as error:
        server.server_close()
        print(f"error: {error}", file=sys.stderr)
        return 2
    # The line reader and its LM take seconds to load, in code that holds Python's lock: loaded on
    # first use, they stalled every drawing in flight for about 2.5 s. Loaded now, before anyone asks.
    print("Loading the line reader for the text mode ...", flush=True)
    with contextlib.suppress(HCRError):  # missing or damaged: the text mode says so in one sentence
        server.models.get("text")
    print(f"Open {server.url} in your browser (model: {predictor.path}). Ctrl+C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
