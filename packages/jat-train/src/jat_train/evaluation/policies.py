"""Batched policies for evaluation: one interface for a random policy, a task's expert, and a JAT model.

A :class:`BatchPolicy` acts for the ``num_envs`` environments of a gymnasium vector env at once:

- ``reset(num_envs, seeds)``: a new batch; called after the envs' first reset, with each env's episode seed;
- ``act(observations, rewards) -> actions``: ``observations`` is the batched dict the vector env returns
  (arrays with a leading ``num_envs`` axis; string fields as a tuple of ``str``), ``rewards`` a ``(num_envs,)``
  array of the rewards received just before these observations (0 at an episode's start); returns the batched
  actions the vector env's ``step`` takes;
- ``reset_env(i, seed)``: env ``i`` has just been reset for a new episode (seeded with ``seed``).

:func:`make_policy` builds one for a task from ``"random"``, ``"expert"``, a model with ``.agent(task)``, or
a factory ``f(task, envs) -> BatchPolicy``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from jat_core.specs import TaskSpec


@runtime_checkable
class BatchPolicy(Protocol):
    """Acts for a batch of environments; see the module docstring for the call order."""

    def reset(self, num_envs: int, seeds: list[int] | None = None) -> None:
        """Start a new batch of ``num_envs`` episodes (env ``i`` seeded with ``seeds[i]``)."""

    def reset_env(self, i: int, seed: int | None = None) -> None:
        """Env ``i`` has started a new episode."""

    def act(self, observations: dict[str, Any], rewards: np.ndarray) -> Any:
        """Batched actions, one per env, for the batched ``observations``."""


def env_slice(observations: dict[str, Any], i: int) -> dict[str, Any]:
    """The observation dict of env ``i`` out of a batched one (nested dicts are sliced too)."""
    return {k: env_slice(v, i) if isinstance(v, dict) else v[i] for k, v in observations.items()}


def stack_actions(actions: list[Any], space: gym.Space) -> np.ndarray:
    """Stack per-env actions into the batch a vector env's ``step`` takes, in the action space's dtype."""
    return np.stack([np.asarray(a, dtype=space.dtype) for a in actions])


class RandomPolicy:
    """Uniform random actions: ``action_space.sample()`` per env, re-seeded with each episode's seed.

    Args:
        action_space: the action space of one env.
    """

    def __init__(self, action_space: gym.Space):
        self.action_space = action_space
        self.spaces: list[gym.Space] = []

    def reset(self, num_envs: int, seeds: list[int] | None = None) -> None:
        """One private copy of the action space per env, seeded with ``seeds[i]``."""
        self.spaces = [copy.deepcopy(self.action_space) for _ in range(num_envs)]
        for i in range(num_envs):
            self.reset_env(i, None if seeds is None else seeds[i])

    def reset_env(self, i: int, seed: int | None = None) -> None:
        """Re-seed env ``i``'s sampler (so an episode's actions depend only on its seed)."""
        self.spaces[i].seed(seed)

    def act(self, observations: dict[str, Any], rewards: np.ndarray) -> np.ndarray:
        """One sample per env."""
        return stack_actions([s.sample() for s in self.spaces], self.action_space)


class ExpertPolicy:
    """The task's expert in each env, re-created at each episode start (experts may plan from the start state).

    Needs direct access to the sub-environments, so only works with a ``SyncVectorEnv``. An expert that gives up
    on an episode (returns ``None``, as a planning bot may when it loops) is replaced for the rest of that
    episode by random actions seeded with the episode's seed, so the episode still ends and counts.

    Args:
        task: the task; ``task.expert(env)`` returns ``policy(observation) -> action``.
        envs: the vector env the policy acts in.
    """

    def __init__(self, task: TaskSpec, envs: gym.vector.VectorEnv):
        if task.expert is None:
            raise ValueError(f"task {task.name!r} has no expert (TaskSpec.expert is None)")
        if not isinstance(envs, gym.vector.SyncVectorEnv):
            raise ValueError(
                f"task {task.name!r}: the expert policy needs a SyncVectorEnv (to reach each env), "
                f"got {type(envs).__name__}"
            )
        self.task = task
        self.envs = envs
        self.experts: list[Callable[[dict[str, Any]], Any] | None] = []
        self.fallback = RandomPolicy(envs.single_action_space)

    def reset(self, num_envs: int, seeds: list[int] | None = None) -> None:
        """One fresh expert per env."""
        self.fallback.reset(num_envs, seeds)
        self.experts = [self.task.expert(self.envs.envs[i]) for i in range(num_envs)]

    def reset_env(self, i: int, seed: int | None = None) -> None:
        """A fresh expert for env ``i`` (which has just been reset)."""
        self.fallback.reset_env(i, seed)
        self.experts[i] = self.task.expert(self.envs.envs[i])

    def act(self, observations: dict[str, Any], rewards: np.ndarray) -> np.ndarray:
        """Each env's expert action for its own observation."""
        actions = []
        for i, expert in enumerate(self.experts):
            action = expert(env_slice(observations, i)) if expert is not None else None
            if action is None:  # the expert gave up on this episode
                self.experts[i] = None
                action = self.fallback.spaces[i].sample()
            actions.append(action)
        return stack_actions(actions, self.envs.single_action_space)


