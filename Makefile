# snnta: `make demo` and `make test` set everything up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
# the pinned CPU build of torch is installed first so the package's torch range needs nothing more
STAMP  := $(VENV)/.installed

.PHONY: install test demo demo-clean clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Main job: for LIF and adLIF, train at 4 ms on the embedded dataset, adapt with every method and both
# spike steps to 1, 2, 4 and 8 ms, evaluate, then write the table and the plot under results/demo/.
DEMO_RUNS ?= runs/demo
demo: $(STAMP)
	rm -rf $(DEMO_RUNS)
	for n in lif adlif; do \
	  $(BIN)/snnta train neuron=$$n dt=4ms paths.runs=$(DEMO_RUNS) run_name=$$n || exit 1; \
	  $(BIN)/snnta adapt -m checkpoint=$(DEMO_RUNS)/train/$$n paths.runs=$(DEMO_RUNS) \
	    method=none,tau,integral,euler,expectation tgt_dt=1ms,2ms,4ms,8ms spikes=bin,source \
	    hydra.sweep.dir=$(DEMO_RUNS)/adapt/$$n progress=false || exit 1; \
	done
	$(BIN)/snnta report dir=$(DEMO_RUNS) out=results/demo title="randman: trained at 4 ms and adapted zero-shot"

clean:
	rm -rf $(VENV) runs outputs multirun .pytest_cache
