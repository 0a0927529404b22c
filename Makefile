# Two commands do everything: `make run`, `make run-case` and `make run-lines` (each chapter on the
# full data) and `make test` (`make test-quick` for the one-minute part).
# Each builds the virtual environment from requirements.txt first if needed.
# The data folder defaults to data/; point HCR_DATA_DIR elsewhere (for example ../shared/datasets).

VENV ?= .venv
PY := $(VENV)/bin/python
NOTEBOOK := Handwritten_Character_Recognition.ipynb
CASE_NOTEBOOK := Upper_and_Lower_Case.ipynb
LINES_NOTEBOOK := Reading_Handwritten_Lines.ipynb

.PHONY: run run-case run-lines data test test-quick lint browser benchmark fonts fonts-optional generalisation experiments clean

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

# nbconvert runs a chapter; record_run_time adds its time to assets/run_times.json; then tidy_notebook drops what changes at every run without a change
# in content (widget state, timestamps). Curve-encrypted kernel sockets: no TCP warning.
# where a full run records its time (run_times.json); the tests point it at a temporary folder
RECORDS ?= $(CURDIR)/assets

define execute
	HCR_SMOKE=0 $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 \
		--KernelManager.transport_encryption=auto "$(1)"
	$(PY) -c "import sys; from helpers import records; records.record_run_time(*sys.argv[1:]); \
		records.tidy_notebook(sys.argv[1])" "$(1)" "$(2)" "$(RECORDS)"
endef

run: data fonts-optional  ## chapter 1 (36 classes) on the full data: rewrites its figures, records and runs/default.pt
	$(call execute,$(NOTEBOOK),make run)

run-case: data fonts-optional  ## chapter 2 (upper and lower case): rewrites its figures, priors_case.json and runs/case.pt
	$(call execute,$(CASE_NOTEBOOK),make run-case)

run-lines: data fonts  ## chapter 3 (lines): fine-tunes the shipped reader (3 min), rewrites its figures (runs/lines.pt only with a half-point val lead)
	$(call execute,$(LINES_NOTEBOOK),make run-lines)

test: $(VENV)/installed browser  ## everything: helpers' tests, the chapters by nbval (smoke mode), browser tests
	$(PY) -m pytest

test-quick: $(VENV)/installed  ## the tests that run in about a minute: no full data, no notebook, no browser
	$(PY) -m pytest -m "not slow and not notebook and not browser"

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

# Chapters 1 and 2 run without the fonts (they then show the recorded font results): without npm,
# the one sentence of `benchmarks.fonts` says so, and the run goes on.
fonts-optional: $(VENV)/installed
	@$(PY) -m benchmarks.fonts || true

generalisation: fonts  ## characters from elsewhere through the predict command
	$(PY) -m benchmarks.generalisation

experiments: fonts  ## the long recorded runs: specialists and ablation (not quoted), framing (chapter 1 reads it); about 55 min
	$(PY) -m benchmarks.specialists
	$(PY) -m benchmarks.framing
	$(PY) -m benchmarks.ablation

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache *.egg-info
