# snnta: `make demo` and `make test` set everything up on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
# the pinned CPU build of torch is installed first so the package's torch range needs nothing more
STAMP  := $(VENV)/.installed

.PHONY: install test demo demo-randman study clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,sweep]'
	# NIR interop peers (tests/interop): --no-deps, as norse declares torchvision, which would replace the CPU torch
	$(BIN)/pip install -q --disable-pip-version-check --no-deps nirtorch==2.6 snntorch==1.0.0 norse==1.1.0
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# Main job: for LIF and adLIF, train at 4 ms on the small offline spoken-digits set (built on first use),
# adapt with every method and both spike steps to 1, 2, 4 and 8 ms, evaluate, then write the table and
# the plot under results/demo/.
DEMO_RUNS ?= runs/demo
DEMO_DATA ?= dataset=spoken_digits_small train.epochs=80
demo: $(STAMP)
	$(call study,$(DEMO_RUNS),$(DEMO_DATA),results/demo,spoken_digits_small: trained at 4 ms and adapted zero-shot)

# The same study on the random-manifold timing task (dataset=randman, generated in-process).
demo-randman: $(STAMP)
	$(call study,runs/randman,dataset=randman,results/randman,randman: trained at 4 ms and adapted zero-shot)

define study
	rm -rf $(1)
	for n in lif adlif; do \
	  $(BIN)/snnta train neuron=$$n dt=4ms $(2) paths.runs=$(1) run_name=$$n || exit 1; \
	  $(BIN)/snnta adapt -m checkpoint=$(1)/train/$$n paths.runs=$(1) \
	    method=none,tau,integral,impulse,euler,expectation,bilinear tgt_dt=1ms,2ms,4ms,8ms spikes=bin,source \
	    hydra.sweep.dir=$(1)/adapt/$$n progress=false || exit 1; \
	done
	$(BIN)/snnta report dir=$(1) out=$(3) title="$(4)" timings=false
endef

# The study (issue 14, results/study/README.md): for each dataset the training sweeps (sources, oracles,
# the re-tuned oracles' search, mixed time-step networks), then the adaptation sweeps, then the report.  Hours of compute: stop it any
# time; the same command resumes (finished runs are skipped, interrupted ones continue from their last epoch).
# The report reads the published records.jsonl.gz back (archive=), so runs whose folders are gone stay in it.
STUDY_DATASETS ?= spoken_digits
STUDY_JOBS     ?= 2
study: $(STAMP)
	for d in $(STUDY_DATASETS); do \
	  for e in sources oracles retune mixed; do \
	    $(BIN)/snnta train -m +experiment=$${d}_$$e hydra.launcher.n_jobs=$(STUDY_JOBS) || exit 1; done; \
	  for e in adapt adapt_8ms adapt_mixed; do \
	    $(BIN)/snnta adapt -m +experiment=$${d}_$$e hydra.launcher.n_jobs=$(STUDY_JOBS) || exit 1; done; \
	done
	$(BIN)/snnta report dir=runs/study out=results/study title="snnta study: zero-shot adaptation across bin widths" \
	  $(if $(wildcard results/study/records.jsonl.gz),archive=results/study/records.jsonl.gz)

clean:
	rm -rf $(VENV) runs outputs multirun .pytest_cache
