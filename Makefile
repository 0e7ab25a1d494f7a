# gensynth-course: two commands for a fresh machine.
#   make lab    set up, then open JupyterLab on chapters/
#   make test   set up, then unit tests, every chapter headless (nbval), the book and every chapter
#               live in JupyterLab, all at the quick budget
#   make book   execute the chapters (cached) and render the book into _build/book/

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch 2.14.1 / torchvision 0.29.1 are known-good together (torch.org's CUDA build also runs on CPU).
TORCH  ?= torch==2.14.1 torchvision==0.29.1
# The versions the tests last passed with, every direct and transitive dependency pinned with its
# sha256 hashes: one lock file per platform and Python (`make lock` writes this machine's).
LOCK   := requirements/$(shell $(PYTHON) -c 'import platform, sys; print(f"{sys.platform}-{platform.machine()}-py{sys.version_info.major}{sys.version_info.minor}")').txt
# What a PyTorch asked for with TORCH=... replaces in the lock: PyTorch and its CUDA libraries.
TORCH_STACK := ^(torch|torchvision|triton|nvidia-|cuda-)
BUDGET ?= standard
PORT   ?= 8888
# Debian packages installed when the set-up runs as root on Debian or Ubuntu: the data set for
# everyone; a local MathJax and Chromium for the book and the browser tests.
DATA_DEBS := dataset-fashion-mnist
BOOK_DEBS := libjs-mathjax chromium
APT_GET   := DEBIAN_FRONTEND=noninteractive apt-get
# Jupyter refuses to start as root without --allow-root (containers, the Debian set-up below).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
# How notebooks are stored in git: outputs and the kernel's language_info stripped, cell ids kept.
NBSTRIP   := '$(abspath $(VENV))/bin/nbstripout' --keep-id --extra-keys metadata.language_info
# nbgrader's server extensions (its formgrader and assignment lists), off in the learners' JupyterLab.
NBGRADER_SERVER := $(addprefix nbgrader.server_extensions.,formgrader validate_assignment assignment_list course_list)
NBVAL_ENV := GENSYNTH_BUDGET=quick GENSYNTH_HEADLESS=1 MPLBACKEND=module://matplotlib_inline.backend_inline \
             PYTHONPATH=tests/live

.PHONY: lab test book assignments setup data git-filter book-deps sync lock clean help

help:
	@echo "make lab    - set up .venv, make sure Fashion-MNIST is there, open JupyterLab on chapters/"
	@echo "make test   - same set-up, then unit tests, the chapters headless and live, and the book (quick budget)"
	@echo "make book   - render the book into _build/book/ (BUDGET=standard by default, BUDGET=quick to check)"
	@echo "make sync   - re-pair chapters/*.py with chapters/*.ipynb (jupytext)"
	@echo "make assignments - nbgrader assignments of the exercises in _build/assignments/ (source and release)"
	@echo "make lock   - refresh this platform's lock file ($(LOCK)) with the newest allowed versions"

setup: $(STAMP) data git-filter

# From the lock file when there is one for this platform (hashes checked, nothing resolved anew);
# with TORCH=... on the command line, that PyTorch and the rest from the lock; without a lock, the
# newest versions pyproject.toml allows.
$(STAMP): pyproject.toml $(wildcard $(LOCK))
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	@if [ -f $(LOCK) ] && [ "$(origin TORCH)" = file ]; then \
		echo "Installing the tested versions of $(LOCK)"; \
		$(PY) -m pip install --require-hashes --no-deps -r $(LOCK) && \
		$(PY) -m pip install --no-deps --no-build-isolation -e .; \
	elif [ -f $(LOCK) ]; then \
		echo "Installing $(TORCH) as asked, and everything else from $(LOCK)"; \
		awk '/^[a-z0-9]/ { skip = $$0 ~ /$(TORCH_STACK)/ } !skip' $(LOCK) > $(VENV)/lock-without-torch.txt && \
		$(PY) -m pip install --require-hashes --no-deps -r $(VENV)/lock-without-torch.txt && \
		$(PY) -m pip install $(TORCH) && \
		$(PY) -m pip install --no-deps --no-build-isolation -e .; \
	else \
		echo "No lock file for this platform ($(LOCK)): installing the newest versions pyproject.toml allows"; \
		$(PY) -m pip install $(TORCH) && $(PY) -m pip install -e '.[test,book,teach]'; \
	fi
	$(PY) -m pip check
	@# nbgrader's JupyterLab panels stay off for learners (a teacher's guide says how to turn them on)
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null
	$(VENV)/bin/jupyter server extension disable --sys-prefix $(NBGRADER_SERVER) >/dev/null
	touch $(STAMP)

# On Debian as root, install the packaged dataset; elsewhere torchvision downloads it on first use.
data: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s $(DATA_DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && $(APT_GET) install -y -qq $(DATA_DEBS) >/dev/null; fi
	$(PY) -m gensynth_course data

# In a git checkout: store notebooks without outputs, whatever JupyterLab saved (.gitattributes
# names the filter; git cannot commit a filter's command, so the set-up configures it).
git-filter: $(STAMP)
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git config filter.nbstripout.clean "$(NBSTRIP)" && \
		git config filter.nbstripout.smudge cat && \
		git config diff.ipynb.textconv "$(NBSTRIP) -t"; fi

# The book's MathJax and Chromium (elsewhere: see README, "The book").
book-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s $(BOOK_DEBS) >/dev/null 2>&1; then \
		apt-get update -qq && $(APT_GET) install -y -qq $(BOOK_DEBS) >/dev/null; fi

lab: setup
	@echo "JupyterLab is starting on chapters/; open http://127.0.0.1:$(PORT)/lab with the token it prints below"
	@echo "(make lab PORT=8890 if $(PORT) is taken; Ctrl-C twice stops it)."
	$(VENV)/bin/jupyter lab chapters/ --port=$(PORT) --ServerApp.port_retries=0 $(ROOT_FLAG)

# 1. unit tests; 2. every chapter headless through nbval, keeping its outputs in _build/run/;
# 3. the book rendered from those outputs, then every chapter live in JupyterLab (warm cache).
# Each stage ends with its slowest tests (--durations); the headless stage also with each chapter's time.
test: setup book-deps
	$(PY) -m pytest tests -q --ignore=tests/live --durations=15
	$(NBVAL_ENV) $(PY) -m pytest --nbval-lax --nbval-cell-timeout=600 -p nbval_record -p no:cacheprovider \
		chapters/*.ipynb -q --durations=5
	$(PY) -m pytest tests/live -q --durations=0

book: setup book-deps
	$(PY) -m gensynth_course book --budget $(BUDGET)

sync:
	$(VENV)/bin/jupytext --sync chapters/*.py

assignments: setup
	$(PY) -m gensynth_course assignments --out _build/assignments

# Resolve the newest versions pyproject.toml and TORCH allow, with pip-tools in a throwaway venv, into
# this platform's lock file; then run `make test` (it reinstalls from the new lock) before committing it.
lock:
	rm -rf _build/lock-venv && $(PYTHON) -m venv _build/lock-venv
	_build/lock-venv/bin/python -m pip install -q pip-tools
	@mkdir -p requirements
	printf '%s\n' $(TORCH) | _build/lock-venv/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --extra test --extra book --extra teach \
		--output-file $(LOCK) pyproject.toml -

clean:
	rm -rf _build .pytest_cache
