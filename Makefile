# gensynth-course: two commands for a fresh machine.
#   make lab    set up, then open JupyterLab on chapters/
#   make test   set up, then unit tests and nbval over every chapter at the quick budget

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch 2.14.1 / torchvision 0.29.1 are known-good together (torch.org's CUDA build also runs on CPU).
TORCH  ?= torch==2.14.1 torchvision==0.29.1
BUDGET ?= quick

.PHONY: lab test unit nbval setup data sync clean help

help:
	@echo "make lab    - set up .venv, make sure Fashion-MNIST is there, open JupyterLab on chapters/"
	@echo "make test   - same set-up, then unit tests and every chapter through nbval (quick budget)"
	@echo "make sync   - re-pair chapters/*.py with chapters/*.ipynb (jupytext)"

setup: $(STAMP) data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(TORCH)
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

# On Debian as root, install the packaged dataset; elsewhere torchvision downloads it on first use.
data: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; fi
	$(PY) -m gensynth_course data

lab: setup
	$(VENV)/bin/jupyter lab chapters/

# Unit tests, then every chapter notebook executed end to end by nbval (outputs are not compared).
test: setup
	$(PY) -m pytest tests -q
	GENSYNTH_BUDGET=$(BUDGET) GENSYNTH_HEADLESS=1 MPLBACKEND=Agg \
		$(PY) -m pytest --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider chapters/*.ipynb -q

sync:
	$(VENV)/bin/jupytext --sync chapters/*.py

clean:
	rm -rf _build .pytest_cache
