"""The agent: incremental batched acting equals a full forward pass over the same history, slides as documented,
rejects bad input; text completion and captioning equal a greedy full-recompute loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from jat_core.config import JatConfig
from jat_core.model import JatModel
from jat_core.processor import JatProcessor
from jat_core.specs import FieldSpec, TaskSpec
from jat_core.tokenizer import build_tokenizer

ATOL = 1e-4
#: tiny model: 12 steps of context (24 positions), local layers see 6 tokens, so both masks matter
MAX_POSITIONS, WINDOW = 24, 6
CONTEXT = (MAX_POSITIONS + 1) // 2
WORDS = "go to the red ball pick up a blue key open door put next green box purple grey yellow".split()

CONTINUOUS = TaskSpec(
    "test-continuous",
    "test",
    (FieldSpec("continuous_observations", "continuous", (7,), "float32"),),
    FieldSpec("continuous_actions", "continuous", (3,), "float32", low=-0.5, high=0.5),
)
BABYAI = TaskSpec(
    "test-babyai",
    "test",
    (
        FieldSpec("discrete_observations", "discrete", (148,), "int64", n=11),
        FieldSpec("text_observations", "discrete", (), "string", max_tokens=64),
    ),
    FieldSpec("discrete_actions", "discrete", (), "int64", n=7),
)
IMAGE = TaskSpec(
    "test-image",
    "test",
    (FieldSpec("image_observations", "image", (84, 84, 4), "uint8", low=0, high=255),),
    FieldSpec("discrete_actions", "discrete", (), "int64", n=18),
)
TASKS = {"continuous": CONTINUOUS, "babyai": BABYAI, "image": IMAGE}


@pytest.fixture(scope="module")
def tokenizer():
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=8)) for _ in range(200)]
    return build_tokenizer(texts, vocab_size=512)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = JatConfig.from_preset(
        "tiny", vocab_size=len(tokenizer), max_position_embeddings=MAX_POSITIONS, window_size=WINDOW,
        image_size=32, patch_size=16,
    )
    return JatModel(config).eval()


def random_observation(task: TaskSpec, rng: np.random.Generator, n: int | None = None) -> dict:
    """One random observation per env (``(n, ...)``), or an unbatched one when ``n`` is None."""
    out = {}
    batch = () if n is None else (n,)
    for f in task.observation:
        if f.dtype == "string":
            words = [" ".join(rng.choice(WORDS, size=5)) for _ in range(n or 1)]
            out[f.name] = words[0] if n is None else words
        elif f.dtype == "uint8":
            out[f.name] = rng.integers(0, 256, size=batch + f.shape, dtype=np.uint8)
        elif f.n is not None:
            out[f.name] = rng.integers(0, f.n, size=batch + f.shape, dtype=np.int64)
        else:
            out[f.name] = rng.standard_normal(batch + f.shape).astype(np.float32)
    return out


class Episode:
    """What one env saw, and the window the agent should attend to (the documented sliding policy)."""

    def __init__(self, context: int, keep: int):
        self.context, self.keep = context, keep
        self.observations: list[dict] = []
        self.rewards: list[float] = []
        self.actions: list = []
        self.steps = 0  # steps of the episode so far

    def add(self, observation: dict, reward: float) -> None:
        if len(self.observations) == self.context:  # the new observation does not fit: keep the last keep - 1
            drop = self.context - (self.keep - 1)
            del self.observations[:drop], self.rewards[:drop], self.actions[:drop]
        self.observations.append(observation)
        self.rewards.append(0.0 if self.steps == 0 else reward)  # an episode's first observation carries 0
        self.steps += 1

    def full_forward(self, model: JatModel, task: TaskSpec, tokenizer) -> torch.Tensor:
        """The prediction at the last step of one forward pass over the window (the last action a dummy)."""
        processor = JatProcessor.from_model(model, tokenizer)
        T = len(self.observations)
        values = {f.name: np.stack([np.asarray(o[f.name], dtype=object if f.dtype == "string" else None)
                                    for o in self.observations])[None] for f in task.observation}
        dummy = np.zeros(task.action.shape, dtype=np.int64 if task.action.n else np.float32)
        actions = np.stack(self.actions + [dummy])[None]  # (1, T, ...)
        batch = processor.prepare_observations(task, values)
        batch |= processor.prepare_actions(task, actions)
        batch |= processor.prepare_rewards(np.asarray(self.rewards, dtype=np.float32)[None])
        with torch.no_grad():
            out = model(**batch, return_loss=False)
        pred = out.pred_actions[0, T - 1]
        return pred[: task.action.n] if task.action.n else pred


def unbatch(observation: dict, i: int) -> dict:
    return {k: v[i] for k, v in observation.items()}


@pytest.mark.parametrize("kind", list(TASKS))
def test_every_step_equals_full_forward(model, tokenizer, kind):
    """Single env, through a slide: actions and action predictions equal a full forward over the window."""
    task = TASKS[kind]
    agent = model.agent(task, tokenizer=tokenizer)
    agent.reset(num_envs=1)
    rng = np.random.default_rng(1)
    episode = Episode(agent.context_steps, agent.keep_steps)
    steps = CONTEXT + 3 if kind != "image" else CONTEXT + 1  # at least one slide
    for t in range(steps):
        obs, reward = random_observation(task, rng, 1), float(rng.standard_normal())
        episode.add(unbatch(obs, 0), reward)
        actions = agent.act(obs, np.array([reward]))
        expected = episode.full_forward(model, task, tokenizer)
        torch.testing.assert_close(agent.last_prediction[0], expected, atol=ATOL, rtol=0, msg=f"step {t}")
        if task.action.n:
            assert actions.shape == (1,) and actions.dtype == np.int64
            assert actions[0] == int(expected.argmax())
        else:
            assert actions.shape == (1, 3) and actions.dtype == np.float32
            np.testing.assert_allclose(actions[0], expected.clamp(-0.5, 0.5).numpy(), atol=ATOL)
        episode.actions.append(actions[0])
    assert len(episode.observations) < steps  # the window slid


def test_batch_with_resets_and_staggered_slides(model, tokenizer):
    """Envs at different lengths, resets mid-way, slides at different steps: each env equals its own full forward
    (and so equals the env run alone)."""
    task = BABYAI
    N, steps = 3, 2 * CONTEXT + 2
    # step -> envs whose episode ended before that step: env 0 resets when longest (its dead slots must be
    # dropped while no env slides), the others slide at different steps
    resets = {3: [1], 11: [0], 15: [2], 20: [1], 22: [0, 2]}
    agent = model.agent(task, tokenizer=tokenizer, keep_steps=4)
    agent.reset(num_envs=N)
    rng = np.random.default_rng(2)
    episodes = [Episode(agent.context_steps, agent.keep_steps) for _ in range(N)]
    for t in range(steps):
        if t in resets:
            mask = np.zeros(N, dtype=bool)
            mask[resets[t]] = True
            agent.reset(env_ids=mask)
            for i in resets[t]:
                episodes[i] = Episode(agent.context_steps, agent.keep_steps)
        obs = random_observation(task, rng, N)
        rewards = rng.standard_normal(N).astype(np.float32)
        for i in range(N):
            episodes[i].add(unbatch(obs, i), float(rewards[i]))
        actions = agent.act(obs, rewards)
        for i in range(N):
            expected = episodes[i].full_forward(model, task, tokenizer)
            torch.testing.assert_close(agent.last_prediction[i], expected, atol=ATOL, rtol=0, msg=f"step {t} env {i}")
            assert actions[i] == int(expected.argmax())
            episodes[i].actions.append(actions[i])


def test_reset_outside_inference_mode_after_act(model, tokenizer):
    """Regression: ``reset(env_ids=...)`` in plain grad mode after ``act`` (indices, a bool mask, every env) used to
    raise "Inplace update to inference tensor outside InferenceMode"; acting goes on exactly (lockstep slides of
    every env included), and ``last_prediction`` is an ordinary tensor the caller may modify."""
    task, N = CONTINUOUS, 3
    agent = model.agent(task, context_steps=5, keep_steps=3)
    agent.reset(num_envs=N)
    rng = np.random.default_rng(10)
    episodes = [Episode(5, 3) for _ in range(N)]
    resets = {7: [1], 9: np.array([True, False, True]), 12: np.ones(N, dtype=bool), 14: []}
    for t in range(16):
        if t in resets:
            with torch.enable_grad():
                agent.reset(env_ids=resets[t])
            for i in np.arange(N)[resets[t]] if isinstance(resets[t], np.ndarray) else resets[t]:
                episodes[i] = Episode(5, 3)
        obs, rewards = random_observation(task, rng, N), rng.standard_normal(N).astype(np.float32)
        for i in range(N):
            episodes[i].add(unbatch(obs, i), float(rewards[i]))
        actions = agent.act(obs, rewards)
        assert not agent.last_prediction.is_inference()
        for i in range(N):
            expected = episodes[i].full_forward(model, task, tokenizer)
            torch.testing.assert_close(agent.last_prediction[i], expected, atol=ATOL, rtol=0, msg=f"step {t} env {i}")
            episodes[i].actions.append(actions[i])
    agent.last_prediction += 1.0  # a normal tensor: in-place updates are allowed
    with torch.no_grad():
        agent.reset(env_ids=[0])
    agent.act(random_observation(task, rng, N))


def test_context_steps_option_and_positions_stay_in_range(model, tokenizer):
    """A shorter context slides earlier; positions never leave [0, 2 * context_steps - 1)."""
    agent = model.agent(CONTINUOUS, context_steps=5, keep_steps=2)
    agent.reset(2)
    seen = []
    trunk_forward = model.transformer.forward

    def spy(*args, **kwargs):
        if kwargs.get("position_ids") is not None:
            seen.append(int(kwargs["position_ids"].max()))
        return trunk_forward(*args, **kwargs)

    model.transformer.forward = spy
    try:
        rng = np.random.default_rng(3)
        episode = Episode(5, 2)
        for _ in range(13):
            obs = random_observation(CONTINUOUS, rng, 2)
            episode.add(unbatch(obs, 1), 0.5)
            actions = agent.act(obs, np.full(2, 0.5))
            expected = episode.full_forward(model, CONTINUOUS, tokenizer)
            torch.testing.assert_close(agent.last_prediction[1], expected, atol=ATOL, rtol=0)
            episode.actions.append(actions[1])
    finally:
        del model.transformer.forward
    assert max(seen) == 2 * 5 - 2 and len(episode.observations) <= 5


def test_only_action_decoder_runs_with_n_logits(model, tokenizer):
    """The observation decoder never runs; the action decoder is asked for the task's n logits only."""
    calls = []
    for kind, task in TASKS.items():
        agent = model.agent(task, tokenizer=tokenizer)
        codecs = {model.codecs[f.codec] for f in task.fields}
        for codec in codecs:
            original = codec.decode

            def spy(hidden, *, role, size=None, _original=original, _kind=kind):
                calls.append((_kind, role, size, tuple(hidden.shape)))
                return _original(hidden, role=role, size=size)

            codec.decode = spy
        try:
            agent.reset(2)
            rng = np.random.default_rng(4)
            for _ in range(3):
                agent.act(random_observation(task, rng, 2))
        finally:
            for codec in codecs:
                del codec.decode
    expected_size = {"continuous": 3, "babyai": 7, "image": 18}
    assert calls and all(role == "action" for _, role, _, _ in calls)
    assert all(size == expected_size[kind] and shape[:2] == (2, 1) for kind, _, size, shape in calls)


