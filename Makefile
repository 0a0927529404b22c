# Two commands do everything: `make run` (the whole notebook on the full data) and `make test`.
# Each builds the virtual environment from requirements.txt first if needed.
# The data folder defaults to data/; point HCR_DATA_DIR elsewhere (for example ../shared/datasets).

VENV ?= .venv
PY := $(VENV)/bin/python
NOTEBOOK := Handwritten_Character_Recognition.ipynb

.PHONY: run test browser benchmark generalisation experiments clean

$(VENV)/installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/installed  ## train on the full data, rewrite assets/ and runs/, save outputs in the notebook
	HCR_SMOKE=0 $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 $(NOTEBOOK)

test: $(VENV)/installed browser  ## pytest for helpers, nbval for the notebook (smoke mode), browser tests
	$(PY) -m pytest

browser:  ## Debian's chromium for the browser tests, when this machine lets us install it
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium is not installed: the browser tests will be skipped"

benchmark: $(VENV)/installed  ## seed recipe vs default recipe, 3 seeds (about 47 min)
	$(PY) benchmarks/speed_accuracy.py

generalisation: $(VENV)/installed  ## characters from elsewhere through the predict command (needs npm)
	$(PY) benchmarks/generalisation.py

experiments: $(VENV)/installed  ## the recorded runs the notebook quotes (about 65 min)
	$(PY) benchmarks/specialists.py
	$(PY) benchmarks/framing.py
	$(PY) benchmarks/ablation.py

clean:
	rm -rf $(VENV) build .pytest_cache
