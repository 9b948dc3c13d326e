"""Plugin manager and registry: the core is assembled from whatever plugins are installed.

Plugins are found through the ``jat`` entry-point group. :func:`load_plugins` loads them by name (all when no
name is given; the ``JAT_PLUGINS`` environment variable, a comma-separated list, selects them the same way),
validates their hook implementations, and calls the two registration hooks to fill a :class:`Registry`.

Plugins that register only codecs are always loaded, whatever the selection: a model cannot be built without
its codecs, and a selection like ``--plugins atari,babyai`` is about tasks.

An exception raised by a plugin's code (a hook implementation, a codec factory) comes back as a
:class:`PluginError` that names the plugin and the hook or codec, with the original as ``__cause__``.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from jat_core import hookspecs
from jat_core.specs import TaskSpec

ENTRY_POINT_GROUP = "jat"
ENV_VAR = "JAT_PLUGINS"


class PluginError(ValueError):
    """A plugin could not be found, loaded or registered."""


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin: its entry-point name, module, and the distribution that ships it."""

    name: str
    value: str
    distribution: str | None = None
    version: str | None = None


@dataclass
class Registry:
    """What the loaded plugins registered: codec factories and task specs, each with the plugin that gave it."""

    codecs: dict[str, Callable[..., Any]] = field(default_factory=dict)
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    #: codec name -> the config options it reads (option -> default), see :meth:`register_codec`
    codec_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    codec_owner: dict[str, str] = field(default_factory=dict)
    task_owner: dict[str, str] = field(default_factory=dict)
    plugins: dict[str, PluginInfo] = field(default_factory=dict)

    # -- registration callbacks (what the hooks receive as ``register``) ---------------------------------
    def register_codec(
        self, plugin: str, name: str, factory: Callable[..., Any], options: dict[str, Any] | None = None
    ) -> None:
        """Add a codec factory (and the config options it reads, with their defaults), refusing a name another
        plugin took."""
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r}: codec name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise PluginError(f"plugin {plugin!r}: codec {name!r} factory must be callable, got {factory!r}")
        if options is not None and not (isinstance(options, dict) and all(isinstance(k, str) and k for k in options)):
            raise PluginError(f"plugin {plugin!r}: codec {name!r} options must be a dict {{name: default}}, got {options!r}")
        if name in self.codecs:
            raise PluginError(
                f"codec {name!r} is registered twice: by plugin {self.codec_owner[name]!r} and by plugin {plugin!r}"
            )
        self.codecs[name] = factory
        self.codec_options[name] = dict(options or {})
        self.codec_owner[name] = plugin

    def register_task(self, plugin: str, spec: TaskSpec) -> None:
        """Add a task spec, refusing a name another plugin took."""
        if not isinstance(spec, TaskSpec):
            raise PluginError(f"plugin {plugin!r}: register() takes a TaskSpec, got {type(spec).__name__}")
        if spec.name in self.tasks:
            raise PluginError(
                f"task {spec.name!r} is registered twice: by plugin {self.task_owner[spec.name]!r} "
                f"and by plugin {plugin!r}"
            )
        self.tasks[spec.name] = spec
        self.task_owner[spec.name] = plugin

    # -- queries -------------------------------------------------------------------------------------
    def task(self, name: str) -> TaskSpec:
        """The task called ``name``; an unknown name gets an error suggesting the closest ones."""
        try:
            return self.tasks[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.tasks), n=5, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown task {name!r}.{hint} ({len(self.tasks)} tasks registered)") from None

    def domains(self) -> dict[str, list[str]]:
        """Task names grouped by domain, in registration order."""
        out: dict[str, list[str]] = {}
        for spec in self.tasks.values():
            out.setdefault(spec.domain, []).append(spec.name)
        return out

    def select(self, selectors: str | Iterable[str] | None) -> list[TaskSpec]:
        """Resolve task names and/or domain names (comma-separated or a list) into task specs, in order.

        ``None`` or empty selects every registered task.
        """
        if selectors is None:
            return list(self.tasks.values())
        if isinstance(selectors, str):
            selectors = [s for s in selectors.split(",")]
        items = [s.strip() for s in selectors if s.strip()]
        if not items:
            return list(self.tasks.values())
        domains = self.domains()
        out: list[TaskSpec] = []
        for item in items:
            names = domains.get(item) or [self.task(item).name]
            out.extend(self.tasks[n] for n in names if self.tasks[n] not in out)
        return out

    def build_codec(self, name: str, config: Any, shared: Any) -> Any:
        """Build codec ``name`` with its factory, from ``config`` (a ``JatConfig``) and ``shared`` (the core's
        :class:`jat_core.codec.SharedParts`).

        The codec's options that ``config`` does not set get their registered defaults first, on ``config``
        itself: they are config fields (``save_pretrained`` writes them). An unknown name lists the registered
        codecs, and an exception raised by the factory comes back as a :class:`PluginError` naming the codec and
        its plugin."""
        if name not in self.codecs:
            raise PluginError(
                f"unknown codec {name!r}; registered codecs: {sorted(self.codecs) or 'none'} "
                "(is the plugin that provides it installed?)"
            )
        for option, default in self.codec_options.get(name, {}).items():
            if not hasattr(config, option):
                setattr(config, option, default)
        try:
            return self.codecs[name](config, shared)
        except Exception as exc:  # the plugin's code: say whose it is
            owner = self.codec_owner.get(name, "?")
            raise PluginError(
                f"codec {name!r} (plugin {owner!r}): the factory raised {type(exc).__name__}: {exc}"
            ) from exc


