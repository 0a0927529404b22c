# Two commands do everything: `make run` (the whole notebook on the full data) and `make test`.
# Each builds the virtual environment from requirements.txt first if needed.
# The data folder defaults to data/; point HCR_DATA_DIR elsewhere (for example ../shared/datasets).

VENV ?= .venv
PY := $(VENV)/bin/python
NOTEBOOK := Handwritten_Character_Recognition.ipynb
LINES_NOTEBOOK := Reading_Handwritten_Lines.ipynb

.PHONY: run run-lines data test lint browser benchmark fonts generalisation experiments clean

$(VENV)/installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e . --no-deps
	touch $@

# Before a 9-minute run: are the data files there? If not, download them; if that fails too,
# print the one sentence that names every missing file and stop (exit 2), with no traceback.
define CHECK_DATA
import sys
from helpers import data
from helpers.errors import HCRError
if data.missing_files(kinds=data.ALL_KINDS):
    print("Data files are missing: downloading MNIST and EMNIST (a 536 MB archive) ...", flush=True)
    try:
        data.require_files(data.ALL_KINDS)
    except HCRError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
endef
export CHECK_DATA

data: $(VENV)/installed  ## MNIST and EMNIST Letters: checked, downloaded if missing, or every missing file named
	@$(PY) -c "$$CHECK_DATA"

# nbconvert runs the notebook; then tidy_notebook drops what changes at every run without a
# change in content (widget state, timestamps). Curve-encrypted kernel sockets: no TCP warning.
run: data fonts  ## train on the full data, rewrite assets/ and runs/, save outputs in the notebook
	HCR_SMOKE=0 $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 \
		--KernelManager.transport_encryption=auto "$(NOTEBOOK)"
	$(PY) -c "import sys; from helpers.records import tidy_notebook; tidy_notebook(sys.argv[1])" "$(NOTEBOOK)"

run-lines: data fonts  ## the lines chapter: trains the CRNN (15 min), rewrites its figures, lines.json and runs/lines.pt
	HCR_SMOKE=0 $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 \
		--KernelManager.transport_encryption=auto "$(LINES_NOTEBOOK)"
	$(PY) -c "import sys; from helpers.records import tidy_notebook; tidy_notebook(sys.argv[1])" "$(LINES_NOTEBOOK)"

test: $(VENV)/installed browser  ## pytest for helpers, nbval for the notebook (smoke mode), browser tests
	$(PY) -m pytest

lint: $(VENV)/installed  ## ruff, with the settings in pyproject.toml
	$(PY) -m ruff check .

browser:  ## Debian's chromium for the browser tests, when this machine lets us install it
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium is not installed: the browser tests will be skipped"

benchmark: $(VENV)/installed  ## the original recipe against the default recipe, 3 seeds (about 35 min)
	$(PY) -m benchmarks.speed_accuracy

fonts: $(VENV)/installed  ## the handwriting fonts of the characters-from-elsewhere sets, from npm (needs npm)
	$(PY) -m benchmarks.fonts

generalisation: fonts  ## characters from elsewhere through the predict command
	$(PY) -m benchmarks.generalisation

experiments: fonts  ## the recorded runs the notebook quotes (about 65 min)
	$(PY) -m benchmarks.specialists
	$(PY) -m benchmarks.framing
	$(PY) -m benchmarks.ablation

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache *.egg-info
