# gensynth-course: two commands for a fresh machine.
#   make lab    set up, then open JupyterLab on chapters/
#   make test   set up, then unit tests and nbval over every chapter at the quick budget
#   make book   execute the chapters (cached) and render the book into _build/book/

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch 2.14.1 / torchvision 0.29.1 are known-good together (torch.org's CUDA build also runs on CPU).
TORCH  ?= torch==2.14.1 torchvision==0.29.1
BUDGET ?= standard
# Debian packages installed when the set-up runs as root on Debian or Ubuntu: the data set for
# everyone; a local MathJax and Chromium for the book and its browser test.
DATA_DEBS := dataset-fashion-mnist
BOOK_DEBS := libjs-mathjax chromium
APT_GET   := DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: lab test book setup data book-deps sync clean help

help:
	@echo "make lab    - set up .venv, make sure Fashion-MNIST is there, open JupyterLab on chapters/"
	@echo "make test   - same set-up, then unit tests and every chapter through nbval (quick budget)"
	@echo "make book   - render the book into _build/book/ (BUDGET=standard by default, BUDGET=quick to check)"
	@echo "make sync   - re-pair chapters/*.py with chapters/*.ipynb (jupytext)"

setup: $(STAMP) data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(TORCH)
	$(PY) -m pip install -e '.[test,book]'
	touch $(STAMP)

# On Debian as root, install the packaged dataset; elsewhere torchvision downloads it on first use.
data: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s $(DATA_DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && $(APT_GET) install -y -qq $(DATA_DEBS) >/dev/null; fi
	$(PY) -m gensynth_course data

# The book's MathJax and Chromium (elsewhere: see README, "The book").
book-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s $(BOOK_DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && $(APT_GET) install -y -qq $(BOOK_DEBS) >/dev/null; fi

lab: setup
	$(VENV)/bin/jupyter lab chapters/

# Unit tests, then every chapter notebook executed end to end by nbval (outputs are not compared).
test: setup book-deps
	$(PY) -m pytest tests -q
	GENSYNTH_BUDGET=quick GENSYNTH_HEADLESS=1 MPLBACKEND=Agg \
		$(PY) -m pytest --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider chapters/*.ipynb -q

book: setup book-deps
	$(PY) -m gensynth_course book --budget $(BUDGET)

sync:
	$(VENV)/bin/jupytext --sync chapters/*.py

clean:
	rm -rf _build .pytest_cache
