"""Fuzzing the agent (``model.agent(task)``, ``agent.act``) and the processor with malformed input: NaN and
infinite observations and rewards, wrong shapes, dtypes, ranges and fields, and tasks that do not fit the model
(a codec it lacks, more actions than it predicts). Every case is a one-line ``ValueError`` naming the task and the
field (or codec), and nothing is lost: a refused ``act`` leaves the agent exactly where it was (its next actions
equal those of an agent that never saw the bad call), and the model's saved files are byte-identical."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from jat_core.config import JatConfig
from jat_core.model import JatModel
from jat_core.processor import JatProcessor
from jat_core.specs import FieldSpec, TaskSpec
from jat_core.tokenizer import build_tokenizer
from model_helpers import snapshot

torch.set_num_threads(1)

N = 3  # envs
WORDS = "go to the red ball pick up a blue key open door".split()

CONTINUOUS = TaskSpec(
    "test-continuous", "test",
    (FieldSpec("continuous_observations", "continuous", (5,), "float32"),),
    FieldSpec("continuous_actions", "continuous", (2,), "float32", low=-1, high=1),
)
TWO_FLOATS = TaskSpec(  # two float fields sharing one codec: the bad one must be named, not the column
    "test-two-floats", "test",
    (FieldSpec("joints", "continuous", (3,), "float64"), FieldSpec("target", "continuous", (2,), "float32")),
    FieldSpec("continuous_actions", "continuous", (2,), "float32"),
)
BABYAI = TaskSpec(
    "test-babyai", "test",
    (
        FieldSpec("discrete_observations", "discrete", (148,), "int64", n=11),
        FieldSpec("text_observations", "discrete", (), "string", max_tokens=64),
    ),
    FieldSpec("discrete_actions", "discrete", (), "int64", n=7),
)
IMAGE = TaskSpec(
    "test-image", "test",
    (FieldSpec("image_observations", "image", (84, 84, 4), "uint8"),),
    FieldSpec("discrete_actions", "discrete", (), "int64", n=6),
)
TASKS = {t.name: t for t in (CONTINUOUS, TWO_FLOATS, BABYAI, IMAGE)}
FLOAT_FIELDS = [(t.name, f.name) for t in TASKS.values() for f in t.observation if f.dtype.startswith("float")]
BAD = {"NaN": np.nan, "inf": np.inf, "-inf": -np.inf}


@pytest.fixture(scope="module")
def tokenizer():
    rng = np.random.default_rng(0)
    return build_tokenizer([" ".join(rng.choice(WORDS, size=6)) for _ in range(100)], vocab_size=300)


def make_model(tokenizer, **overrides) -> JatModel:
    torch.manual_seed(0)
    config = JatConfig.from_preset(
        "tiny", vocab_size=len(tokenizer), max_position_embeddings=24, window_size=6, image_size=32, **overrides
    )
    return JatModel(config).eval()


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_model(tokenizer)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(folder)
    return folder, snapshot(folder)


@pytest.fixture(autouse=True)
def files_unchanged(saved):
    yield
    folder, files = saved
    assert snapshot(folder) == files


def observation(task: TaskSpec, rng: np.random.Generator, n: int = N) -> dict:
    out = {}
    for f in task.observation:
        if f.dtype == "string":
            out[f.name] = [" ".join(rng.choice(WORDS, size=4)) for _ in range(n)]
        elif f.dtype == "uint8":
            out[f.name] = rng.integers(0, 256, size=(n, *f.shape), dtype=np.uint8)
        elif f.n is not None:
            out[f.name] = rng.integers(0, f.n, size=(n, *f.shape), dtype=np.int64)
        else:
            out[f.name] = rng.standard_normal((n, *f.shape)).astype(f.dtype)
    return out


def agents(model, tokenizer, task):
    """Two identical agents: one sees the bad calls, the reference does not."""
    out = []
    for _ in range(2):
        agent = model.agent(task, tokenizer=tokenizer)
        agent.reset(num_envs=N)
        out.append(agent)
    return out


def assert_refused_and_nothing_lost(model, tokenizer, task, bad_call, pattern, seed=0):
    """Two good steps, the bad call (refused with ``pattern``), three more good steps: the agent's actions equal
    a reference agent's that never saw the bad call."""
    rng = np.random.default_rng(seed)
    steps = [(observation(task, rng), rng.standard_normal(N).astype(np.float32)) for _ in range(5)]
    agent, reference = agents(model, tokenizer, task)
    for i, (obs, rewards) in enumerate(steps):
        if i == 2:
            with pytest.raises(ValueError, match=pattern) as info:
                bad_call(agent, obs, rewards)
            assert "\n" not in str(info.value)
        np.testing.assert_array_equal(agent.act(obs, rewards), reference.act(obs, rewards))
    return str(info.value)


