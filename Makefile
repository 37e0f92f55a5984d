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

# The laptop profile's executed notebooks are the committed ones in notebooks/; other profiles
# write theirs (and their figures, see lib/onion_gru/report.py) under build/<profile>/.
ifeq ($(PROFILE),laptop)
NB_OUT := notebooks
else
NB_OUT := build/$(PROFILE)/notebooks
endif
# smoke models are never shipped: they live under build/
ifeq ($(PROFILE),smoke)
export ONION_GRU_DATA ?= $(CURDIR)/build/smoke-data
endif
# FRESH=1: an empty cache under build/fresh, so everything is retrained from scratch
ifdef FRESH
export ONION_GRU_DATA := $(CURDIR)/build/fresh/data
FORCE := force
endif

.DELETE_ON_ERROR:
.PHONY: reproduce train extensions test bench lab venv clean-build force
force: ;

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

train: $(STAMP)
	$(PY) -m onion_gru train --profile $(PROFILE) --workers $(WORKERS)

# Beyond the paper (notebooks 07, 08): the LSTM, Elman and GRU-size-grid profiles, into the same
# cache; then the two notebooks again.  Hours on 2 cores (README, "Beyond the paper"); never part of
# `make reproduce`, whose notebooks read these profiles' shipped results only.
extensions: $(STAMP)
	$(PY) -m onion_gru train --workers $(WORKERS) --profile \
	    $$($(PY) -c 'from onion_gru.profiles import EXTENSIONS; print(*EXTENSIONS)')
	rm -f build/$(PROFILE)/07_cells.done build/$(PROFILE)/08_size_grid.done
	$(MAKE) reproduce

# One stamp per executed notebook, under build/ (never committed): a fresh clone regenerates every
# notebook and figure, an interrupted run resumes with the notebooks not yet done, and a change to a
# notebook's source or to lib/ reruns it.
STAMPS := $(STEMS:%=build/$(PROFILE)/%.done)
reproduce: $(STAMPS)
	@echo "executed notebooks in $(NB_OUT)/; figures and tables: see the README"

# order-only: the train stage runs first, but a fresher cache alone does not rerun a notebook
build/$(PROFILE)/%.done: notebooks/src/%.py $(LIB) $(FORCE) | train
	@mkdir -p build/src build/$(PROFILE) $(NB_OUT)
	$(VENV)/bin/jupytext --quiet --to ipynb --set-kernel python3 -o build/src/$*.ipynb $<
	$(VENV)/bin/papermill build/src/$*.ipynb $(NB_OUT)/$*.ipynb -k python3 --cwd notebooks \
	    --no-progress-bar -p profile $(PROFILE)
	$(PY) -m onion_gru tidy-notebook $(NB_OUT)/$*.ipynb
	@touch $@

# Unit tests, then every notebook under the smoke profile through nbval (models trained on the
# fly into build/smoke-data, figures under build/smoke/).
test: $(STAMP)
	ONION_GRU_DATA=$(CURDIR)/build/smoke-data ONION_GRU_PROFILE=smoke $(PY) -m pytest tests \
	    --nbval-lax --nbval-current-env --nbval-cell-timeout 900 $(wildcard notebooks/[0-9][0-9]_*.ipynb)

bench: $(STAMP)
	$(PY) -m onion_gru bench

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean-build:
	rm -rf build
