# The two commands of the README: `make demo` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.jat-installed

.PHONY: setup demo test lint

setup: $(STAMP)

# torch first, pinned to the local CPU wheel: anything that pulls a newer torch would bring CUDA packages.
$(STAMP): pyproject.toml packages/*/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e packages/jat-core -e packages/jat-codecs -e "packages/jat-envs[all]" -e packages/jat-train -e ".[dev]"
	touch $(STAMP)

# The main job, on CPU with no hub: collect expert data locally, train a small JAT on all of it, evaluate it,
# write runs/demo/report.md (the folder is made anew each time). Override e.g. `make demo DEMO_STEPS=500` for a quicker run.
DEMO_OUT ?= runs/demo
DEMO_BABYAI ?= babyai-go-to-red-ball-no-dists,babyai-go-to-obj,babyai-open-door
DEMO_METAWORLD ?= metaworld-reach,metaworld-reach-wall,metaworld-door-close
DEMO_TASKS := $(DEMO_BABYAI),$(DEMO_METAWORLD)
DEMO_STEPS ?= 2000
DEMO_EPISODES ?= 20

demo: setup
	rm -rf $(DEMO_OUT)  # each demo starts afresh
	$(VENV)/bin/jat-plugins
	$(VENV)/bin/jat-collect --tasks $(DEMO_BABYAI) --episodes 1000 --out $(DEMO_OUT)/data --seed 0
	$(VENV)/bin/jat-collect --tasks $(DEMO_METAWORLD) --episodes 100 --out $(DEMO_OUT)/data --seed 0
	$(VENV)/bin/jat-train --tasks $(DEMO_TASKS) --data $(DEMO_OUT)/data --preset tiny --tokenizer bpe:512 \
		--max-steps $(DEMO_STEPS) --batch-size 16 --learning-rate 1e-3 --warmup-steps 100 --seed 0 \
		--output-dir $(DEMO_OUT)/train --save-every 500 --save-total-limit 2 --log-every 20 --num-threads 1
	$(VENV)/bin/jat-eval --model $(DEMO_OUT)/train/checkpoint-$(DEMO_STEPS) --tasks $(DEMO_TASKS) \
		--episodes $(DEMO_EPISODES) --num-envs 10 --seed 1000 --out $(DEMO_OUT)/eval
	$(VENV)/bin/jat-report --run $(DEMO_OUT)/train --eval $(DEMO_OUT)/eval --out $(DEMO_OUT)

test: setup
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check packages tests bench
