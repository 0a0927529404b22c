"""pytest setup for the notebook run by nbval (helpers' fixtures are in tests/conftest.py)."""

import os

# The kernel inherits this: the notebook trains on small subsets and writes figures to a
# temporary folder, so tests never overwrite assets/ and finish in minutes.
os.environ.setdefault("HCR_SMOKE", "1")


def pytest_collectstart(collector):
    # Progress bars and warnings go to stderr and differ from run to run.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_collection_modifyitems(config, items):
    # Without the data files the notebook cannot run (and should not download 560 MB inside a
    # test): skip it with the fix, unless CI demands it (HCR_REQUIRE_DATA=1).
    import pytest

    from helpers import data

    if os.environ.get("HCR_REQUIRE_DATA") == "1" or not data.missing_files():
        return
    skip = pytest.mark.skip(reason="the notebook needs MNIST and EMNIST Letters: set HCR_DATA_DIR to their folder, "
                                   "or run `make run` once online to download them into data/")
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(skip)
