"""Conformance kit: base test classes a plugin's own tests subclass to prove the plugin is well formed.

Codec plugin::

    from jat_core.testing import CodecConformance

    class TestMyCodec(CodecConformance):
        plugin = my_package.plugin          # the module with the hook implementations
        codec_name = "mycodec"

        def make_codec(self):               # a small instance
            ...
        def example(self, role):            # (values, rewards) with B=2, T=3 for each supported role
            ...

Domain plugin::

    from jat_core.testing import DomainConformance

    class TestMyDomain(DomainConformance):
        plugin = my_package.plugin
        env_tasks = ["mydomain-task"]       # tasks whose env is made, reset and stepped (default: the first)
        expert_tasks = ["mydomain-task"]    # tasks whose expert plays (default: the env tasks with an expert,
                                            # else the first task with one)

Pytest collects the ``test_*`` methods of the subclass. Nothing here runs on its own (the base classes are not
named ``Test*``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jat_core.codec import ACTION, OBSERVATION, SEQUENCE, Codec
from jat_core.plugins import Registry, load_plugins
from jat_core.specs import TaskSpec, check_field_value  # noqa: F401  (re-exported for plugin tests)

B, T = 2, 3

class CodecConformance:
    """Base class: subclass it in a codec plugin's tests. See the module docstring."""

    plugin: Any = None
    codec_name: str = ""
    #: name under which the plugin is registered for the test
    plugin_name: str = "under-test"

    def make_codec(self) -> Codec:  # pragma: no cover - subclass
        """Return a small instance of the codec."""
        raise NotImplementedError

    def example(self, role: str) -> tuple[Any, Any]:  # pragma: no cover - subclass
        """Return ``(values, rewards)`` for ``role`` with batch 2 and 3 timesteps (``rewards`` may be None)."""
        raise NotImplementedError

    def raw_example(self, role: str) -> Any:
        """Optional: raw values for ``role`` as an env or data set gives them (B=2, T=3), for ``prepare``.

        Return ``None`` (the default) to skip the ``prepare`` test.
        """
        return None

    def action_field(self) -> Any:
        """Optional, for a codec that predicts actions: a small :class:`jat_core.specs.FieldSpec` of an action it
        encodes, for the acting test (``action_size``, ``decode(size=...)``, ``choose``). Default: ``None`` (skip)."""
        return None

    def bad_examples(self, role: str) -> list[tuple[Any, Any]]:
        """Optional: ``(values, rewards)`` pairs that ``encode`` must refuse with a ``ValueError`` naming the
        role's column (wrong shape, dtype, out-of-range values, missing reward...). Default: none."""
        return []

    @staticmethod
    def trainable_parameters(codec: Codec) -> list:
        """The codec's own parameters plus those of the shared parts it uses (``codec.shared``)."""
        params = list(codec.parameters())
        shared = getattr(codec, "shared", None)
        if shared is not None:
            params += list(shared.wte.parameters()) + list(shared.head.parameters())
        return params

    # -- tests -------------------------------------------------------------------------------------------
    def test_plugin_registers_codec(self):
        import pluggy

        from jat_core.plugins import make_plugin_manager

        pm = make_plugin_manager()
        pm.register(self.plugin, name=self.plugin_name)
        pm.check_pending()
        registry = Registry()  # its register_codec checks the name, the factory and the options
        for impl in pm.hook.jat_register_codecs.get_hookimpls():
            impl.function(register=lambda *args, **kwargs: registry.register_codec(self.plugin_name, *args, **kwargs))
        names = list(registry.codecs)
        assert self.codec_name in names, f"plugin does not register codec {self.codec_name!r}; it registers {names}"
        assert isinstance(pm, pluggy.PluginManager)

    def test_declares_roles_and_columns(self):
        codec = self.make_codec()
        assert isinstance(codec, Codec)
        assert codec.name == self.codec_name
        assert codec.roles and set(codec.roles) <= {OBSERVATION, ACTION, SEQUENCE}
        for role in codec.roles:
            assert isinstance(codec.columns.get(role), str), f"no column declared for role {role!r}"
        assert set(codec.predicts) <= set(codec.roles)

    def test_encode_shape(self):
        codec = self.make_codec()
        for role in codec.roles:
            values, rewards = self.example(role)
            out = codec.encode(values, rewards, role=role)
            assert out.dim() == 3 and out.shape[0] == B, f"{role}: encode gave {tuple(out.shape)}"
            if role != SEQUENCE:
                assert out.shape[1] == T, f"{role}: encode gave {tuple(out.shape)}, expected (B={B}, T={T}, H)"

    def test_decode_and_loss_shape(self):
        import torch

        codec = self.make_codec()
        for role in codec.predicts:
            values, rewards = self.example(role)
            hidden = codec.encode(values, rewards, role=role)
            preds = codec.decode(hidden, role=role)
            assert preds.shape[:2] == hidden.shape[:2]
            mask = torch.ones(hidden.shape[:2], dtype=torch.bool)
            mask[0, -1] = False
            loss = codec.loss(preds, values, mask, role=role, rewards=rewards)
            assert loss.shape == hidden.shape[:2], f"{role}: loss shape {tuple(loss.shape)}"
            assert torch.isfinite(loss).all()
            assert float(loss[0, -1].detach()) == 0.0, "loss must be zero at masked steps"
            loss.sum().backward()
            grads = [p.grad for p in self.trainable_parameters(codec) if p.requires_grad]
            assert any(g is not None and g.abs().sum() > 0 for g in grads), "no gradient reaches the codec"

    def test_loss_ignores_masked_steps(self):
        import torch

        codec = self.make_codec()
        for role in codec.predicts:
            values, rewards = self.example(role)
            with torch.no_grad():
                preds = codec.decode(codec.encode(values, rewards, role=role), role=role)
                mask = torch.ones(preds.shape[:2], dtype=torch.bool)
                mask[1, 0] = False
                # another valid example's values at the masked step must not change the loss
                other, other_rewards = self.example(role)
                values2 = torch.as_tensor(values).clone()
                values2[1, 0] = torch.as_tensor(other)[0, 1]
                rewards2 = None
                if rewards is not None:
                    rewards2 = torch.as_tensor(rewards).clone()
                    rewards2[1, 0] = rewards2[1, 0] + 1.0
                a = codec.loss(preds, values, mask, role=role, rewards=rewards)
                b = codec.loss(preds, values2, mask, role=role, rewards=rewards2)
            assert torch.equal(a, b), f"{role}: loss depends on a masked step"

    def test_prepare_then_encode(self):
        codec = self.make_codec()
        for role in codec.roles:
            raw = self.raw_example(role)
            if raw is None:
                continue
            prepared = codec.prepare(raw, role=role)
            _, rewards = self.example(role)
            out = codec.encode(prepared, rewards, role=role)
            assert out.dim() == 3 and out.shape[0] == B, f"{role}: prepare -> encode gave {tuple(out.shape)}"

    def test_chooses_valid_actions(self):
        """What an agent does with the codec: decode ``action_size(field)`` outputs from a state, then ``choose``
        actions (deterministic and sampled) that fit the field, as many as envs."""
        import torch

        field = self.action_field()
        codec = self.make_codec()
        if field is None or ACTION not in codec.predicts:
            return
        size = codec.action_size(field)
        hidden = codec.encode(*self.example(ACTION), role=ACTION)  # any (B, T, H) states will do
        prediction = codec.decode(hidden, role=ACTION, size=size)[:, 0]  # (N, size): one step of N = B envs
        assert prediction.shape == (B, size), f"decode(size={size}) gave {tuple(prediction.shape)}"
        generator = torch.Generator().manual_seed(0)
        for deterministic in (True, False):
            actions = codec.choose(prediction.detach(), field, deterministic=deterministic, generator=generator)
            assert tuple(actions.shape) == (B, *field.shape), f"choose gave {tuple(actions.shape)}"
            check_field_value(field, actions.numpy(), task="conformance", batch=(B,))

    def test_bad_input_names_the_field(self):
        import pytest

        codec = self.make_codec()
        for role in codec.roles:
            for values, rewards in self.bad_examples(role):
                with pytest.raises(ValueError) as info:
                    codec.encode(values, rewards, role=role)
                message = str(info.value)
                assert codec.columns[role] in message or "rewards" in message, (
                    f"{role}: error does not name the field: {message}"
                )