def test_sampling_is_seeded_and_temperature_behaves(model, tokenizer):
    rng = np.random.default_rng(5)
    observations = [random_observation(IMAGE, rng, 4) for _ in range(6)]

    def run(**kwargs):
        agent = model.agent(IMAGE, **kwargs)
        agent.reset(4)
        return np.stack([agent.act(o) for o in observations])

    a, b = run(deterministic=False, seed=7), run(deterministic=False, seed=7)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() < 18
    assert not np.array_equal(run(deterministic=False, seed=7, temperature=100.0), run(deterministic=False, seed=8, temperature=100.0))
    np.testing.assert_array_equal(run(deterministic=False, seed=1, temperature=1e-6), run())


def test_unbatched_single_env_and_clipping(model, tokenizer):
    rng = np.random.default_rng(6)
    agent = model.agent(CONTINUOUS)
    agent.reset(1)
    for _ in range(3):
        action = agent.act(random_observation(CONTINUOUS, rng), 0.25)
        assert action.shape == (3,) and np.all(np.abs(action) <= 0.5)
        np.testing.assert_array_equal(action, agent.last_prediction[0].clamp(-0.5, 0.5).numpy())
    agent = model.agent(BABYAI, tokenizer=tokenizer)
    agent.reset(1)
    action = agent.act(random_observation(BABYAI, rng))
    assert isinstance(action, int) and 0 <= action < 7


