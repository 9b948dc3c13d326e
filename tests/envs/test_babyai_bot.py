"""The faster BabyAI code computes what minigrid's does: the bot's actions, seen cells and searches; the view."""

import warnings

import numpy as np
import pytest
from jat_envs.babyai.bot import FastBot
from jat_envs.babyai.env import make_env
from jat_envs.babyai.expert import MAX_SUBGOALS_PER_STEP, _BudgetedStack, expert
from jat_envs.babyai.tasks import ENV_IDS
from minigrid.utils.baby_ai_bot import BabyAIBot

#: steps compared per episode at most (the slow stock bot sets the test's time)
MAX_STEPS = 150


def _side_by_side(env_a, env_b, seed: int) -> int:
    """Play the stock bot on ``env_a`` and :class:`FastBot` on ``env_b`` (the same level and seed), step by step;
    asserts the same action, seen cells and search counters at every step. Returns the steps played."""
    obs_a, _ = env_a.reset(seed=seed)
    obs_b, _ = env_b.reset(seed=seed)
    stock, fast = BabyAIBot(env_a), FastBot(env_b)
    for bot in (stock, fast):  # the expert's guard against the bot's endless planning, on both
        bot.stack = _BudgetedStack(bot.stack)
    for step in range(MAX_STEPS):
        np.testing.assert_array_equal(obs_a["discrete_observations"], obs_b["discrete_observations"])
        fast.see(obs_b["discrete_observations"])
        outcomes = []
        for bot in (stock, fast):
            bot.stack.refill(MAX_SUBGOALS_PER_STEP)
            try:
                outcomes.append(int(bot.replan()))
            except Exception as exc:  # the bot's own failures (a loop, an opened box) must match too
                outcomes.append(type(exc).__name__)
        where = f"{env_a.unwrapped.spec.id} seed {seed} step {step}"
        assert outcomes[0] == outcomes[1], where
        np.testing.assert_array_equal(stock.vis_mask, fast.vis_mask, err_msg=where)
        assert (stock.bfs_counter, stock.bfs_step_counter) == (fast.bfs_counter, fast.bfs_step_counter), where
        if isinstance(outcomes[0], str):
            return step + 1
        obs_a, _, terminated, truncated, _ = env_a.step(outcomes[0])
        obs_b, *_ = env_b.step(outcomes[1])
        if terminated or truncated:
            return step + 1
    return MAX_STEPS


@pytest.mark.parametrize("task", sorted(ENV_IDS))
def test_fast_bot_decides_as_minigrids_bot(task):
    env_id = ENV_IDS[task]
    env_a, env_b = make_env(env_id), make_env(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        steps = sum(_side_by_side(env_a, env_b, seed) for seed in (0, 1))
    assert steps > 2


def test_the_expert_without_an_observation_grid_plans_the_stock_way():
    """A caller that gives no observation grid gets the same actions (the bot then asks the env for the view)."""
    env = make_env("BabyAI-GoTo-v0")
    actions = []
    for with_grid in (True, False):
        obs, _ = env.reset(seed=3)
        policy, played = expert(env), []
        for _ in range(40):
            action = policy(obs if with_grid else {})
            played.append(action)
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        actions.append(played)
    assert actions[0] == actions[1] and len(actions[0]) > 3


@pytest.mark.parametrize("task", sorted(ENV_IDS))
def test_view_observes_as_minigrids_gen_obs(task):
    """The env's gen_obs (jat_envs.babyai.view) against minigrid's own, along random play (pickups, drops, doors)."""
    env = make_env(ENV_IDS[task])
    raw = env.unwrapped
    stock = type(raw).gen_obs  # minigrid's method, beneath the one make_env installs
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        env.reset(seed=seed)
        for step in range(100):
            ours, theirs = raw.gen_obs(), stock(raw)
            where = f"{task} seed {seed} step {step}"
            assert ours["direction"] == theirs["direction"] and ours["mission"] == theirs["mission"], where
            assert ours["image"].dtype == theirs["image"].dtype, where
            np.testing.assert_array_equal(ours["image"], theirs["image"], err_msg=where)
            _, _, terminated, truncated, _ = env.step(int(rng.integers(7)))
            if terminated or truncated:
                break


def test_the_fast_bot_overrides_methods_the_stock_bot_calls(monkeypatch):
    """FastBot replaces two of minigrid's own (private) methods: a minigrid release that renames them or stops
    calling them from ``replan`` must fail here, not leave the fast code unused without a word."""
    import inspect

    for name in ("_process_obs", "_breadth_first_search"):
        assert name in vars(BabyAIBot), f"minigrid's BabyAIBot has no {name} any more"
        stock = inspect.signature(vars(BabyAIBot)[name])
        assert inspect.signature(vars(FastBot)[name]).parameters.keys() == stock.parameters.keys(), name
    called = {"_process_obs": 0, "_breadth_first_search": 0}
    for name in called:
        original = vars(FastBot)[name]

        def spy(self, *args, _original=original, _name=name, **kwargs):
            called[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(FastBot, name, spy)
    env = make_env(ENV_IDS["babyai-go-to"])
    obs, _ = env.reset(seed=0)
    bot = FastBot(env)
    for _ in range(5):
        bot.see(obs["discrete_observations"])
        obs, *_ = env.step(int(bot.replan()))
    assert called["_process_obs"] >= 5 and called["_breadth_first_search"] > 0, called
