"""Action noise for expert data collection (DART: Laskey et al., 2017, "Disturbances for Augmenting Robot
Trajectories").

A policy trained by behaviour cloning drifts, at test time, into states its expert never visited, and its
mistakes compound there. Collecting with a perturbed expert shows it those states: the env executes a noisy
action, while the data set records the expert's own action for the state it is in, so the model learns how the
expert recovers. ``jat-collect --action-noise SCALE`` does this for the training episodes (the test split stays
clean, so its returns are the expert's own).

The noise depends on the env's action space only (no domain is named):

- ``Box``: Gaussian noise of standard deviation ``scale * (high - low) / 2`` per dimension (``scale`` where a
  bound is infinite), the result clipped to the bounds;
- ``Discrete``: with probability ``scale``, a uniformly random action instead of the expert's.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ActionNoise:
    """Perturb the actions an env executes (see the module docstring).

    Args:
        space: the env's ``gymnasium`` action space (``Box`` or ``Discrete``).
        scale: noise scale in ``[0, 1]`` (0: the action unchanged).
        seed: seed of the noise (one per episode, so the data stay reproducible).

    Raises:
        ValueError: a scale outside ``[0, 1]``, or a space that is neither ``Box`` nor ``Discrete``.
    """

    def __init__(self, space: Any, scale: float, seed: int) -> None:
        from gymnasium import spaces

        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"action noise: expected a scale in [0, 1], got {scale}")
        if not isinstance(space, (spaces.Box, spaces.Discrete)):
            raise ValueError(f"action noise: expected a Box or Discrete action space, got {space}")
        self.space, self.scale = space, float(scale)
        self.rng = np.random.default_rng(seed)
        if isinstance(space, spaces.Box):
            low, high = space.low.astype(np.float64), space.high.astype(np.float64)
            finite = np.isfinite(low) & np.isfinite(high)
            self.std = np.where(finite, (high - low) / 2, 1.0) * self.scale  # (*shape,)

    def __call__(self, action: Any) -> Any:
        """The action to execute: ``action`` perturbed, inside the space, with the action's dtype."""
        from gymnasium import spaces

        if isinstance(self.space, spaces.Discrete):
            if self.rng.random() < self.scale:
                return int(self.space.start + self.rng.integers(self.space.n))
            return action
        a = np.asarray(action)
        noisy = a + self.rng.normal(size=a.shape) * self.std
        return np.clip(noisy, self.space.low, self.space.high).astype(a.dtype)