def test_task_by_name_and_first_reward_is_zero(model, tokenizer):
    """A reward passed with an episode's first observation is ignored (it carries 0, as in the data)."""
    rng = np.random.default_rng(7)
    obs = random_observation(CONTINUOUS, rng, 2)
    agent = model.agent(CONTINUOUS)
    agent.reset(2)
    agent.act(obs, np.array([5.0, -3.0]))
    first = agent.last_prediction.clone()
    agent.reset(2)
    agent.act(obs)
    torch.testing.assert_close(agent.last_prediction, first)
    with pytest.raises(KeyError, match="unknown task"):
        model.agent("no-such-task-anywhere")


def test_default_context_is_the_task_training_window(model):
    short = TaskSpec(CONTINUOUS.name, "test", CONTINUOUS.observation, CONTINUOUS.action, context_steps=5)
    agent = model.agent(short)
    assert (agent.context_steps, agent.keep_steps) == (5, 2)
    assert model.agent(CONTINUOUS).context_steps == CONTEXT  # no window given: as much as the model holds
    long = TaskSpec(CONTINUOUS.name, "test", CONTINUOUS.observation, CONTINUOUS.action, context_steps=500)
    assert model.agent(long).context_steps == CONTEXT


def test_bad_input_is_a_clear_error(model, tokenizer):
    rng = np.random.default_rng(8)
    agent = model.agent(CONTINUOUS)
    with pytest.raises(RuntimeError, match="reset"):
        agent.act(random_observation(CONTINUOUS, rng, 1))
    agent.reset(num_envs=2)
    good = random_observation(CONTINUOUS, rng, 2)
    with pytest.raises(ValueError, match=r"continuous_observations.*expected shape \(2, 7\), got \(2, 6\)"):
        agent.act({"continuous_observations": good["continuous_observations"][:, :6]})
    with pytest.raises(ValueError, match=r"continuous_observations.*expected shape \(2, 7\), got \(3, 7\)"):
        agent.act(random_observation(CONTINUOUS, rng, 3))
    with pytest.raises(ValueError, match=r"rewards: expected shape \(2,\).*got \(3,\)"):
        agent.act(good, np.zeros(3))
    with pytest.raises(ValueError, match="missing \\['continuous_observations'\\], unknown \\['image_observations'\\]"):
        agent.act({"image_observations": good["continuous_observations"]})
    with pytest.raises(ValueError, match="env_ids"):
        agent.reset(env_ids=[5])
    image = model.agent(IMAGE)
    image.reset(2)
    frames = random_observation(IMAGE, rng, 2)["image_observations"]
    with pytest.raises(ValueError, match="image_observations.*expected dtype uint8, got float32"):
        image.act({"image_observations": frames.astype(np.float32)})
    babyai = model.agent(BABYAI, tokenizer=tokenizer)
    babyai.reset(2)
    obs = random_observation(BABYAI, rng, 2)
    with pytest.raises(ValueError, match="text_observations.*expected 2 strings"):
        babyai.act({**obs, "text_observations": ["one"]})
    with pytest.raises(ValueError, match=r"discrete_observations.*expected values in \[0, 11\)"):
        babyai.act({**obs, "discrete_observations": obs["discrete_observations"] + 11})
    with pytest.raises(ValueError, match="context_steps"):
        model.agent(CONTINUOUS, context_steps=CONTEXT + 1)


