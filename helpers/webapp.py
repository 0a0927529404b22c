"""The web demo: a local page to draw or upload a character and see the model's top-3.

    python app.py [--port 8000] [--checkpoint PATH]

Standard library only (http.server): the page is static and the one endpoint, POST /predict,
takes the raw bytes of a PNG or JPEG and answers JSON.
"""

import argparse
import json
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from .errors import HCRError
from .predict import Predictor, answer

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 20 * 1024 * 1024  # bytes; bigger uploads are refused with a sentence
FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/pad.js": ("pad.js", "text/javascript; charset=utf-8")}


def make_handler(predictor):
    lock = threading.Lock()  # one forward pass at a time: torch on 2 cores gains nothing from more

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: one line per request would drown the console
            pass

        def _send(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status, payload):
            self._send(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/health":
                return self._json(HTTPStatus.OK, {"ok": True, "checkpoint": str(predictor.path)})
            if path not in FILES:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"No page at {path}: open / instead."})
            name, content_type = FILES[path]
            self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), content_type)

        def do_POST(self):
            if self.path.split("?", 1)[0] != "/predict":
                return self._json(HTTPStatus.NOT_FOUND, {"error": "Send images to /predict."})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_UPLOAD:
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {
                    "error": f"The file is too big ({length / 2**20:.0f} MB): upload a picture under "
                             f"{MAX_UPLOAD // 2**20} MB."})
            body = self.rfile.read(length) if length else b""
            with lock:
                result = answer(predictor, body, name=unquote(self.headers.get("X-File-Name") or "The image"))
            self._json(HTTPStatus.BAD_REQUEST if "error" in result else HTTPStatus.OK, result)

    return Handler


def serve(predictor, host="127.0.0.1", port=8000):
    """A started server (call .serve_forever() or run it in a thread); port 0 picks a free one."""
    return ThreadingHTTPServer((host, port), make_handler(predictor))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python app.py", description="Draw or upload a character; see the top-3.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--checkpoint", default=None, help="model to use (default: your trained one, else the shipped one)")
    args = parser.parse_args(argv)
    try:
        predictor = Predictor(args.checkpoint)
        server = serve(predictor, args.host, args.port)
    except HCRError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port} ({error.strerror}): pass another --port.", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"Open http://{host}:{port}/ in your browser (model: {predictor.path}). Ctrl+C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
