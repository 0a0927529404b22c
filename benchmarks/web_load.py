"""A bounded load test of the web demo under attack, on this machine only (127.0.0.1).

    python -m benchmarks.web_load                            # starts `python app.py` on a free port, then stops it
    python -m benchmarks.web_load --requests 2000 --clients 16 --slow-headers 16 --slow-bodies 16 --bombs 100
    python -m benchmarks.web_load --port 8000 --pid PID      # a demo you started yourself on 127.0.0.1

While N POST /predict requests (a drawn "7", as the page sends it) come from C concurrent clients,
and at the same time:
- slow-header clients send their headers one byte every second (each is closed by the server,
  then connects again);
- slow-body clients send complete headers and then a body one byte every second;
- a bomb loop sends small files that decode to many megapixels (PNG and JPEG, some over the
  demo's 16-megapixel cap, some just under it), one after the other, until it has sent --bombs.
It prints requests/s, p50 and p99 latency and the errors of the normal requests, what the slow
clients and the bombs got, the server's threads, and its memory (RSS) before, after the bombs and
at its peak. Every loop is bounded; it never talks to another machine.
"""

import argparse
import base64
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def drawing_png(size=280, pen=18):
    """A PNG of a hand-drawn-looking "7", black on white, as the page's canvas sends it."""
    image = Image.new("L", (size, size), 255)
    ImageDraw.Draw(image).line([(70, 70), (210, 70), (120, 220)], fill=0, width=pen, joint="curve")
    buffer = io.BytesIO()
    image.convert("RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def bombs():
    """(name, bytes, content type) of small files that decode to many pixels."""
    made = []
    for name, mode, size, kind in [("100 MP PNG", "1", (10000, 10000), "PNG"),
                                   ("16 MP PNG", "L", (4000, 4000), "PNG"),
                                   ("15.9 MP RGBA PNG", "RGBA", (3990, 3990), "PNG"),
                                   ("16 MP JPEG", "L", (4000, 4000), "JPEG"),
                                   ("wide 16 MP PNG", "L", (16000, 1000), "PNG")]:
        buffer = io.BytesIO()
        image = Image.new(mode, size, 255 if mode == "L" else 0)
        image.save(buffer, kind, **({"quality": 10} if kind == "JPEG" else {}))
        made.append((name, buffer.getvalue(), "image/png" if kind == "PNG" else "image/jpeg"))
    return made


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


def proc_status(pid, field):
    """A number from /proc/PID/status (Threads, VmRSS and VmHWM in kB), or None when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, TypeError):
        return None
    return None


def memory(pid, field="VmRSS"):
    kb = proc_status(pid, field)
    return "unknown" if kb is None else f"{kb / 1024:.0f} MB"


def _mb(text):
    """'704 MB' -> 704 (None when unknown)."""
    return int(text.split()[0]) if text != "unknown" else None


def one_request(port, body, content_type, path="/predict", timeout=30):
    """(seconds, status, JSON or None); status is the error's name when there was no answer."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        payload = response.read()
        status, answer = response.status, json.loads(payload)
    except (OSError, http.client.HTTPException, ValueError) as error:
        status, answer = type(error).__name__, None
    finally:
        conn.close()
    return time.perf_counter() - started, status, answer


def load(port, requests, clients, body, content_type):
    """Send `requests` requests from `clients` threads; latencies (s), errors, wall time."""
    latencies, errors, lock = [], Counter(), threading.Lock()
    todo = iter(range(requests))

    def client():
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            seconds, status, answer = one_request(port, body, content_type)
            with lock:
                latencies.append(seconds)
                if status != 200 or not answer or "label" not in answer:
                    errors[f"HTTP {status}" if isinstance(status, int) else status] += 1

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


def slow_client(port, first, rest, stop, report, every=1.0, limit=600):
    """Send `first` at once, then `rest` one byte every `every` s, until the server answers or closes;
    then again, until `stop` (at most `limit` connections). Records how long each connection lasted."""
    for _ in range(limit):
        if stop.is_set():
            return
        started = time.monotonic()
        try:
            with socket.create_connection((HOST, port), timeout=30) as sock:
                sock.sendall(first)
                sock.settimeout(every)
                for byte in rest:
                    if stop.is_set():
                        report["still open at the end"] += 1
                        break
                    try:
                        reply = sock.recv(4096)
                    except TimeoutError:
                        sock.sendall(bytes([byte]))
                        continue
                    report["answered " + (reply.split(b" ")[1].decode() if reply else "closed")] += 1
                    break
        except OSError as error:
            report[type(error).__name__] += 1
        report["seconds held"] += time.monotonic() - started


def bomb_loop(port, count, pid, stop_early, report):
    """Send `count` bombs one after the other (cycling through bombs() and the three modes); RSS after them."""
    made = bombs()
    modes = ["36", "case", "text"]
    for i in range(count):
        if stop_early.is_set():
            break
        name, data, kind = made[i % len(made)]
        _, status, answer = one_request(port, data, kind, path=f"/predict?mode={modes[i % 3]}", timeout=60)
        report[f"{name}: {status}"] += 1
    report["RSS after the bombs"] = memory(pid)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="normal requests (drawings)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients for them")
    parser.add_argument("--slow-headers", type=int, default=16, help="clients that send their headers a byte a second")
    parser.add_argument("--slow-bodies", type=int, default=16, help="clients that send their body a byte a second")
    parser.add_argument("--bombs", type=int, default=100, help="image bombs sent one after the other")
    parser.add_argument("--raw", action="store_true",
                        help="send the PNG's bytes (image/png) instead of the page's JSON")
    parser.add_argument("--port", type=int, default=None,
                        help="a demo already running on 127.0.0.1 (default: start one on a free port)")
    parser.add_argument("--pid", type=int, default=None, help="with --port: the server's process id, for its memory")
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole test, each with a new server")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the measurements here (docs/web_demo.md quotes assets/web_load.json)")
    args = parser.parse_args(argv)
    if not (0 < args.requests <= 100_000 and 0 < args.clients <= 256 and 0 <= args.slow_headers <= 256
            and 0 <= args.slow_bodies <= 256 and 0 <= args.bombs <= 1000 and 1 <= args.runs <= 10):
        sys.exit("Keep the test bounded: at most 100,000 requests, 256 clients and slow clients of each kind, "
                 "and 1,000 bombs, in at most 10 runs.")
    png = drawing_png()
    if args.raw:
        body, content_type = png, "image/png"
    else:
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        body, content_type = json.dumps({"image": url, "mode": "36"}).encode(), "application/json"
    runs = []
    for _ in range(args.runs):
        port = args.port or free_port()
        proc = None if args.port else start_demo(port)
        try:
            runs.append(attack(args, port, proc.pid if proc else args.pid, body, content_type))
        finally:
            if proc:
                proc.terminate()
                proc.wait(timeout=10)
                leftover = proc.stderr.read().strip()
                if leftover:
                    print(f"server stderr:\n{leftover}")
    if args.runs > 1:
        p99 = sorted(r["p99_ms"] for r in runs)
        print(f"{args.runs} runs: p99 {', '.join(map(str, p99))} ms (median {statistics.median(p99):.0f} ms); "
              f"errors {sum(r['errors'] for r in runs)}; RSS after the bombs at most "
              f"{max(r['rss_mb_after_bombs'] or 0 for r in runs)} MB")
    if args.json:
        command = "python -m benchmarks.web_load " + " ".join(argv if argv is not None else sys.argv[1:])
        record = {"command": command, "machine": f"{os.cpu_count()} cores, nothing else running",
                  "runs": runs, "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
                  "p99_ms_worst": max(r["p99_ms"] for r in runs), "errors": sum(r["errors"] for r in runs),
                  "rss_mb_after_bombs_worst": max(r["rss_mb_after_bombs"] or 0 for r in runs)}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def attack(args, port, pid, body, content_type):
    """One load test against the demo at `port`: prints what happened and returns it as a dict."""
    for _ in range(3):
        one_request(port, body, content_type)  # warm up
    rss_before, threads_before = memory(pid), proc_status(pid, "Threads")
    stop, headers_report, bodies_report, bomb_report = threading.Event(), Counter(), Counter(), Counter()
    head = f"POST /predict HTTP/1.1\r\nHost: {HOST}:{port}\r\n".encode()
    slow_head = (head, b"Content-Type: application/json\r\nX-Slow: " + b"a" * 500, headers_report)
    slow_body = (head + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n", b"{" * 100000,
                 bodies_report)
    attackers = [threading.Thread(target=slow_client, args=(port, first, rest, stop, report), daemon=True)
                 for first, rest, report in [slow_head] * args.slow_headers + [slow_body] * args.slow_bodies]
    bomber = threading.Thread(target=bomb_loop, args=(port, args.bombs, pid, threading.Event(), bomb_report))
    for thread in attackers:
        thread.start()
    bomber.start()
    time.sleep(1.0)  # every attacker is connected
    latencies, errors, wall = load(port, args.requests, args.clients, body, content_type)
    threads_during = proc_status(pid, "Threads")
    bomber.join(timeout=600)
    stop.set()
    for thread in attackers:
        thread.join(timeout=5)
    print(f"load: {args.requests} requests ({'raw PNG' if args.raw else 'JSON'}), {args.clients} clients, "
          f"127.0.0.1:{port}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  while {args.slow_headers} slow-header clients, {args.slow_bodies} slow-body clients "
          "and a bomb loop ran")
    print(f"  {len(latencies) / wall:.1f} requests/s, p50 {1000 * statistics.median(latencies):.0f} ms, "
          f"p99 {1000 * percentile(latencies, 99):.0f} ms, max {1000 * max(latencies):.0f} ms, "
          f"errors: {sum(errors.values())} {dict(errors) or ''}")
    answers = {}
    for title, report in [("slow-header clients", headers_report), ("slow-body clients", bodies_report)]:
        connections = sum(v for k, v in report.items() if k != "seconds held")  # each counted once
        held = report["seconds held"] / max(1, connections)
        answers[title] = {k: v for k, v in report.items() if k != "seconds held"} | {"seconds_held": round(held, 1)}
        print(f"{title}: {connections} connections, each held {held:.1f} s on average; {answers[title]}")
    rss_after = bomb_report.pop("RSS after the bombs", "unknown")
    peak = memory(pid, "VmHWM")
    print(f"bombs ({sum(bomb_report.values())} sent): {dict(bomb_report)}")
    print(f"server: threads {threads_before} before, {threads_during} during the load; "
          f"RSS {rss_before} before, {rss_after} after the bombs, peak {peak}")
    return {"requests_per_s": round(len(latencies) / wall, 1), "p50_ms": round(1000 * statistics.median(latencies)),
            "p99_ms": round(1000 * percentile(latencies, 99)), "max_ms": round(1000 * max(latencies)),
            "errors": sum(errors.values()), "bomb_answers": dict(bomb_report),
            "slow_header_answers": answers["slow-header clients"], "slow_body_answers": answers["slow-body clients"],
            "rss_mb_before": _mb(rss_before), "rss_mb_after_bombs": _mb(rss_after), "rss_mb_peak": _mb(peak),
            "threads": threads_during}


if __name__ == "__main__":
    sys.exit(main())
