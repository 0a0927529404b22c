"""The web demo: `python app.py`, then open http://127.0.0.1:8000/ (`--help` lists the options).

A local demo for your own browser, not a public server (see helpers/webapp.py).
"""

import sys

from helpers.webapp import main

if __name__ == "__main__":
    sys.exit(main())
