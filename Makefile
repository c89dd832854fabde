# Every target sets itself up: a fresh clone needs only python3 (3.11+) and pip's registry.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: quickstart test test-fast durations lint bench docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch and torchvision as a matched pair (the CUDA wheels run on CPU); newer pairs are not supported here
	$(PY) -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/streamsim run quickstart

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Two xdist workers, each test file whole on one of them (module fixtures are built once), the
# files that tests/durations.txt shows slowest first (tests/conftest.py orders them).
PYTEST := $(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

# Everything: lint, the import-layering contract (pyproject's [tool.importlinter]), every test.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PYTEST)

# The same minus the tests marked slow (SIGKILLed sweeps, Ray, fuzzing, anything over ~20 s).
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PYTEST) -m "not slow"

# Rewrites tests/durations.txt (its comment lines kept) from one `make test`-style run: its 25 slowest
# tests, whose files tests/conftest.py hands to the workers first.
durations: $(STAMP)
	log=$$(mktemp) && $(PYTEST) --durations=25 > $$log && { grep '^#' tests/durations.txt | grep -v '^# last run:'; \
	  grep -E '^[0-9.]+s (setup|call|teardown) ' $$log; tail -n 1 $$log | sed 's/^=* */# last run: /; s/ =*$$//'; } > $$log.txt && \
	  mv $$log.txt tests/durations.txt && rm $$log

# The documentation site, into site/, offline. Strict: a broken link or anchor, a page the nav omits, a
# docstring mkdocstrings cannot read fails the build (tests/test_docs.py builds it the same way in `make test`).
# NO_MKDOCS_2_WARNING: mkdocs-material's banner about its end of life, printed on every build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --clean --site-dir site

# The speed benchmarks, each printing ratios against a reference measured in the same run. The paper
# reproductions and the README's result regenerators (hours) are in experiments/, run one by one.
bench: $(STAMP)
	# the FGSM benchmark's reference; its requests pin is stale (it never imports requests) and clashes with the docs'
	$(PY) -m pip install -q --no-deps "torchattacks>=3.5,<3.6"
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs sweeps site .streamsim-cache
