# make demo  — create .venv, install, prepare the synthetic default, train + evaluate both variants
# make test  — create .venv if needed and run the test suite
# make lint  — ruff: lint and format check (the settings in pyproject.toml)
# make test-fast — the same without the tests marked slow (trainings, torchrun, sweeps, CLI round trips)
# make study — the robustness study (curves over k, paired comparisons, poisoning grid) and its report
# make docs  — rewrite the results tables of README.md and docs/ from the JSON records in docs/results/data/
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo quality study test test-fast lint bench docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

DEMO := outputs/demo

demo: $(STAMP)
	$(BIN)/emotic-mm prepare
	rm -rf $(DEMO)
	$(BIN)/emotic-mm train model=baseline hydra.run.dir=$(DEMO)/train-baseline
	$(BIN)/emotic-mm train model=joint hydra.run.dir=$(DEMO)/train-joint
	$(BIN)/emotic-mm eval checkpoint=$(DEMO)/train-baseline/best hydra.run.dir=$(DEMO)/eval-baseline
	$(BIN)/emotic-mm eval checkpoint=$(DEMO)/train-joint/best hydra.run.dir=$(DEMO)/eval-joint
	$(BIN)/python scripts/compare.py $(DEMO)/eval-baseline $(DEMO)/eval-joint

# The README's quality table: image-only, text-only, baseline and joint on the synthetic default.
QUALITY := outputs/quality

quality: $(STAMP)
	$(BIN)/emotic-mm prepare
	rm -rf $(QUALITY)
	$(BIN)/emotic-mm train model=baseline model.modalities=[context,body] hydra.run.dir=$(QUALITY)/train-image
	$(BIN)/emotic-mm train model=baseline model.modalities=[text] hydra.run.dir=$(QUALITY)/train-text
	$(BIN)/emotic-mm train model=baseline hydra.run.dir=$(QUALITY)/train-baseline
	$(BIN)/emotic-mm train model=joint hydra.run.dir=$(QUALITY)/train-joint
	for r in image text baseline joint; do \
	  $(BIN)/emotic-mm eval checkpoint=$(QUALITY)/train-$$r/best hydra.run.dir=$(QUALITY)/eval-$$r || exit 1; done
	$(BIN)/python scripts/compare.py $(QUALITY)/eval-image $(QUALITY)/eval-text $(QUALITY)/eval-baseline $(QUALITY)/eval-joint --markdown

# The robustness study: the evasion sweep (3 seeds x 2 variants x image-only/fused x 5 cases), the poisoning
# sweep, and the report. STUDY_PRESET=quick for the one-seed look (evasion only).
STUDY := outputs/study
STUDY_PRESET ?= full

study: $(STAMP)
	$(BIN)/emotic-mm prepare
	rm -rf $(STUDY)
	$(BIN)/emotic-mm attack -m experiment=robustness_study study=$(STUDY_PRESET) hydra.sweep.dir=$(STUDY)/evasion
	if [ "$(STUDY_PRESET)" = full ]; then \
	  $(BIN)/emotic-mm attack -m experiment=robustness_study study=poisoning hydra.sweep.dir=$(STUDY)/poisoning || exit 1; fi
	$(BIN)/emotic-mm report runs=$(STUDY)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python scripts/benchmarks/bench_prepare.py

docs:
	$(PYTHON) scripts/results_tables.py

clean:
	rm -rf outputs multirun data bench_results