@pytest.mark.parametrize("label", list(BAD))
@pytest.mark.parametrize("task, field", FLOAT_FIELDS)
def test_non_finite_observations_name_task_field_and_position(model, tokenizer, task, field, label):
    task = TASKS[task]
    rng = np.random.default_rng(1)

    def bad(agent, obs, rewards):
        obs = {k: np.array(v, copy=True) for k, v in obs.items()}
        env, i = int(rng.integers(0, N)), int(rng.integers(0, obs[field].shape[1]))
        obs[field][env, i] = BAD[label]
        agent.act(obs, rewards)

    message = assert_refused_and_nothing_lost(
        model, tokenizer, task, bad, rf"^task '{task.name}' field '{field}': expected finite values, got {re.escape(label)} at \[\d, \d\]$"
    )
    assert field in message


@pytest.mark.parametrize("label", list(BAD))
@pytest.mark.parametrize("task", list(TASKS))
def test_non_finite_rewards(model, tokenizer, task, label):
    def bad(agent, obs, rewards):
        rewards = rewards.copy()
        rewards[1] = BAD[label]
        agent.act(obs, rewards)

    assert_refused_and_nothing_lost(
        model, tokenizer, TASKS[task], bad, rf"^task '{task}': rewards: expected finite values, got {re.escape(label)} at \[1\]$"
    )


def test_a_single_unbatched_env_with_a_nan_reward(model, tokenizer):
    agent = model.agent(CONTINUOUS)
    agent.reset(num_envs=1)
    obs = {"continuous_observations": np.zeros(5, np.float32)}
    with pytest.raises(ValueError, match=r"^task 'test-continuous': rewards: expected finite values, got NaN at \[0\]$"):
        agent.act(obs, float("nan"))
    assert agent.act(obs, 0.0).shape == (2,)


def _with(field, change):
    """A bad call that replaces ``field`` of the observation with ``change(value)``."""

    def bad(agent, obs, rewards):
        agent.act({**obs, field: change(obs[field])}, rewards)

    return bad


MALFORMED = [
    ("test-continuous", _with("continuous_observations", lambda v: v[:, :4]), r"field 'continuous_observations': expected shape \(3, 5\), got \(3, 4\)"),
    ("test-continuous", _with("continuous_observations", lambda v: v[:2]), r"field 'continuous_observations': expected shape \(3, 5\), got \(2, 5\)"),
    ("test-continuous", _with("continuous_observations", lambda v: v.astype(np.int64)), r"field 'continuous_observations': expected dtype float32"),
    ("test-continuous", _with("continuous_observations", lambda v: v.astype(str)), r"field 'continuous_observations': expected dtype float32"),
    ("test-two-floats", _with("target", lambda v: v[:, None]), r"field 'target': expected shape \(3, 2\)"),
    ("test-babyai", _with("discrete_observations", lambda v: v + 11), r"field 'discrete_observations': expected values in \[0, 11\)"),
    ("test-babyai", _with("discrete_observations", lambda v: v - 1 - v.max()), r"field 'discrete_observations': expected values in \[0, 11\)"),
    ("test-babyai", _with("discrete_observations", lambda v: v.astype(np.float32)), r"field 'discrete_observations': expected dtype int64"),
    ("test-babyai", _with("text_observations", lambda v: v[:1]), r"field 'text_observations': expected 3 strings"),
    ("test-babyai", _with("text_observations", lambda v: [1, 2, 3]), r"field 'text_observations': expected str values"),
    ("test-image", _with("image_observations", lambda v: v.astype(np.float32)), r"field 'image_observations': expected dtype uint8"),
    ("test-image", _with("image_observations", lambda v: v[:, :80]), r"field 'image_observations': expected shape \(3, 84, 84, 4\)"),
    ("test-image", lambda agent, obs, rewards: agent.act({}, rewards), r"missing \['image_observations'\]"),
    ("test-image", lambda agent, obs, rewards: agent.act({**obs, "imag_observations": 0}, rewards), r"unknown \['imag_observations'\]"),
    ("test-image", lambda agent, obs, rewards: agent.act(obs, rewards[:2]), r"rewards: expected shape \(3,\)"),
    ("test-image", lambda agent, obs, rewards: agent.act(list(obs.values()), rewards), r"observations must be a dict"),
]


