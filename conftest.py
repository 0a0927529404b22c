"""pytest setup for the chapters run by nbval (helpers' fixtures and markers are in tests/conftest.py)."""

import os

# The kernel inherits this: the notebook trains on small subsets and writes figures to a
# temporary folder, so tests never overwrite assets/ and finish in minutes.
os.environ.setdefault("HCR_SMOKE", "1")


def pytest_configure(config):
    # pytest.ini names the sanitize file relative to the project; nbval opens it relative to the
    # working directory. Make it absolute so the notebooks can be tested from any folder.
    path = config.getoption("nbval_sanitize_with", default=None)
    if path and not os.path.isabs(path):
        config.option.nbval_sanitize_with = str(config.rootpath / path)


def pytest_collectstart(collector):
    # Progress bars and warnings go to stderr and differ from run to run.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)


def pytest_itemcollected(item):
    # Every cell of a chapter is a `notebook` test: `pytest -m "not notebook"` leaves them out.
    if str(item.fspath).endswith(".ipynb"):
        import pytest

        item.add_marker(pytest.mark.notebook)


def skip_reason(missing, root):
    """Why the notebook is not run, and how to make it run, in one sentence."""
    kinds = " and ".join(dict.fromkeys(path.parent.parent.name for path in missing))
    return (f"the notebook was not run: {len(missing)} {kinds} data files are missing from {root} "
            f"(first: {missing[0].name}); set HCR_DATA_DIR to the folder that holds MNIST/ and EMNIST/, "
            "or run `make run` once online to download them into data/")


def pytest_collection_modifyitems(config, items):
    # Without the data files the notebook cannot run (and should not download 560 MB inside a
    # test): skip it with the fix, unless CI demands it (HCR_REQUIRE_DATA=1).
    import pytest

    from helpers import data

    missing = data.missing_files(kinds=data.ALL_KINDS)
    if os.environ.get("HCR_REQUIRE_DATA") == "1" or not missing:
        return
    skip = pytest.mark.skip(reason=skip_reason(missing, data.data_root()))
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(skip)
