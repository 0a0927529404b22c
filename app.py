"""The web demo: `python app.py`, then open http://127.0.0.1:8000/ (`--help` lists the options).

A local demo for your own browser, not a public server (see helpers/webapp.py).
"""

import contextlib
import os
import sys


def bounded_malloc():
    """Start again with MALLOC_ARENA_MAX=2, before torch and the threads exist.

    glibc gives each thread that meets a busy allocator an arena of its own and rarely hands the
    memory back: big pictures then ratchet the server's memory up (5 GB after 40 image bombs with
    16 threads). glibc reads the variable only when the process starts, hence the re-exec (same
    process id, same arguments). Set MALLOC_ARENA_MAX yourself to choose another value.
    """
    if sys.platform.startswith("linux") and "MALLOC_ARENA_MAX" not in os.environ:
        os.environ["MALLOC_ARENA_MAX"] = "2"
        with contextlib.suppress(OSError):  # else run on without it
            os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


if __name__ == "__main__":
    bounded_malloc()
    from helpers.webapp import main

    sys.exit(main())