@pytest.mark.parametrize("task, bad, pattern", MALFORMED, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(MALFORMED)])
def test_malformed_observations(model, tokenizer, task, bad, pattern):
    message = assert_refused_and_nothing_lost(model, tokenizer, TASKS[task], bad, pattern)
    assert f"task '{task}'" in message


# -- tasks that do not fit the model -----------------------------------------------------------------------------
@pytest.mark.parametrize("codecs", [["continuous", "text"], ["text"], ["image", "vit", "text"], ["continuous", "discrete"]])
@pytest.mark.parametrize("task", list(TASKS))
def test_a_codec_the_model_lacks_is_named_with_the_models_codecs(tokenizer, codecs, task):
    task = TASKS[task]
    model = make_model(tokenizer, codecs=codecs)
    missing = [f for f in task.fields if f.codec not in codecs]
    if not missing:
        model.agent(task, tokenizer=tokenizer)  # fits: no error
        return
    f = missing[0]
    expected = (
        rf"^task '{task.name}': field '{f.name}' needs codec '{f.codec}', this model has codecs "
        rf"{re.escape(str(sorted(codecs)))}$"
    )
    with pytest.raises(ValueError, match=expected):
        model.agent(task, tokenizer=tokenizer)
    processor = JatProcessor.from_model(model, tokenizer)
    with pytest.raises(ValueError, match=rf"field '{f.name}' needs codec '{f.codec}', this processor has codecs"):
        values = {k: np.asarray(v)[:, None] for k, v in observation(task, np.random.default_rng(0)).items()}
        processor.prepare_observations(task, values)
        processor.prepare_actions(task, np.zeros((N, 1, *task.action.shape), np.int64 if task.action.n else np.float32))


@pytest.mark.parametrize(
    "task, pattern",
    [
        (
            TaskSpec("many-actions", "t", BABYAI.observation, FieldSpec("discrete_actions", "discrete", (), "int64", n=5000)),
            r"^task 'many-actions': action field 'discrete_actions' needs 5000 logits \(n\), codec 'discrete' of this model gives \d+$",
        ),
        (
            TaskSpec("wide-actions", "t", CONTINUOUS.observation, FieldSpec("continuous_actions", "continuous", (20, 20))),
            r"^task 'wide-actions': action field 'continuous_actions' needs 400 values, codec 'continuous' of this model gives 377$",
        ),
        (
            TaskSpec("two-codecs", "t", CONTINUOUS.observation + IMAGE.observation, CONTINUOUS.action),
            r"^task 'two-codecs': .*one codec.* \['continuous', 'image'\]$",
        ),
        (
            TaskSpec("text-obs", "t", (FieldSpec("input_ids", "text", (4,), "int64", n=3),), CONTINUOUS.action),
            r"^task 'text-obs': codec 'text' of 'input_ids' encodes no observations$",
        ),
        (
            TaskSpec("image-action", "t", CONTINUOUS.observation, FieldSpec("image_actions", "image", (2,))),
            r"^task 'image-action': codec 'image' of 'image_actions' encodes no actions$",
        ),
        (
            TaskSpec("no-action", "t", CONTINUOUS.observation),
            r"^task 'no-action': has no action field",
        ),
    ],
    ids=["n-above-vocab", "action-above-max-continuous", "two-observation-codecs", "text-observation", "image-action", "text-task"],
)
def test_tasks_that_do_not_fit_are_refused_when_the_agent_is_made(model, tokenizer, task, pattern):
    with pytest.raises(ValueError, match=pattern):
        model.agent(task, tokenizer=tokenizer)


def test_a_failed_act_before_any_step_leaves_a_fresh_agent(model, tokenizer):
    rng = np.random.default_rng(3)
    agent, reference = agents(model, tokenizer, CONTINUOUS)
    obs = observation(CONTINUOUS, rng)
    bad = {"continuous_observations": obs["continuous_observations"].copy()}
    bad["continuous_observations"][0, 0] = np.nan
    with pytest.raises(ValueError, match="expected finite values"):
        agent.act(bad)
    np.testing.assert_array_equal(agent.act(obs), reference.act(obs))
