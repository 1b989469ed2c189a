# Two commands do all set-up: `make demo` (whole DAG on the built-in demo) and `make test`.
VENV ?= .venv
PYTHON ?= python3
CORES ?= $(shell nproc 2>/dev/null || echo 2)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# GPU users: make SPCONV=spconv-cu120 (matching your CUDA); the default is the CPU build.
SPCONV ?= spconv

.PHONY: venv demo demo-unsupervised test test-all lint bench bench-quick clean-results

$(STAMP): pyproject.toml scripts/check_system.sh
	bash scripts/check_system.sh
	$(PYTHON) -m venv $(VENV)
	# torch first: sam2 compiles against it (no build isolation, so no second torch download).
	$(PY) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	SAM2_BUILD_CUDA=0 $(PY) -m pip install --no-build-isolation "sam2>=1.0,<2"
	$(PY) -m pip install "$(SPCONV)>=2.3"
	$(PY) -m pip install -e ".[test]"
	$(PY) -c "import open3d, torch, sam2, segment_anything, spconv.pytorch, snakemake" \
		|| { echo "dependency import failed; see the messages above" >&2; exit 1; }
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --resources gpu=1
	$(VENV)/bin/snakemake --report results/report.html
	@echo "Open results/report.html (pictures, metrics, run times); tables in results/summary.md"

# The same rooms without boxes: unsupervised mode (results_unsupervised/).
demo-unsupervised: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --resources gpu=1 --configfile configs/unsupervised.yaml
	$(VENV)/bin/snakemake --report results_unsupervised/report.html --configfile configs/unsupervised.yaml

test: $(STAMP)
	$(VENV)/bin/pytest

test-all: $(STAMP)
	$(VENV)/bin/pytest -m "slow or not slow"

lint: $(STAMP)
	$(VENV)/bin/snakemake --lint

# Every benchmark, JSON results in benchmarks/results/, then the README's Performance rows made
# from them (long: the real-scan and NCut references take a while). bench-quick: short runs of
# every benchmark into benchmarks/out/quick/ (README untouched).
bench: $(STAMP)
	$(PY) benchmarks/run_all.py

bench-quick: $(STAMP)
	$(PY) benchmarks/run_all.py --quick

clean-results:
	rm -rf results results_unsupervised results_oracle_boxes .snakemake
