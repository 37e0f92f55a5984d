# Two commands for a new user:  `make reproduce`  and  `make test`.  Both build .venv on first use.
PROFILE ?= laptop
PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
LIB     := $(wildcard lib/onion_gru/*.py)
NB_SRC  := $(sort $(wildcard notebooks/src/[0-9][0-9]_*.py))
STEMS   := $(notdir $(NB_SRC:.py=))
WORKERS ?= 2

# Where a profile's cache, figures and executed notebooks live are fields of its Profile
# (lib/onion_gru/profiles.py), read here through `onion_gru where`: the laptop profile's notebooks
# are the committed ones in notebooks/, the smoke profile's cache is build/smoke-data (never shipped).
WHERE = $(PY) -m onion_gru where --profile $(PROFILE)
# the profile's own cache unless the caller names one
DATA = ONION_GRU_DATA=$${ONION_GRU_DATA:-$(CURDIR)/$$($(WHERE) data)}
# FRESH=1: an empty cache under build/fresh, so everything is retrained from scratch
ifdef FRESH
export ONION_GRU_DATA := $(CURDIR)/build/fresh/data
FORCE := force
endif

.DELETE_ON_ERROR:
.PHONY: reproduce train extensions test bench docs lab venv pyvene clean-build force
force: ;

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

# the one entry point for compute: notebooks only read the cache
train: $(STAMP)
	$(DATA) $(PY) -m onion_gru train --profile $(PROFILE) --workers $(WORKERS)

# Beyond the paper (notebooks 07, 08, 12): the other cells', the GRU size grid's and the training
# dynamics' profiles (Profile.extensions), into the same cache; then those notebooks again.  Tens of
# core-hours on 2 cores (docs/beyond.md); never part of `make reproduce`, whose notebooks read these
# profiles' shipped results only.
extensions: $(STAMP)
	$(DATA) $(PY) -m onion_gru train --workers $(WORKERS) --profile $(PROFILE) --with-extensions
	rm -f build/$(PROFILE)/07_cells.done build/$(PROFILE)/08_size_grid.done build/$(PROFILE)/12_dynamics.done
	$(MAKE) reproduce

# One stamp per executed notebook, under build/ (never committed): a fresh clone regenerates every
# notebook and figure, an interrupted run resumes with the notebooks not yet done, and a change to a
# notebook's source or to lib/ reruns it.
STAMPS := $(STEMS:%=build/$(PROFILE)/%.done)
reproduce: $(STAMPS) docs
	@echo "executed notebooks in $$($(WHERE) notebooks)/; figures and tables: figures/, README.md and docs/"

# order-only: the train stage runs first, but a fresher cache alone does not rerun a notebook
build/$(PROFILE)/%.done: notebooks/src/%.py $(LIB) $(FORCE) | train
	@mkdir -p build/src build/$(PROFILE) $$($(WHERE) notebooks)
	$(VENV)/bin/jupytext --quiet --to ipynb --set-kernel python3 -o build/src/$*.ipynb $<
	$(DATA) $(VENV)/bin/papermill build/src/$*.ipynb $$($(WHERE) notebooks)/$*.ipynb -k python3 --cwd notebooks \
	    --no-progress-bar -p profile $(PROFILE)
	$(PY) -m onion_gru tidy-notebook $$($(WHERE) notebooks)/$*.ipynb
	@touch $@

# Unit tests, then every notebook under the smoke profile through nbval: the smoke profile and its
# extensions trained first by the one entry point into build/smoke-data (and pyvene's DAS runs when
# the extra is installed: `make pyvene`), figures under build/smoke/.
test: $(STAMP)
	data=$(CURDIR)/$$($(PY) -m onion_gru where --profile smoke data) && \
	ONION_GRU_DATA=$$data $(PY) -m onion_gru train --profile smoke --with-extensions --workers $(WORKERS) && \
	if $(PY) -c "import pyvene" > /dev/null 2>&1; then ONION_GRU_DATA=$$data $(PY) -m onion_gru das --profile smoke; fi && \
	ONION_GRU_DATA=$$data ONION_GRU_PROFILE=smoke $(PY) -m pytest tests \
	    --nbval-lax --nbval-current-env --nbval-cell-timeout 900 $(wildcard notebooks/[0-9][0-9]_*.ipynb)

# the tables of README.md and docs/, generated from figures/ (onion_gru.docs)
docs: $(STAMPS)
	$(PY) -m onion_gru docs

# the optional pyvene extra (pyproject.toml): tests/test_pyvene.py runs in `make test` once it is there
pyvene: $(VENV)/.pyvene
$(VENV)/.pyvene: $(STAMP)
	$(PY) -m pip install -q -e '.[dev,pyvene]'
	touch $@

bench: $(STAMP)
	$(PY) -m onion_gru bench

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean-build:
	rm -rf build