def installed_plugins() -> dict[str, PluginInfo]:
    """Every plugin installed under the ``jat`` entry-point group, by name."""
    out: dict[str, PluginInfo] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        out[ep.name] = PluginInfo(
            name=ep.name,
            value=ep.value,
            distribution=dist.metadata["Name"] if dist is not None else None,
            version=dist.version if dist is not None else None,
        )
    return out


@functools.lru_cache(maxsize=1)
def installed_codec_options() -> dict[str, Any]:
    """The config options (name -> default) that the codecs of the installed plugins declare, found without
    building a registry: ``JatConfig`` accepts them as fields. A plugin that fails to import or register is
    skipped here (:func:`load_plugins` names it)."""
    found: dict[str, Any] = {}

    def register(name: Any, factory: Any, options: dict[str, Any] | None = None) -> None:
        found.update(options or {})

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            hook = getattr(ep.load(), "jat_register_codecs", None)
            if hook is not None:
                hook(register=register)
        except Exception:  # noqa: S112 - reported by load_plugins, which builds the registry
            continue
    return found


def _parse_names(names: str | Iterable[str] | None) -> list[str] | None:
    if names is None:
        names = os.environ.get(ENV_VAR) or None
    if names is None:
        return None
    if isinstance(names, str):
        names = names.split(",")
    parsed = [n.strip() for n in names if n and n.strip()]
    return parsed or None


def _is_codec_only(module: Any) -> bool:
    return hasattr(module, "jat_register_codecs") and not hasattr(module, "jat_register_tasks")


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r} is invalid: {exc}") from exc


def _call_hook(impl: pluggy.HookImpl, hook: str, adder: Callable[..., None]) -> None:
    """Call one plugin's implementation of a registration hook; ``adder(plugin, *args)`` receives what it registers.

    The registry's own refusals (a duplicate name...) already name the plugin and pass through; anything else the
    plugin's code raises becomes a :class:`PluginError` naming the plugin and the hook.
    """
    refusals: list[PluginError] = []

    def register(*args: Any, **kwargs: Any) -> None:
        try:
            adder(impl.plugin_name, *args, **kwargs)
        except PluginError as exc:
            refusals.append(exc)
            raise

    try:
        impl.function(register=register)
    except Exception as exc:
        if any(exc is refusal for refusal in refusals):
            raise
        raise PluginError(f"plugin {impl.plugin_name!r}: hook {hook} raised {type(exc).__name__}: {exc}") from exc


def make_plugin_manager() -> pluggy.PluginManager:
    """A pluggy manager with the JAT hook specs and nothing registered."""
    pm = pluggy.PluginManager("jat")
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    names: str | Iterable[str] | None = None,
    *,
    extra: dict[str, Any] | None = None,
    entry_points: bool = True,
) -> Registry:
    """Load plugins and return the :class:`Registry` they fill.

    Args:
        names: entry-point names to load (a list or a comma-separated string). ``None`` reads ``JAT_PLUGINS``;
            when that is unset too, every installed plugin is loaded. Codec-only plugins are always loaded.
        extra: plugins given as objects or modules, by name, registered besides the installed ones (tests,
            notebooks: the llm/datasette pattern).
        entry_points: set ``False`` to ignore installed plugins entirely (only ``extra``).

    Returns:
        The registry of codecs and tasks.

    Raises:
        PluginError: an unknown plugin name (the message lists the installed ones), a plugin that fails to
            import or implements an unknown hook, a duplicate codec or task name (naming both plugins), a task
            field whose codec no plugin registers.
    """
    wanted = _parse_names(names)
    installed = installed_plugins() if entry_points else {}
    if wanted is not None:
        unknown = [n for n in wanted if n not in installed and n not in (extra or {})]
        if unknown:
            raise PluginError(
                f"unknown plugin(s) {unknown}; installed plugins: {sorted(installed) or 'none'}"
                + (f", given: {sorted(extra)}" if extra else "")
            )

    pm = make_plugin_manager()
    registry = Registry()
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)} if entry_points else {}
    for name, info in installed.items():
        try:
            module = eps[name].load()
        except Exception as exc:  # a broken plugin must say which one it is
            raise PluginError(f"plugin {name!r} ({info.value}) failed to import: {exc!r}") from exc
        if wanted is not None and name not in wanted and not _is_codec_only(module):
            continue
        _register(pm, module, name)
        registry.plugins[name] = info
    for name, plugin in (extra or {}).items():
        if wanted is not None and name not in wanted and not _is_codec_only(plugin):
            continue
        if pm.get_plugin(name) is not None:
            raise PluginError(f"plugin name {name!r} is given twice (installed and extra)")
        _register(pm, plugin, name)
        registry.plugins[name] = PluginInfo(name=name, value=repr(plugin))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"invalid plugin: {exc}") from exc

    # Call each implementation on its own so that every registration knows which plugin made it; codecs
    # first, so that task fields can be checked against them. Order: plugin load order.
    order = list(registry.plugins)
    for hook, adder in (
        (pm.hook.jat_register_codecs, registry.register_codec),
        (pm.hook.jat_register_tasks, registry.register_task),
    ):
        impls = sorted(hook.get_hookimpls(), key=lambda i: order.index(i.plugin_name))
        for impl in impls:
            _call_hook(impl, hook.name, adder)

    for task, spec in registry.tasks.items():
        for f in spec.fields:
            if f.codec not in registry.codecs:
                raise PluginError(
                    f"task {task!r} (plugin {registry.task_owner[task]!r}) field {f.name!r} uses codec {f.codec!r}, "
                    f"which no loaded plugin registers; registered codecs: {sorted(registry.codecs) or 'none'}"
                )
    return registry
