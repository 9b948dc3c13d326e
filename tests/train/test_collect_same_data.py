"""jat-collect's faster BabyAI and Meta-World pieces collect the same data as minigrid's and Meta-World's own code.

The reference collections below restore, in the env ``make_env`` built, the library's own methods that
``jat_envs`` replaces (minigrid's ``gen_obs``, Meta-World's ``touching_object``) and play minigrid's own BabyAI bot;
everything collected (every split, column and value) must be equal. The digests pin BabyAI's data (integers, and
rewards computed from step counts) for the minigrid version of ``constraints.txt``.
"""

import dataclasses
import importlib.util
import warnings
from pathlib import Path

import pytest
from jat_core.plugins import load_plugins
from jat_envs.babyai.expert import MAX_SUBGOALS_PER_STEP, _BudgetedStack
from jat_train.collection.collect import collect
from minigrid.utils.baby_ai_bot import BabyAIBot

#: sha256 of ``collect(task, 4, seed=0)`` (see :func:`digest`), collected with minigrid's own bot and gen_obs
DIGESTS = {
    "babyai-go-to": "bf6d82dc49d83095c75ac0c822a142ed0485f766880144ff22f7e340475c4495",
    "babyai-pickup-loc": "fbbaba7a1ee1aeadf239e69fdaecd32c011145f4c799bf162143276b1729beb2",
}


def _bench_digest():
    """``bench/collect.py``'s digest (the bench compares checkouts by it; a script, so loaded by path)."""
    path = Path(__file__).parents[2] / "bench" / "collect.py"
    spec = importlib.util.spec_from_file_location("bench_collect", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.digest


digest = _bench_digest()


def stock_bot(env):
    """The BabyAI expert with minigrid's own bot (the same loop guard as jat_envs.babyai.expert)."""
    bot = BabyAIBot(env)
    bot.stack = _BudgetedStack(bot.stack)

    def policy(observation):
        bot.stack.refill(MAX_SUBGOALS_PER_STEP)
        return int(bot.replan())

    return policy


def with_library_methods(task):
    """``task`` whose envs use the library's own methods again and, for BabyAI, whose expert is minigrid's bot."""

    def make_env():
        env = task.make_env()
        for name in ("gen_obs", "touching_object"):  # the instance attributes make_env installed
            env.unwrapped.__dict__.pop(name, None)
        return env

    expert = stock_bot if task.domain == "babyai" else task.expert
    return dataclasses.replace(task, make_env=make_env, expert=expert)


@pytest.fixture(scope="module")
def registry():
    return load_plugins("babyai,metaworld")


@pytest.mark.parametrize("name", ["babyai-go-to", "babyai-pickup-loc", "metaworld-push", "metaworld-reach"])
def test_collect_gathers_what_the_library_code_gathers(registry, name):
    task = registry.task(name)
    episodes = 4 if task.domain == "babyai" else 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the scripted policies warn about their constants
        ours = collect(task, episodes, seed=0, progress=False)
        theirs = collect(with_library_methods(task), episodes, seed=0, progress=False)
    for split in ("train", "test"):
        assert ours[split].to_dict() == theirs[split].to_dict(), (name, split)
    assert len(ours["train"]) + len(ours["test"]) == episodes
    if name in DIGESTS:
        assert digest(ours) == DIGESTS[name], name


def test_expert_evaluation_in_a_vector_env_plays_the_same_episodes(registry):
    """jat-eval's expert policy steps several envs with autoreset: the bot reads each env's own latest view."""
    from jat_train.evaluation.evaluate import run_episodes

    task = registry.task("babyai-go-to")
    ours = run_episodes(task, "expert", 6, 3, seed=0, progress=False)
    theirs = run_episodes(with_library_methods(task), "expert", 6, 3, seed=0, progress=False)
    assert ours["lengths"] == theirs["lengths"] and ours["returns"] == theirs["returns"]
    assert max(ours["lengths"]) > 20  # long episodes: the views of the three envs interleave