def greedy(model, ids: torch.Tensor, steps: int, **images) -> list[int]:
    """Greedy decoding by recomputing the whole sequence every token."""
    ids = ids.clone()
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=ids, **images, return_loss=False).logits[:, -1]
        ids = torch.cat((ids, logits.argmax(-1, keepdim=True)), dim=1)
    return ids[0].tolist()


def test_complete_and_caption_equal_greedy_recompute(model, tokenizer):
    prompt = "go to the red"
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    expected = tokenizer.decode(greedy(model, ids, 6)[ids.shape[1]:], skip_special_tokens=True)
    assert model.complete(prompt, max_new_tokens=6, tokenizer=tokenizer) == expected
    assert model.complete([prompt, "open"], max_new_tokens=6, tokenizer=tokenizer)[0] == expected

    image = np.random.default_rng(9).integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    pixels = JatProcessor.from_model(model, tokenizer).prepare_images([image])
    no_text = torch.zeros(1, 0, dtype=torch.long)
    caption = tokenizer.decode(greedy(model, no_text, 5, **pixels), skip_special_tokens=True)
    assert model.caption(image, max_new_tokens=5, tokenizer=tokenizer) == caption
    q = torch.tensor([tokenizer("open the")["input_ids"]])
    answer = tokenizer.decode(greedy(model, q, 4, **pixels)[q.shape[1]:], skip_special_tokens=True)
    assert model.caption(torch.from_numpy(image), prompt="open the", max_new_tokens=4, tokenizer=tokenizer) == answer
    with pytest.raises(ValueError, match="tokenizer"):
        model.complete(prompt)
    with pytest.raises(ValueError, match=r"image: expected an \(H, W, 3\) uint8"):
        model.caption(image[..., :2], tokenizer=tokenizer)
