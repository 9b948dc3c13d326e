# The two commands of the README: `make demo` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.jat-installed

# The only torch this machine may use (a local CPU wheel): anything that pulls a newer torch brings CUDA packages.
TORCH := torch==2.13.0
# The tested versions of every third-party distribution (`make lock` writes it); `make setup` installs exactly these.
CONSTRAINTS := constraints.txt
PACKAGES := -e packages/jat-core -e packages/jat-codecs -e "packages/jat-envs[all]" -e packages/jat-train -e ".[dev]"
# `pip freeze` of a venv without the editable jat-* packages, torch without its local label (+cpu).
FREEZE = python -m pip freeze --exclude-editable | grep -v -i -E '^(jat-|jat_|-e |\#)' | sed -E 's/^(torch==[^+]+)\+.*/\1/'

.PHONY: setup demo demo-all generalist test lint lock test-latest

setup: $(STAMP)

# torch first, then the packages, every third-party version pinned by $(CONSTRAINTS).
$(STAMP): pyproject.toml packages/*/pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH) -c $(CONSTRAINTS)
	$(PIP) install -q $(TORCH) $(PACKAGES) -c $(CONSTRAINTS)
	touch $(STAMP)

# Refresh $(CONSTRAINTS): a fresh venv with the newest releases the packages' metadata allow, frozen.
# Then run `make test` (it reinstalls from the new file) and commit constraints.txt once it passes.
LOCK_VENV ?= .venv-lock
lock:
	rm -rf $(LOCK_VENV)
	python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q $(TORCH)
	$(LOCK_VENV)/bin/python -m pip install -q $(TORCH) $(PACKAGES)
	{ echo "# Tested versions of every third-party distribution of the workspace; \`make setup\` installs with \`pip -c constraints.txt\`."; \
	  echo "# Produced by \`make lock\`: a fresh venv, $(TORCH) (the local CPU wheel), then the jat-* packages and"; \
	  echo "# the dev extra with the newest releases their metadata allow; this is its \`pip freeze\` without the editable"; \
	  echo "# jat-* packages (torch without its +cpu label). Refresh: \`make lock && make test\`, then commit this file."; \
	  PATH=$(CURDIR)/$(LOCK_VENV)/bin:$$PATH $(FREEZE); } > $(CONSTRAINTS).tmp
	grep -q '^$(TORCH)$$' $(CONSTRAINTS).tmp  # the freeze worked
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)

# The main job, on CPU with no hub: collect expert data locally, train a small JAT on all of it, evaluate it,
# write $(OUT)/report.md with the run's wall time (the folder is made anew each time). The default tasks cover
# BabyAI, Meta-World, MuJoCo and text; any comma list of tasks with an offline expert or a local sample source
# trains with the same recipe: `make demo TASKS=babyai-go-to-local,metaworld-push OUT=runs/mine`.
# `DEMO_STEPS=500` for a quick run.
TASKS ?= babyai-go-to-red-ball-no-dists,babyai-go-to-obj,metaworld-reach,metaworld-door-close,mujoco-pendulum,text-local
OUT ?= runs/demo
DEMO_STEPS ?= 6000
DEMO_EPISODES ?= 20
DEMO_SAMPLES ?= 200
# data per task: BabyAI episodes are a few steps long and their layouts random, so many (cheap) ones; a Meta-World
# episode is 100 steps, a MuJoCo one up to 1000; text: pieces of the standard library's docstrings
BABYAI_EPISODES ?= 10000
# ... but at most BABYAI_STEPS env steps per BabyAI task (about what a Meta-World task's 1000 episodes hold): the
# bot plans every step, so 10000 episodes of a long-episode level (babyai-unblock-pickup) would make its collection
# the demo's longest step; short-episode levels stop at BABYAI_EPISODES first
BABYAI_STEPS ?= 100000
OTHER_EPISODES ?= 1000
MUJOCO_EPISODES ?= 100
TEXT_SAMPLES ?= 1000
DEMO_PRESET ?= tiny
# the discrete codec keeps DISCRETE_WIDTH features per integer (the reference's H // 50 keeps 2 at H=128: too few to
# read a BabyAI mission) and mixes them through a hidden layer of DISCRETE_HIDDEN units (the reference's single
# linear map only adds up what each grid cell and mission word says alone); extra --model-config settings go in
# DEMO_MODEL
DISCRETE_WIDTH ?= 16
DISCRETE_HIDDEN ?= 256
# ... and runs that mix's products in bf16 where the CPU computes bf16 natively (AVX512-BF16 or AMX): the widest
# product of a BabyAI step, cheaper with the same training loss (bf16 over the whole model raises the loss; see
# docs/benchmarks.md, "Recipe choices"); elsewhere in fp32
DISCRETE_DTYPE ?= $(shell grep -q -E -w 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null && echo bfloat16 || echo float32)
DISCRETE_SETTING = --model-config 'codec_settings={"discrete":{"reduced_size":$(DISCRETE_WIDTH),"project_hidden":$(DISCRETE_HIDDEN),"project_dtype":"$(DISCRETE_DTYPE)"}}'
DEMO_MODEL ?= $(DISCRETE_SETTING)
# the tokenizer, a byte-level BPE trained on the run's texts: DEMO_TEXT_VOCAB tokens when a text task is trained
# (most words are then one token, so a tiny model's completions are real words rather than made-up ones; see
# docs/benchmarks.md, "Recipe choices"); 512 without (BabyAI's missions need few, and a discrete action's loss runs
# over the whole vocabulary, as the reference's does)
DEMO_TEXT_VOCAB ?= 2048
DEMO_TOKENIZER ?= bpe:$(if $(TEXT_TASKS),$(DEMO_TEXT_VOCAB),512)
# DART (jat-collect --action-noise): the robot arms' and MuJoCo's training episodes are played with noisy actions
# while the expert's own are recorded, so the model learns to recover; BabyAI's bot cannot replan after a random action
ACTION_NOISE ?= 0.1
DEMO_LR ?= 1e-3
# at most DEMO_BATCH windows and about DEMO_BATCH_TOKENS tokens per batch: short BabyAI episodes get 64 windows
# (batches of alike lengths, so little padding), a Meta-World batch 16 episodes of 100 steps, long windows (text,
# MuJoCo) fewer, so that no task's step costs several times another's
DEMO_BATCH ?= 64
DEMO_BATCH_TOKENS ?= 3200
comma := ,
space := $(subst ,, )
TASK_WORDS := $(subst $(comma),$(space),$(TASKS))
BABYAI_TASKS := $(subst $(space),$(comma),$(strip $(filter babyai-%,$(TASK_WORDS))))
MUJOCO_TASKS := $(subst $(space),$(comma),$(strip $(filter mujoco-%,$(TASK_WORDS))))
TEXT_TASKS := $(subst $(space),$(comma),$(strip $(filter text-% captions-%,$(TASK_WORDS))))
OTHER_TASKS := $(subst $(space),$(comma),$(strip $(filter-out babyai-% mujoco-% text-% captions-%,$(TASK_WORDS))))
# $(call collect_each,COMMA LIST OF TASKS,OPTIONS,RUN DIR): one background collection process per task into RUN
# DIR/data, its pid in $$pids
collect_each = $(foreach t,$(subst $(comma),$(space),$(1)),\
	{ $(VENV)/bin/jat-collect --out $(3)/data --seed 0 --no-progress --tasks $(t) $(2); } & pids="$$pids $$!";)

# $(call check_run_dir,TARGET,VARIABLE): refuse a root-like VARIABLE or one that names a file;
# $(call start_run,TARGET,VARIABLE): the same, then remake that run folder and note the start; $(call end_run,TARGET,WHAT,DIR): append the wall time since then to DIR/report.md.
check_run_dir = case "$($(2))" in ""|.|./|/|..|../) echo "make $(1): $(2)='$($(2))': expected a run directory to (re)create" >&2; exit 2;; esac; \
	if [ -e "$($(2))" ] && [ ! -d "$($(2))" ]; then echo "make $(1): $(2)='$($(2))' is a file, expected a directory" >&2; exit 2; fi
start_run = $(call check_run_dir,$(1),$(2)); \
	rm -rf $($(2)); mkdir -p $($(2)) && date +%s > $($(2))/.started && echo "make $(1): started $$(date -u +%FT%TZ)"
end_run = took=$$(( $$(date +%s) - $$(cat $(3)/.started) )); rm -f $(3)/.started; \
	printf '\nWall time of `make $(1)` ($(2)): %s s, finished %s.\n' "$$took" "$$(date -u +%FT%TZ)" >> $(3)/report.md; \
	echo "make $(1): done in $$took s; report in $(3)/report.md"

demo: setup
	@$(call start_run,demo,OUT)  # each demo starts afresh
	$(VENV)/bin/jat-plugins
	# every task is collected by its own process, all side by side (the cores stay busy until the last one is
	# done); any failure stops the demo
	set -e; pids=""; \
	$(call collect_each,$(BABYAI_TASKS),--episodes $(BABYAI_EPISODES) --max-steps $(BABYAI_STEPS),$(OUT)) \
	$(call collect_each,$(OTHER_TASKS),--episodes $(OTHER_EPISODES) --action-noise $(ACTION_NOISE),$(OUT)) \
	$(call collect_each,$(MUJOCO_TASKS),--episodes $(MUJOCO_EPISODES) --action-noise $(ACTION_NOISE),$(OUT)) \
	$(call collect_each,$(TEXT_TASKS),--episodes $(TEXT_SAMPLES),$(OUT)) \
	for p in $$pids; do wait $$p; done
	$(VENV)/bin/jat-train --tasks $(TASKS) --data $(OUT)/data --preset $(DEMO_PRESET) $(DEMO_MODEL) --tokenizer $(DEMO_TOKENIZER) \
		--max-steps $(DEMO_STEPS) --batch-size $(DEMO_BATCH) --batch-tokens $(DEMO_BATCH_TOKENS) --learning-rate $(DEMO_LR) \
		--warmup-steps 100 --seed 0 --output-dir $(OUT)/train --save-every 500 --save-total-limit 2 --log-every 20 \
		--num-threads 1
	$(VENV)/bin/jat-eval --model $(OUT)/train/checkpoint-$(DEMO_STEPS) --tasks $(TASKS) \
		--episodes $(DEMO_EPISODES) --num-envs 10 --seed 1000 --data $(OUT)/data --samples $(DEMO_SAMPLES) --out $(OUT)/eval
	$(VENV)/bin/jat-report --run $(OUT)/train --eval $(OUT)/eval --out $(OUT)
	@$(call end_run,demo,collect$(comma) train$(comma) evaluate$(comma) report; set-up not included,$(OUT))

# One generalist: a single tiny JAT trained on BabyAI, Meta-World, MuJoCo, Atari, text and captions together, on CPU
# with no hub, evaluated per domain in $(ALL_OUT)/report.md and results.json (expert- and data-normalised scores for
# the env tasks; held-out perplexity against the unigram baseline and caption accuracy against chance for the
# others). text-local reads the *.txt files of ALL_TEXT_DIR (default: the Python standard library's docstrings).
# A quick check of the whole pipeline: `make demo-all ALL_STEPS=60 ALL_BABYAI_EPISODES=20 ALL_OTHER_EPISODES=4
# ALL_ATARI_EPISODES=1 ALL_TEXT_SAMPLES=100 ALL_EVAL_EPISODES=2 ALL_EVAL_SAMPLES=10 ALL_OUT=runs/demo-all-quick`.
ALL_OUT ?= runs/demo-all
ALL_BABYAI ?= babyai-go-to-red-ball-no-dists,babyai-go-to-obj
ALL_METAWORLD ?= metaworld-reach,metaworld-door-close
ALL_MUJOCO ?= mujoco-pendulum,mujoco-reacher
ALL_ATARI ?= atari-pong,atari-freeway
ALL_TEXT ?= text-local,captions-shapes
ALL_TEXT_DIR ?=
ALL_STEPS ?= 3000
ALL_BABYAI_EPISODES ?= 1000
ALL_OTHER_EPISODES ?= 100
ALL_ATARI_EPISODES ?= 3
ALL_TEXT_SAMPLES ?= 3000
ALL_EVAL_EPISODES ?= 10
ALL_EVAL_SAMPLES ?= 200
ALL_BATCH ?= 16
ALL_LR ?= 1e-3
# captions at 112x112 (49 ViT patches instead of 196): a quarter of the tokens per caption; the discrete
# codec keeps DISCRETE_WIDTH features per integer (see the demo's recipe)
ALL_MODEL ?= --model-config image_size=112 $(DISCRETE_SETTING)
# DART noise on the robot arms' and MuJoCo's training episodes (see the demo's recipe)
ALL_ACTION_NOISE ?= $(ACTION_NOISE)
# observation-loss weight: 0 skips predicting the next observation, whose Atari frame decoder is the costliest
# part of an Atari batch on a CPU (the actions' loss, which the scores measure, is trained either way)
ALL_KAPPA ?= 0
ALL_TASKS = $(ALL_BABYAI),$(ALL_METAWORLD),$(ALL_MUJOCO),$(ALL_ATARI),$(ALL_TEXT)

demo-all: setup
	@$(call start_run,demo-all,ALL_OUT)  # each run starts afresh
	# one collection process per task, side by side, as in the demo
	set -e; pids=""; \
	$(call collect_each,$(ALL_BABYAI),--episodes $(ALL_BABYAI_EPISODES),$(ALL_OUT)) \
	$(call collect_each,$(ALL_METAWORLD),--episodes $(ALL_OTHER_EPISODES) --action-noise $(ALL_ACTION_NOISE),$(ALL_OUT)) \
	$(call collect_each,$(ALL_MUJOCO),--episodes $(ALL_OTHER_EPISODES) --action-noise $(ALL_ACTION_NOISE),$(ALL_OUT)) \
	$(call collect_each,$(ALL_ATARI),--episodes $(ALL_ATARI_EPISODES),$(ALL_OUT)) \
	$(call collect_each,$(ALL_TEXT),--episodes $(ALL_TEXT_SAMPLES) $(if $(ALL_TEXT_DIR),--input-dir $(ALL_TEXT_DIR)),$(ALL_OUT)) \
	for p in $$pids; do wait $$p; done
	$(VENV)/bin/jat-train --tasks $(ALL_TASKS) --data $(ALL_OUT)/data --preset tiny $(ALL_MODEL) --tokenizer bpe:$(DEMO_TEXT_VOCAB) \
		--max-steps $(ALL_STEPS) --batch-size $(ALL_BATCH) --learning-rate $(ALL_LR) --kappa $(ALL_KAPPA) --warmup-steps 100 --seed 0 \
		--output-dir $(ALL_OUT)/train --save-every 500 --save-total-limit 2 --log-every 20 --num-threads 1 --no-progress
	$(VENV)/bin/jat-eval --model $(ALL_OUT)/train/checkpoint-$(ALL_STEPS) --tasks $(ALL_TASKS) --episodes $(ALL_EVAL_EPISODES) \
		--num-envs 10 --seed 1000 --data $(ALL_OUT)/data --samples $(ALL_EVAL_SAMPLES) --out $(ALL_OUT)/eval --no-progress
	$(VENV)/bin/jat-report --run $(ALL_OUT)/train --eval $(ALL_OUT)/eval --out $(ALL_OUT)
	@$(call end_run,demo-all,collect$(comma) train$(comma) evaluate$(comma) report,$(ALL_OUT))

# One generalist: ONE tiny JAT trained on 40+ tasks of every domain (BabyAI, Meta-World, MuJoCo, Atari) plus text
# and captions, on CPU with no hub, every task evaluated (20 episodes, seeds 1000-1019), report in
# $(GENERALIST_OUT)/report.md: per-domain and overall IQM (the paper's way and per-task means, data- and
# expert-normalised), per-task table, learning curves per domain, text and caption scores, wall time and peak
# memory of each phase. The recipe (tasks, data per task, training) is $(GENERALIST_RECIPE). Collected data are
# cached in $(GENERALIST_CACHE) by what produced them, so a second run reuses them.
# GENERALIST_TASKS=all: every task with a local expert or sample source (a task whose expert does not clearly beat
# random is left out and listed); GENERALIST_DATA=hub: the published data set instead (needs the hub).
GENERALIST_RECIPE ?= examples/generalist/default.json
GENERALIST_OUT ?= runs/generalist
GENERALIST_CACHE ?= runs/cache
GENERALIST_TASKS ?=
GENERALIST_DATA ?= local
GENERALIST_STEPS ?=
# GENERALIST_RESUME=1 keeps $(GENERALIST_OUT): training resumes from its newest checkpoint (a long run across
# sittings) and a finished evaluation is kept (the report is written again)
GENERALIST_RESUME ?=
# the discrete codec's settings of the demo's recipe, with its mix in bf16 where the CPU computes bf16 natively
GENERALIST_TRAIN_ARGS ?= $(DISCRETE_SETTING)

generalist: setup
	@$(call check_run_dir,generalist,GENERALIST_OUT)
	# jat-generalist empties the folder itself once it holds it (--fresh; a folder a live run writes is refused),
	# or keeps it (GENERALIST_RESUME); the data cache stays either way
	started=$$(date +%s); \
	$(VENV)/bin/jat-generalist --recipe $(GENERALIST_RECIPE) --out $(GENERALIST_OUT) --cache $(GENERALIST_CACHE) \
		--data $(GENERALIST_DATA) $(if $(GENERALIST_TASKS),--tasks $(GENERALIST_TASKS)) \
		$(if $(GENERALIST_STEPS),--max-steps $(GENERALIST_STEPS)) $(if $(GENERALIST_RESUME),--resume,--fresh) \
		--train-args="$(subst ",\",$(GENERALIST_TRAIN_ARGS))" && \
	echo $$started > $(GENERALIST_OUT)/.started
	@$(call end_run,generalist,collect$(comma) train$(comma) evaluate$(comma) report; set-up not included,$(GENERALIST_OUT))

test: setup
	$(VENV)/bin/pytest

# The test suite against the newest releases the packages' metadata allow (no constraints; torch stays $(TORCH)),
# in a fresh $(LATEST_VENV). Not part of CI (.ci/run runs the locked `make test`); prints what it tested.
LATEST_VENV ?= .venv-latest
KEY_PACKAGES := torch|transformers|datasets|accelerate|gymnasium|tokenizers|huggingface[-_]hub
test-latest:
	rm -rf $(LATEST_VENV)
	python3 -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install -q $(TORCH)
	$(LATEST_VENV)/bin/python -m pip install -q --upgrade --upgrade-strategy eager $(TORCH) $(PACKAGES)
	@echo "== key packages in $(LATEST_VENV):"
	@$(LATEST_VENV)/bin/python -m pip list | grep -i -E '^($(KEY_PACKAGES)) '
	@echo "== differences from $(CONSTRAINTS) (< locked, > latest):"
	@PATH=$(CURDIR)/$(LATEST_VENV)/bin:$$PATH $(FREEZE) | diff $(CONSTRAINTS) - | grep -E '^[<>] [^#]' || echo "(none)"
	$(LATEST_VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check packages tests bench

# The documentation site: docs/ and mkdocs.yml -> site/. --strict turns a broken link, a page missing from the nav
# or an unreadable docstring into an error; the command-line and configuration pages are generated from the code.
.PHONY: docs dist
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# A wheel and an sdist of each package in $(DIST)/, each built in an isolated environment as pip would build it.
DIST ?= dist
dist: setup
	rm -rf $(DIST)
	for p in packages/*/; do $(PY) -m build --outdir $(DIST) $$p || exit 1; done