def _inference_mode():
    import torch

    return torch.inference_mode()


class ModelPolicy:
    """A JAT model's batched agent (``jat_core.agent.JatAgent``).

    The agent keeps one context per env; ``reset_env(i)`` clears env ``i``'s (``agent.reset(env_ids=[i])``).

    Args:
        model: a ``JatModel``; its agent comes from ``model.agent(task, **agent_kwargs)`` when the model has that
            method, else ``JatAgent(model, task, **agent_kwargs)``.
        task: the task.
        action_space: the action space of one env (to convert the agent's actions).
        agent_kwargs: passed to the agent (``tokenizer``, ``deterministic``, ``seed``...).
    """

    def __init__(self, model: Any, task: TaskSpec, action_space: gym.Space, **agent_kwargs: Any):
        if hasattr(model, "agent"):
            self.agent = model.agent(task, **agent_kwargs)
        else:
            from jat_core.agent import JatAgent

            self.agent = JatAgent(model, task, **agent_kwargs)
        self.task = task
        self.action_space = action_space

    # Evaluation never needs gradients: every agent call runs in inference mode (its state tensors too).
    def reset(self, num_envs: int, seeds: list[int] | None = None) -> None:
        """Clear the agent's contexts and start ``num_envs`` episodes."""
        with _inference_mode():
            self.agent.reset(num_envs)

    def reset_env(self, i: int, seed: int | None = None) -> None:
        """Clear env ``i``'s context."""
        with _inference_mode():
            if hasattr(self.agent, "reset_env"):
                self.agent.reset_env(i)
            else:
                self.agent.reset(env_ids=[i])

    def act(self, observations: dict[str, Any], rewards: np.ndarray) -> np.ndarray:
        """The agent's actions as a numpy batch.

        Raises:
            ValueError: an action is NaN or infinite (a damaged model), naming the task and the envs.
        """
        with _inference_mode():
            actions = self.agent.act(observations, rewards)
        if hasattr(actions, "detach"):  # a torch tensor
            actions = actions.detach().cpu().numpy()
        actions = np.asarray(actions)
        if actions.dtype.kind in "fc" and not np.all(np.isfinite(actions)):
            rows = actions.reshape(actions.shape[0] if actions.ndim else 1, -1)
            bad = sorted({int(i) for i in np.argwhere(~np.isfinite(rows))[:, 0]})
            raise ValueError(
                f"task {self.task.name!r}: the model's agent returned non-finite actions for env(s) {bad}"
            )
        return np.asarray(actions, dtype=self.action_space.dtype)


PolicyLike = Any  # "random" | "expert" | a model with .agent(task) | a factory (task, envs) -> BatchPolicy


def make_policy(
    policy: PolicyLike, task: TaskSpec, envs: gym.vector.VectorEnv, **agent_kwargs: Any
) -> BatchPolicy:
    """Build the batched policy that evaluates ``task`` in ``envs``.

    Args:
        policy: ``"random"``, ``"expert"``, a model (``JatModel``), or a factory
            ``f(task, envs) -> BatchPolicy``.
        task: the task.
        envs: its vector env.
        agent_kwargs: passed to ``model.agent`` (models only).

    Returns:
        A :class:`BatchPolicy`.
    """
    if isinstance(policy, str):
        if policy == "random":
            return RandomPolicy(envs.single_action_space)
        if policy == "expert":
            return ExpertPolicy(task, envs)
        raise ValueError(f"policy must be 'random', 'expert', a model or a factory, got {policy!r}")
    if hasattr(policy, "agent") or hasattr(policy, "config"):  # a JatModel
        return ModelPolicy(policy, task, envs.single_action_space, **agent_kwargs)
    if callable(policy):
        return policy(task, envs)
    raise ValueError(f"policy must be 'random', 'expert', a model or a factory, got {type(policy).__name__}")
