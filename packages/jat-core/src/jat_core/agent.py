"""``JatAgent``: batched, incremental inference for acting in environments.

Usage (a gymnasium vector env of ``N`` copies of one task, or a single env)::

    agent = model.agent(task)                    # a TaskSpec, or a task name resolved by the plugin registry
    agent.reset(num_envs=N)
    observations, _ = envs.reset(seed=0)
    rewards = np.zeros(N)
    while ...:
        actions = agent.act(observations, rewards)          # (N,) ints or (N, A) floats
        observations, rewards, terminated, truncated, _ = envs.step(actions)
        agent.reset(env_ids=terminated | truncated)          # before the next episode's first observation

The last line assumes the vector env's ``autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP`` (the observation
returned with ``terminated | truncated`` is already the next episode's first one). With gymnasium's default
``NEXT_STEP`` mode, reset with the *previous* step's flags instead, just before ``act``: the step after an episode
ends returns the new episode's first observation (the terminal observation before it goes to the old episode,
and the env ignores the action chosen for it).

``observations`` is what the env returns for the task's observation fields (a dict of ``(N, *shape)`` arrays;
string fields as ``N`` strings); with ``N == 1`` the unbatched values of a single env are accepted too, and then
one action comes back. ``rewards[i]`` is the reward env ``i`` received for the previous action (``rewards`` may be
``None`` on the first step); as in the data (``jat_core.sequence.shift_rewards``) the first observation of an
episode carries reward 0, whatever is passed.

How a step works. Env ``i``'s context is the token sequence ``[o_0, a_0, o_1, a_1, ..., o_t]`` of its current
episode (from the window start), at positions ``0, 1, 2, ...``. The trunk's KV cache holds every token up to
``o_{t-1}``; one ``act`` feeds only the two new tokens ``[a_{t-1}, o_t]`` for all envs in one trunk call, reads
the hidden state at ``o_t`` and decodes only the task's action: ``decode(role="action", size=codec.action_size(field))``
(e.g. the first ``n`` logits of a choice among ``n``, or the ``A`` values of a vector). The observation decoder never
runs.

Batch layout. All envs share the cache's slot axis. Each env's tokens are always the *last* ``len_i`` slots of
its row (a reset env just stops counting its old slots; a padding slot stands for the missing previous action
of an episode's first step), so an ``(N, slots)`` mask built from the lengths hides everything else, and the
trunk's slot-based causal and local-window masks are exact because each env's valid slots are contiguous.
Positions are explicit and per env.

Sliding (``context_steps`` = ``S`` steps; default: the task's training window ``TaskSpec.context_steps`` when
it sets one (Atari: 32), else the most that fits, ``(max_position_embeddings + 1) // 2`` = 256). When
env ``i``'s next observation would make its window longer than ``S`` steps, the window slides: it keeps its last
``keep_steps`` steps (default ``S // 2``; the new observation included) and those are re-encoded from position
0 (their token embeddings are kept, so no codec runs again; one trunk call for all envs that slide together).
Positions therefore stay within ``[0, 2S - 1)`` and the agent sees exactly what a full forward pass over the
kept window sees: the windows the model was trained on also start at position 0 anywhere in an episode. The
cost is amortised: one batched pass over ``2 * keep_steps - 3`` tokens every ``S - keep_steps + 1`` steps (with
the default, about one more token per step and env than the two fed incrementally; a smaller ``keep_steps``
trades context after a slide for speed). That pass only fills the cache (``cache_only``): the last layer computes
its keys and values and nothing after them, which saves much of a slide's cost. When reset
envs leave dead slots behind, the cache drops the leading slots no env uses (``_rebuild``).

Actions. The action codec chooses them from the prediction (:meth:`jat_core.codec.Codec.choose`), deterministic or
sampled with the agent's seeded ``torch.Generator`` and temperature. The built-in codecs: the argmax of the ``n``
logits or a draw from ``softmax(logits / temperature)``; for vectors the predicted values (the model predicts no
spread, as the reference), clipped to the action field's ``[low, high]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from jat_core.cache import KVCache, SlotCache
from jat_core.codec import ACTION, OBSERVATION
from jat_core.normalization import REWARDS
from jat_core.processor import JatProcessor, check_observation_names
from jat_core.specs import TaskSpec, check_finite, check_task_codecs


def resolve_task(task: TaskSpec | str) -> TaskSpec:
    """A :class:`TaskSpec` as given, or the registered task of that name (:func:`jat_core.load_plugins`)."""
    if isinstance(task, TaskSpec):
        return task
    if isinstance(task, str):
        from jat_core.plugins import load_plugins

        return load_plugins().task(task)
    raise ValueError(f"task: expected a TaskSpec or a registered task name, got {type(task).__name__}")


class JatAgent:
    """Acts in a batch of ``N`` environments of one task with a :class:`jat_core.model.JatModel`.

    Args:
        model: the model (its device and dtype are used).
        task: a :class:`TaskSpec` with an action field, or a registered task name.
        deterministic: the most likely actions (True) or draws (False), see :meth:`jat_core.codec.Codec.choose`.
        temperature: divides the logits before sampling.
        context_steps: steps in the context window ``S``, at most ``(max_position_embeddings + 1) // 2`` (256);
            default: the task's ``context_steps`` (the window it was trained on) if set, else that maximum.
        keep_steps: steps kept when the window slides (default ``S // 2``; between 2 and ``S``).
        seed: seed of the sampling generator.
        tokenizer: tokenizer for string fields (default: ``model.tokenizer`` when the model has one).
        processor: a :class:`jat_core.processor.JatProcessor` (default: one built on ``model.codecs``).

    Attributes:
        last_prediction: ``(N, action_size)`` predictions (action logits, or unclipped action values)
            of the last ``act`` call, as float tensors.
    """

    def __init__(
        self,
        model: Any,
        task: TaskSpec | str,
        *,
        deterministic: bool = True,
        temperature: float = 1.0,
        context_steps: int | None = None,
        keep_steps: int | None = None,
        seed: int | None = None,
        tokenizer: Any = None,
        processor: Any = None,
    ) -> None:
        self.model = model
        self.task = resolve_task(task)
        if self.task.action is None:
            raise ValueError(f"task {self.task.name!r}: has no action field; an agent needs an RL task")
        self._check_task_fits(model)
        limit = (model.config.max_position_embeddings + 1) // 2
        if context_steps is None:
            context_steps = min(self.task.context_steps or limit, limit)
        self.context_steps = int(context_steps)
        if not 2 <= self.context_steps <= limit:
            raise ValueError(
                f"context_steps: expected an int in [2, {limit}] ((max_position_embeddings + 1) // 2), "
                f"got {context_steps!r}"
            )
        self.keep_steps = self.context_steps // 2 if keep_steps is None else int(keep_steps)
        if not 2 <= self.keep_steps <= self.context_steps:
            raise ValueError(f"keep_steps: expected an int in [2, {self.context_steps}], got {keep_steps!r}")
        if temperature <= 0:
            raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
        self.deterministic, self.temperature = deterministic, float(temperature)
        self.generator = torch.Generator(device=model.device)
        if seed is not None:
            self.generator.manual_seed(seed)

        if processor is None:
            processor = JatProcessor.from_model(model, tokenizer or getattr(model, "tokenizer", None))
        self.processor = processor
        action = self.task.action
        self.action_codec = model.codecs[action.codec]
        self.action_size = self.action_codec.action_size(action)
        self.num_envs: int | None = None
        self.device, self.dtype = model.device, model.dtype
        self._check_action_size()

    def _check_task_fits(self, model: Any) -> None:
        """The model has the task's codecs, in the roles the task uses them, and one observation token per step."""
        task = self.task
        check_task_codecs(task, model.codecs, owner="this model")
        for f, role in [(f, OBSERVATION) for f in task.observation] + [(task.action, ACTION)]:
            if role not in model.codecs[f.codec].roles:
                raise ValueError(f"task {task.name!r}: codec {f.codec!r} of {f.name!r} encodes no {role}s")
        used = sorted({f.codec for f in task.observation})
        if len(used) > 1:
            raise ValueError(
                f"task {task.name!r}: the model takes one observation token per step (one codec), the observation "
                f"fields use codecs {used}"
            )

    @torch.inference_mode()
    def _check_action_size(self) -> None:
        """The action codec gives as many outputs (logits, values...) as the action field needs."""
        action, H = self.task.action, self.model.config.hidden_size
        probe = self.action_codec.decode(
            torch.zeros(1, 1, H, dtype=self.dtype, device=self.device), role=ACTION, size=self.action_size
        )
        if probe.shape[-1] != self.action_size:
            raise ValueError(
                f"task {self.task.name!r}: action field {action.name!r} needs {self.action_size} "
                f"{self.action_codec.action_unit}, codec "
                f"{action.codec!r} of this model gives {probe.shape[-1]}"
            )

    # -- episodes --------------------------------------------------------------------------------------------
    @torch.inference_mode()  # like act: the state tensors are created and updated in inference mode only
    def reset(self, num_envs: int | None = None, env_ids: Any = None) -> None:
        """Start new episodes.

        Args:
            num_envs: start ``num_envs`` fresh episodes (everything is cleared).
            env_ids: clear only these envs' histories (indices, or an ``(N,)`` bool mask such as
                ``terminated | truncated``); requires an earlier ``reset(num_envs)``.
        """
        if num_envs is None and env_ids is None:
            raise ValueError("JatAgent.reset: pass num_envs (start over) or env_ids (end some episodes)")
        if num_envs is not None:
            if not isinstance(num_envs, (int, np.integer)) or num_envs <= 0:
                raise ValueError(f"num_envs: expected a positive int, got {num_envs!r}")
            H = self.model.config.hidden_size
            self.num_envs = int(num_envs)
            # token embeddings of each env's window: [:, s, 0] = o_s, [:, s, 1] = a_s  (N, S, 2, H)
            self._history = torch.zeros(self.num_envs, self.context_steps, 2, H, dtype=self.dtype, device=self.device)
            self._filled = torch.zeros(self.num_envs, dtype=torch.long)  # (N,) steps of the window seen
            self._envs = torch.arange(self.num_envs)  # (N,) row indices, reused every step
            config = self.model.config
            shape = (self.num_envs, config.num_heads, 2 * self.context_steps, H // config.num_heads)
            self._cache = SlotCache(config.num_layers, shape, self.dtype, self.device)
            self.last_prediction: torch.Tensor | None = None
            if env_ids is None:
                return
        self._require_reset("reset(env_ids=...)")
        ids = np.asarray(env_ids)
        if ids.dtype == bool:
            if ids.shape != (self.num_envs,):
                raise ValueError(f"env_ids: expected a ({self.num_envs},) bool mask, got shape {ids.shape}")
            ids = np.flatnonzero(ids)
        ids = ids.reshape(-1)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= self.num_envs):
            raise ValueError(f"env_ids: expected env indices in [0, {self.num_envs}), got {env_ids!r}")
        self._filled[torch.as_tensor(ids, dtype=torch.long)] = 0
        if not bool(self._filled.any()):
            self._rebuild(torch.zeros(self.num_envs, dtype=torch.bool))  # empties the cache

    def _require_reset(self, what: str) -> None:
        if self.num_envs is None:
            raise RuntimeError(f"JatAgent.{what}: call reset(num_envs) first (task {self.task.name!r})")

    # -- acting ----------------------------------------------------------------------------------------------
    def act(self, observations: Mapping[str, Any], rewards: Any = None) -> np.ndarray | int | float:
        """Choose the next action of every env.

        Args:
            observations: ``{field name: (N, *field.shape) array}`` for each observation field of the task
                (string fields: ``N`` strings); with one env, unbatched values are accepted.
            rewards: ``(N,)`` rewards received after the previous actions (a scalar with one unbatched env), or
                ``None`` (zeros).

        Returns:
            ``(N, *shape)`` actions from the action codec (the built-in ones: ``(N,)`` int64 choices, or float32
            vectors clipped to the action space); for an unbatched single env, one ``int`` or one ``(*shape,)`` array.

        Raises:
            RuntimeError: ``act`` before ``reset``.
            ValueError: missing / unknown fields, a wrong shape, dtype or value range, NaN or infinite values
                (naming the task and field), rewards of the wrong length or not finite.
        """
        self._require_reset("act")
        observations, rewards, batched = self._batch_inputs(observations, rewards)
        prediction, actions = self._act(observations, rewards)
        # a normal tensor (cloned outside inference mode): callers may modify it or use it with autograd
        self.last_prediction = prediction.clone()  # (N, n) or (N, A)
        if batched:
            return actions
        one = actions[0]  # a single unbatched env: a scalar integer action as an int, else its (*shape,) array
        return one.item() if np.ndim(one) == 0 and one.dtype.kind in "iub" else one

    @torch.inference_mode()
    def _act(self, observations: dict[str, torch.Tensor], rewards: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """One step of every env from prepared inputs; returns the float ``(N, n)`` / ``(N, A)`` prediction and the
        ``(N, ...)`` actions."""
        rewards = torch.where(self._filled == 0, 0.0, rewards)  # an episode's first observation carries 0
        rewards = self.processor.normalize(self.task, REWARDS, rewards)  # as the training data's, if the model has stats
        obs_emb = self._embed_observations(observations, rewards)  # (N, H)

        slide = self._filled == self.context_steps  # (N,) the new observation does not fit
        if bool(slide.any()):
            self._slide(slide)
        hidden = self._feed(obs_emb)  # (N, H) state at the new observation

        prediction = self.action_codec.decode(hidden[:, None], role=ACTION, size=self.action_size)[:, 0]
        actions = self.action_codec.choose(
            prediction, self.task.action, deterministic=self.deterministic, temperature=self.temperature,
            generator=self.generator,
        )
        self._store_actions(actions)
        return prediction.float(), actions.cpu().numpy()

    def _batch_inputs(self, observations, rewards) -> tuple[dict[str, torch.Tensor], torch.Tensor, bool]:
        """Validate and prepare the inputs; returns ``({column: (N, 1, ...) tensor}, (N,) float rewards, batched)``."""
        task, N = self.task, self.num_envs
        if not isinstance(observations, Mapping):
            raise ValueError(
                f"task {task.name!r}: observations must be a dict keyed by field name, got {type(observations).__name__}"
            )
        check_observation_names(task, observations)
        first = task.observation[0]
        value = observations[first.name]
        batched = not (
            N == 1 and (isinstance(value, str) if first.dtype == "string" else np.ndim(value) == len(first.shape))
        )
        if not batched:  # one env's unbatched values
            observations = {
                f.name: [observations[f.name]] if f.dtype == "string" else np.asarray(observations[f.name])[None]
                for f in task.observation
            }
        prepared = self.processor.prepare_observations(task, observations, envs=N)
        r = np.zeros(N, dtype=np.float32) if rewards is None else np.asarray(rewards, dtype=np.float32)
        r = r.reshape(1) if (not batched and r.ndim == 0) else r
        if r.shape != (N,):
            raise ValueError(f"task {task.name!r}: rewards: expected shape ({N},) (one per env), got {r.shape}")
        check_finite(r, field=f"task {task.name!r}: rewards")
        return prepared, torch.from_numpy(r), batched

    def _embed_observations(self, prepared: dict[str, torch.Tensor], rewards: torch.Tensor) -> torch.Tensor:
        """``{column: (N, 1, ...)}`` prepared observations (one column: the task's fields share one codec) and
        ``(N,)`` rewards -> ``(N, H)`` observation token embeddings."""
        (values,) = prepared.values()
        codec = self.model.codecs[self.task.observation[0].codec]
        # contiguous: a permuted batch (e.g. channels-last image frames) runs the encoder slower, never faster;
        # the values are the same
        values = values.to(self.device).contiguous()
        emb = codec.encode(values, rewards[:, None].to(self.device), role=OBSERVATION)  # (N, 1, H)
        return emb[:, 0].to(self._history.dtype)

    def _store_actions(self, actions: torch.Tensor) -> None:
        """Embed the chosen ``(N, ...)`` actions into each env's history (fed with the next observation)."""
        values = self.action_codec.prepare(actions[:, None], role=ACTION)  # (N, 1, ...) our own, valid, actions
        emb = self.action_codec.encode(values.to(self.device), role=ACTION)  # (N, 1, H)
        step = self._filled - 1  # the current step of each env
        self._history[self._envs, step, 1] = emb[:, 0].to(self._history.dtype)

    # -- the cache -------------------------------------------------------------------------------------------
    def _feed(self, obs_emb: torch.Tensor) -> torch.Tensor:
        """Feed ``[a_{t-1}, o_t]`` of every env through the trunk with the cache; return ``(N, H)`` at ``o_t``."""
        N, f, envs = self.num_envs, self._filled.clone(), self._envs  # f: (N,) steps before this one
        if bool((f > 0).any()):
            prev = self._history[envs, (f - 1).clamp(min=0), 1]  # (N, H) previous actions (junk where f == 0)
            tokens = torch.stack((prev, obs_emb), dim=1)  # (N, 2, H)
            positions = torch.stack(((2 * f - 1).clamp(min=0), 2 * f), dim=1)  # (N, 2)
        else:
            tokens, positions = obs_emb[:, None], torch.zeros(N, 1, dtype=torch.long)  # (N, 1, H), (N, 1)
        L = tokens.shape[1]
        if self._cache.get_seq_length() + L > 2 * self.context_steps:
            self._rebuild(torch.zeros(N, dtype=torch.bool))  # drop slots no env uses
        lengths = 2 * f + 1  # (N,) tokens of each env once o_t is in
        total = self._cache.get_seq_length() + L
        mask = None
        if not bool((lengths == total).all()):
            mask = torch.arange(total)[None, :] >= (total - lengths)[:, None]  # (N, slots + L)
            mask = mask.to(self.device)
        out = self.model.transformer(
            inputs_embeds=tokens,
            attention_mask=mask,
            position_ids=positions.to(self.device),
            past_key_values=self._cache,
        )
        self._history[envs, f, 0] = obs_emb
        self._filled += 1
        return out.last_hidden_state[:, -1]  # (N, H)

    def _slide(self, slide: torch.Tensor) -> None:
        """Shorten the windows of the envs in ``slide`` (``(N,)`` bool, all full) to their last ``keep_steps - 1``
        completed steps, re-encoded from position 0; the new observation makes ``keep_steps``."""
        kept = self.keep_steps - 1
        ids = slide.nonzero()[:, 0]
        history = self._history[ids, self.context_steps - kept :]  # (n, kept, 2, H)
        self._history[ids, :kept] = history
        self._filled[ids] = kept
        self._rebuild(slide)

    def _rebuild(self, slide: torch.Tensor) -> None:
        """Rebuild the cache: keep its last ``max(len_i)`` slots (every env's tokens are the last ``len_i`` of its
        row) and write the re-encoded windows of the envs in ``slide`` (``(N,)`` bool) at the end of their rows."""
        lengths = torch.where(self._filled > 0, 2 * self._filled - 1, 0)  # (N,) tokens each env needs
        slots = int(lengths.max())
        every = bool(slide.all())  # every env slides: all kept slots are rewritten below, none is copied
        self._cache.keep_last(slots, copy=not every)
        if not bool(slide.any()):
            return
        ids = slide.nonzero()[:, 0]
        n = int(lengths[ids[0]])  # every sliding env keeps the same number of steps
        tokens = self._history[ids, : (n + 1) // 2].flatten(1, 2)[:, :n]  # (s, n, H): [o_0, a_0, ..., o_k]
        fresh = KVCache()
        self.model.transformer(inputs_embeds=tokens, past_key_values=fresh, cache_only=True)  # positions 0 .. n - 1
        self._cache.write(slice(None) if every else ids.to(self.device), slots - n, fresh)
