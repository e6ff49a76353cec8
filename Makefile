# The two commands a newcomer needs:  `make demo`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
EXTRAS ?= app,eval,train,dev,ct2,onnx,serve,pg,ray,ocr

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_torch.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	bash scripts/install_torch.sh $(PY)
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	$(BIN)/e5search setup
	touch $@

demo: setup  ## build the default model, index data/sample, open the app on http://127.0.0.1:8501
	$(BIN)/e5search demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup lint  ## everything CI runs
	bash scripts/install_browser.sh
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/bm25.py
	$(PY) bench/index.py

clean:
	rm -rf $(VENV) .e5search artifacts