class DomainConformance:
    """Base class: subclass it in a domain plugin's tests. See the module docstring."""

    plugin: Any = None
    plugin_name: str = "under-test"
    #: tasks whose environment is made, reset and stepped; ``None``: the first registered task with an env.
    env_tasks: list[str] | None = None
    #: tasks whose expert (``TaskSpec.expert``) plays ``steps`` steps; ``None``: the ``env_tasks`` that have an
    #: expert, else the first registered task with one (none when the plugin has no expert).
    expert_tasks: list[str] | None = None
    steps: int = 5

    def _tasks(self) -> list[TaskSpec]:
        from jat_core.plugins import make_plugin_manager

        pm = make_plugin_manager()
        pm.register(self.plugin, name=self.plugin_name)
        pm.check_pending()
        tasks: list[TaskSpec] = []
        for impl in pm.hook.jat_register_tasks.get_hookimpls():
            impl.function(register=tasks.append)
        return tasks

    def test_registers_valid_tasks(self):
        tasks = self._tasks()
        assert tasks, "the plugin registers no task"
        assert all(isinstance(t, TaskSpec) for t in tasks)
        names = [t.name for t in tasks]
        assert len(set(names)) == len(names), "task names must be unique"

    def test_codecs_are_installed(self):
        registry = load_plugins()
        for spec in self._tasks():
            for f in spec.fields:
                assert f.codec in registry.codecs, f"{spec.name}: codec {f.codec!r} of {f.name!r} not installed"

    def _env_task_names(self, tasks: dict[str, TaskSpec]) -> list[str]:
        """``env_tasks``, or the first task with an env (none for a plugin whose tasks have no env)."""
        return self.env_tasks or [n for n, t in tasks.items() if t.make_env is not None][:1]

    def test_env_observations_match_spec(self):
        tasks = {t.name: t for t in self._tasks()}
        for name in self._env_task_names(tasks):
            spec = tasks[name]
            env = spec.make_env()
            try:
                obs, _ = env.reset(seed=0)
                self._check_obs(spec, obs)
                for _ in range(self.steps):
                    action = env.action_space.sample()
                    check_field_value(spec.action, np.asarray(action), task=name)
                    obs, reward, terminated, truncated, _ = env.step(action)
                    self._check_obs(spec, obs)
                    assert np.isfinite(float(reward))
                    if terminated or truncated:
                        obs, _ = env.reset()
            finally:
                env.close()

    def test_action_field_fits_the_env(self):
        """The action field describes the env's action space: a choice among ``n`` actions may not offer more
        than the env takes (the agent would pick actions the env refuses), a vector has the space's shape."""
        tasks = {t.name: t for t in self._tasks()}
        for name in self._env_task_names(tasks):
            spec = tasks[name]
            env = spec.make_env()
            try:
                space, field = env.action_space, spec.action
                if hasattr(space, "n"):  # a choice among n
                    assert field.n is not None and field.n <= int(space.n), (
                        f"{name}: action field {field.name!r} has n={field.n}, the env's action space takes {space.n}"
                    )
                else:
                    assert tuple(space.shape) == field.shape, (
                        f"{name}: action field {field.name!r} has shape {field.shape}, the env's action space {space.shape}"
                    )
            finally:
                env.close()

    def test_expert_plays(self):
        """The expert runs as ``jat-collect`` runs it: ``expert(env)`` right after a reset makes a policy, and
        ``policy(observation)`` returns actions that fit the action field and that the env takes (``None``: the
        policy gives up on the episode; a new episode and policy follow)."""
        tasks = {t.name: t for t in self._tasks()}
        names = self.expert_tasks
        if names is None:
            names = [n for n in self._env_task_names(tasks) if tasks[n].expert is not None]
            names = names or [n for n, t in tasks.items() if t.expert is not None][:1]
        for name in names:
            spec = tasks[name]
            assert spec.expert is not None and spec.make_env is not None, f"{name}: no expert, or no env to play in"
            env = spec.make_env()
            try:
                obs, _ = env.reset(seed=0)
                policy = spec.expert(env)
                for _ in range(self.steps):
                    action = policy(obs)
                    if action is None:
                        obs, _ = env.reset()
                        policy = spec.expert(env)
                        continue
                    check_field_value(spec.action, np.asarray(action), task=name)
                    obs, reward, terminated, truncated, _ = env.step(action)
                    self._check_obs(spec, obs)
                    if terminated or truncated:
                        obs, _ = env.reset()
                        policy = spec.expert(env)
            finally:
                env.close()

    @staticmethod
    def _check_obs(spec: TaskSpec, obs: Any) -> None:
        assert isinstance(obs, dict), f"{spec.name}: observations must be dicts keyed by field name, got {type(obs)}"
        assert set(obs) == {f.name for f in spec.observation}, (
            f"{spec.name}: observation keys {sorted(obs)} != spec fields {[f.name for f in spec.observation]}"
        )
        for f in spec.observation:
            check_field_value(f, obs[f.name], task=spec.name)
