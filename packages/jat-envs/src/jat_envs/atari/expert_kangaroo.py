"""The Kangaroo expert (``atari-kangaroo``): guards the bottom floor with emulator look-ahead.

Monkeys climb down the right-hand side and come at the kangaroo; punching one scores 200, and apples thrown or
dropped at her kill her unless she ducks, jumps or moves away. The policy stays on the bottom floor left of the
first ladder (RAM byte 17: her x) and punches; each step it plays candidate actions, each held for
:data:`KANGAROO_LOOKAHEAD` steps, on the emulator (:class:`jat_envs.atari.lookahead.Emulator`): the preferred
move, a punch and the previous action first, and if none of them survives, every action, keeping the one that
dies latest. Of the actions that survive it takes the one that scores most (then the preferred one). A life
starts falling when RAM byte 18 (her animation) turns 3 or 11. It does not climb to the joey: the score comes
from punching monkeys and apples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from jat_envs.atari.lookahead import Emulator

Policy = Callable[[dict], int]

#: RAM addresses: the kangaroo's x, her animation
KANGAROO_X, KANGAROO_ANIMATION = 17, 18
#: animation values of a kangaroo that was hit (she falls off the screen, then a life is lost)
KANGAROO_HIT = (3, 11)
#: the x she keeps (left of the first ladder, on the monkeys' side), and how far from it she may stand
KANGAROO_POST, KANGAROO_SLACK = 100, 4
#: steps each candidate action is held in the look-ahead (long enough to see an apple land)
KANGAROO_LOOKAHEAD = 12
#: minimal action set: NOOP, FIRE (punch), UP (jump), RIGHT, LEFT, DOWN (duck), ...
KANGAROO_NOOP, KANGAROO_FIRE, KANGAROO_UP, KANGAROO_RIGHT, KANGAROO_LEFT, KANGAROO_DOWN = range(6)
KANGAROO_ACTIONS = (KANGAROO_NOOP, KANGAROO_FIRE, KANGAROO_UP, KANGAROO_RIGHT, KANGAROO_LEFT, KANGAROO_DOWN)


class KangarooExpert:
    """The Kangaroo policy of one episode (see the module docstring)."""

    def __init__(self, env: Any):
        self.emu = Emulator(env)
        self.previous = KANGAROO_NOOP

    def outcome(self, action: int) -> tuple[float, int | None]:
        """Reward of holding ``action`` for :data:`KANGAROO_LOOKAHEAD` steps, and the frame she is hit at
        (``None``: not hit)."""
        was_hit = int(self.emu.ram()[KANGAROO_ANIMATION]) in KANGAROO_HIT
        hit: dict[str, int | None] = {"frame": None}

        def until(ram: np.ndarray, frame: int) -> bool:
            if not was_hit and int(ram[KANGAROO_ANIMATION]) in KANGAROO_HIT:
                hit["frame"] = frame
                return True
            return False

        reward, _, _ = self.emu.rollout([action] * KANGAROO_LOOKAHEAD, until)
        return reward, hit["frame"]

    def preferred(self) -> int:
        """Walk to :data:`KANGAROO_POST`, then punch."""
        x = int(self.emu.ram()[KANGAROO_X])
        if x < KANGAROO_POST - KANGAROO_SLACK:
            return KANGAROO_RIGHT
        if x > KANGAROO_POST + KANGAROO_SLACK:
            return KANGAROO_LEFT
        return KANGAROO_FIRE

    def __call__(self, observation: Any) -> int:
        preferred = self.preferred()
        outcomes = {a: self.outcome(a) for a in dict.fromkeys((preferred, KANGAROO_FIRE, self.previous))}
        safe = [a for a, (_, hit) in outcomes.items() if hit is None]
        if safe:
            action = max(safe, key=lambda a: (outcomes[a][0], a == preferred))
        else:
            for a in KANGAROO_ACTIONS:
                if a not in outcomes:
                    outcomes[a] = self.outcome(a)
            horizon = 4 * KANGAROO_LOOKAHEAD

            def value(a: int) -> tuple[float, float, bool]:
                reward, hit = outcomes[a]
                return (horizon if hit is None else hit), reward, a == preferred

            action = max(outcomes, key=value)
        self.previous = action
        return action


def kangaroo_expert(env: Any) -> Policy:
    """The Kangaroo expert of one episode: ``policy(observation) -> action`` (the observation is not used)."""
    return KangarooExpert(env)
