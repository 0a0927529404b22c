"""A bounded load test of the web demo, on this machine only (127.0.0.1), standard library only.

    python benchmarks/web_load.py                           # starts `python app.py` on a free port, then stops it
    python benchmarks/web_load.py --requests 2000 --clients 16 --stalled 200
    python benchmarks/web_load.py --port 8000               # a demo you started yourself on 127.0.0.1

1. Load: N POST /predict requests (a drawn "7", as the page sends it) from C concurrent clients;
   prints requests/s, median and 99th-percentile latency, and the errors.
2. Stalled clients: opens S sockets that send nothing (and a few that stop halfway through their
   headers), then checks that a normal request is still answered within a few seconds, that the
   server's thread count stays bounded, and that the server closes the stalled sockets itself.

It stops by itself; it never talks to another machine.
"""

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def drawing_png(size=280, pen=18):
    """A PNG of a hand-drawn-looking "7", black on white, made without Pillow."""
    pixels = bytearray(b"\xff" * size * size)
    strokes = [((70, 70), (210, 70)), ((210, 70), (120, 220))]
    for (x0, y0), (x1, y1) in strokes:
        steps = max(abs(x1 - x0), abs(y1 - y0))
        for i in range(steps + 1):
            cx, cy = x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps
            for y in range(int(cy - pen / 2), int(cy + pen / 2) + 1):
                for x in range(int(cx - pen / 2), int(cx + pen / 2) + 1):
                    if (x - cx) ** 2 + (y - cy) ** 2 <= (pen / 2) ** 2:
                        pixels[y * size + x] = 0
    raw = b"".join(b"\x00" + bytes(pixels[y * size:(y + 1) * size]) for y in range(size))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_demo(port):
    """`python app.py` as a user starts it; returns the process once /health answers."""
    proc = subprocess.Popen([sys.executable, str(PROJECT_DIR / "app.py"), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"python app.py stopped: {proc.stderr.read().strip()}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit("python app.py did not answer within 120 s")


def server_threads(pid):
    """The server's thread count (Linux /proc), or None when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def one_request(port, body, timeout=30):
    """(seconds, None) for a 200 answer with a label, else (seconds, what went wrong)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    headers = {"Content-Type": "application/json"} if body[:1] == b"{" else {}
    try:
        conn.request("POST", "/predict", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        problem = None if response.status == 200 and "label" in json.loads(payload) else f"HTTP {response.status}"
    except (OSError, http.client.HTTPException, ValueError) as error:
        problem = type(error).__name__
    finally:
        conn.close()
    return time.perf_counter() - started, problem


def load(port, requests, clients, body):
    """Send `requests` requests from `clients` threads; latencies (s), errors, wall time."""
    latencies, errors, lock = [], {}, threading.Lock()
    todo = iter(range(requests))

    def client():
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            seconds, problem = one_request(port, body)
            with lock:
                latencies.append(seconds)
                if problem:
                    errors[problem] = errors.get(problem, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def stalled(port, count, body, pid, idle_seconds):
    """Open `count` silent sockets (a tenth of them stop halfway through their headers); report."""
    socks = []
    for i in range(count):
        sock = socket.create_connection((HOST, port), timeout=idle_seconds + 10)
        if i % 10 == 9:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n".encode())
        socks.append(sock)
    time.sleep(1.0)
    threads = server_threads(pid) if pid else None
    seconds, problem = one_request(port, body, timeout=10)
    report = {"stalled sockets": count, "normal request while stalled (s)": round(seconds, 3),
              "normal request error": problem, "server threads while stalled": threads}
    started, closed = time.monotonic(), 0
    for sock in socks:  # the server should close each one after its idle timeout
        try:
            sock.settimeout(max(0.1, idle_seconds + 5 - (time.monotonic() - started)))
            closed += sock.recv(1) == b""
        except (TimeoutError, ConnectionError):
            pass
        finally:
            sock.close()
    report["closed by the server"] = closed
    report["all closed after (s)"] = round(time.monotonic() - started + 1.0, 1)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests in the load test")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--stalled", type=int, default=200, help="silent sockets in the stalled-client check")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="the server's idle timeout (SOCKET_TIMEOUT)")
    parser.add_argument("--pid", type=int, default=None,
                        help="with --port: the server's process id, to count its threads")
    parser.add_argument("--raw", action="store_true",
                        help="send the PNG's bytes instead of the page's JSON (what older versions of the demo took)")
    parser.add_argument("--port", type=int, default=None,
                        help="a demo already running on 127.0.0.1 (default: start one on a free port)")
    args = parser.parse_args(argv)
    if not (0 < args.requests <= 100_000 and 0 < args.clients <= 256 and 0 <= args.stalled <= 1000):
        sys.exit("Keep the test bounded: at most 100,000 requests, 256 clients and 1,000 stalled sockets.")
    url = "data:image/png;base64," + base64.b64encode(drawing_png()).decode()
    body = drawing_png() if args.raw else json.dumps({"image": url, "mode": "36"}).encode()
    port = args.port or free_port()
    proc = None if args.port else start_demo(port)
    pid = proc.pid if proc else args.pid
    try:
        one_request(port, body)  # warm up
        threads_before = server_threads(pid) if pid else None
        latencies, errors, wall = load(port, args.requests, args.clients, body)
        print(f"load: {args.requests} requests, {args.clients} clients, 127.0.0.1:{port}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"  {len(latencies) / wall:.1f} requests/s, p50 {1000 * statistics.median(latencies):.0f} ms, "
              f"p99 {1000 * percentile(latencies, 99):.0f} ms, errors: {sum(errors.values())} {errors or ''}")
        if pid:
            print(f"  server threads: {threads_before} before the load, {server_threads(pid)} after")
        if args.stalled:
            report = stalled(port, args.stalled, body, pid, args.idle_seconds)
            print("stalled clients:")
            for key, value in report.items():
                print(f"  {key}: {value}")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
            leftover = proc.stderr.read().strip()
            if leftover:
                print(f"server stderr:\n{leftover}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
