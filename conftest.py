"""pytest setup for the notebook run by nbval (helpers' fixtures are in tests/conftest.py)."""

import os

# The kernel inherits this: the notebook trains on small subsets and writes figures to a
# temporary folder, so tests never overwrite assets/ and finish in minutes.
os.environ.setdefault("HCR_SMOKE", "1")


def pytest_collectstart(collector):
    # Progress bars and warnings go to stderr and differ from run to run.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
