"""Emulator look-ahead for the Atari experts: play a few steps from a copy of the emulator state, then come back.

An expert that looks ahead plays candidate action sequences on the env's own emulator (``env.unwrapped.ale``)
with ``cloneState``/``restoreState``, frame by frame as the env's wrappers would (each env step is
:data:`jat_envs.atari.env.FRAME_SKIP` frames of the same action; actions are indices of the game's minimal
action set), and restores the state afterwards: the episode goes on exactly as if nothing had been tried. The
emulator is deterministic given its state and the envs use no sticky actions, so what a look-ahead sees is what
the same actions would do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jat_envs.atari.env import FRAME_SKIP


class Emulator:
    """The emulator of one wrapped Atari env, for experts: RAM, screen and look-ahead.

    Args:
        env: an env made by :func:`jat_envs.atari.env.make_env` (any wrapper stack over an ``AtariEnv``).
    """

    def __init__(self, env: Any):
        self.ale = env.unwrapped.ale
        self.action_set = list(self.ale.getMinimalActionSet())  # env action index -> ALE action

    def ram(self) -> np.ndarray:
        """The 128 bytes of the console's RAM now, ``(128,) uint8``."""
        return self.ale.getRAM()

    def screen(self) -> np.ndarray:
        """The screen now, ``(210, 160, 3) uint8`` RGB."""
        return self.ale.getScreenRGB()

    def rollout(
        self,
        actions: Sequence[int],
        until: Callable[[np.ndarray, int], bool] | None = None,
    ) -> tuple[float, int, int]:
        """Play ``actions`` (one per env step) from the current state, then restore the state.

        Args:
            actions: env action indices, one per env step of ``FRAME_SKIP`` frames.
            until: optional ``until(ram, frame) -> bool`` checked after each frame (``frame`` counts from 0);
                the rollout stops at the first frame where it is true.

        Returns:
            ``(reward, lives_lost, frames)``: the reward summed over the frames played, the lives lost, and how
            many frames were played (fewer than ``FRAME_SKIP * len(actions)`` when ``until`` stopped it or the
            game ended).
        """
        state, lives = self.ale.cloneState(), self.ale.lives()
        reward, frame = 0.0, 0
        try:
            for action in actions:
                for _ in range(FRAME_SKIP):
                    reward += self.ale.act(self.action_set[action])
                    frame += 1
                    if self.ale.game_over() or (until is not None and until(self.ale.getRAM(), frame - 1)):
                        return reward, lives - self.ale.lives(), frame
            return reward, lives - self.ale.lives(), frame
        finally:
            self.ale.restoreState(state)
