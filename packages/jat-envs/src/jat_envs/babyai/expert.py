"""The BabyAI expert: minigrid's BabyAI bot, with guards against its endless loops.

The bot plans on the env's true state (``env.unwrapped``); of the observation it is given it reads only which
cells of the view are visible (:class:`jat_envs.babyai.bot.FastBot`, the bot with its costly steps done faster to
the same decisions), so it must be given the env's latest observation. It must be created right after ``reset``
and asked for exactly one action per step, which is what ``TaskSpec.expert`` promises (a fresh policy per
episode, after each reset).

On a few levels (``UnlockToUnlock``, rarely ``GoToImpUnlock``) the bot can plan for ever inside one call: it keeps
pushing subgoals. Three guards turn that into a skipped episode: a budget of subgoals per planning call
(deterministic), a step budget per episode, and a wall-clock budget per episode. When a guard trips (or the bot
raises), the policy warns and returns ``None``, which tells ``jat-collect`` to drop the episode.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

#: subgoals the bot may push during one planning call before it counts as a loop: ten times what the bot
#: pushes on any of the 39 levels when it does not loop
MAX_SUBGOALS_PER_STEP = 100
#: steps per episode; BabyAI levels truncate themselves well before this
MAX_STEPS = 10_000
#: wall-clock seconds per episode (the slowest levels take well under a second)
MAX_SECONDS = 30.0


class PlanningLoop(RuntimeError):
    """The bot exceeded its subgoal budget within one planning call."""


class _BudgetedStack(list):
    """The bot's subgoal stack, refusing more than ``limit`` pushes per planning call (see :meth:`refill`)."""

    limit = budget = MAX_SUBGOALS_PER_STEP

    def refill(self, limit: int) -> None:
        """Allow ``limit`` more pushes (called before each planning call)."""
        self.limit = self.budget = limit

    def append(self, item):
        self.budget -= 1
        if self.budget < 0:
            raise PlanningLoop(f"the bot pushed more than {self.limit} subgoals in one step")
        super().append(item)


def expert(
    env: Any,
    *,
    max_subgoals: int = MAX_SUBGOALS_PER_STEP,
    max_steps: int = MAX_STEPS,
    max_seconds: float = MAX_SECONDS,
) -> Callable[[dict], int | None]:
    """A BabyAI bot policy for the episode that ``env`` has just been reset to.

    Args:
        env: a BabyAI env from :func:`jat_envs.babyai.env.make_env`, freshly reset.
        max_subgoals: subgoal pushes allowed per planning call.
        max_steps: actions allowed in the episode.
        max_seconds: wall-clock seconds allowed for the episode.

    Returns:
        ``policy(observation) -> action`` (an ``int``), or ``None`` once a guard trips or the bot fails;
        ``observation`` is the env's latest (the bot marks the cells it sees from its ``discrete_observations``;
        without that field it asks the env for the view).
    """
    from jat_envs.babyai.bot import FastBot

    bot = FastBot(env)
    bot.stack = _BudgetedStack(bot.stack)
    start = time.monotonic()
    steps = 0

    def policy(observation: dict) -> int | None:
        nonlocal steps
        if steps >= max_steps or time.monotonic() - start > max_seconds:
            warnings.warn(
                f"{_name(env)}: the BabyAI bot ran out of steps or time; giving up this episode", stacklevel=2
            )
            return None
        steps += 1
        bot.stack.refill(max_subgoals)
        if "discrete_observations" in observation:
            bot.see(observation["discrete_observations"])
        try:
            return int(bot.replan())
        except Exception as exc:  # the bot is a heuristic planner: any failure only costs this episode
            warnings.warn(f"{_name(env)}: the BabyAI bot failed ({exc!r}); giving up this episode", stacklevel=2)
            return None

    return policy


def _name(env: Any) -> str:
    """The env's id (for warnings)."""
    return env.unwrapped.spec.id if env.unwrapped.spec else type(env.unwrapped).__name__
