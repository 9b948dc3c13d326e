"""The hooks a JAT plugin may implement: the plugin author's manual.

A plugin is a module (or object) exposed under the ``jat`` entry-point group::

    [project.entry-points.jat]
    mydomain = "my_package.plugin"

and implements one or both of the hooks below with the :data:`jat_core.hookimpl` marker. Both hooks receive a
``register`` callback: call it once per codec or task. Registration happens when
:func:`jat_core.load_plugins` builds a :class:`jat_core.Registry`; a name already registered by another plugin
is refused with an error naming both plugins.

Keep plugin modules cheap to import: import heavy dependencies (gymnasium, an emulator, a simulator) inside
``make_env`` or ``expert`` callables, not at module top level, so ``jat-plugins`` stays fast and a missing
optional dependency only matters when its environment is built.
"""

import pluggy

hookspec = pluggy.HookspecMarker("jat")


@hookspec
def jat_register_codecs(register):
    """Register modality codecs.

    Called once per registry build. Call ``register(name, factory)`` or ``register(name, factory, options)`` for
    each codec, where

    - ``name`` (str) is the codec name that :class:`jat_core.FieldSpec` refers to (``FieldSpec.codec``) and
      that :class:`jat_core.config.JatConfig` lists (``codecs``; by default a model builds every registered codec,
      in registration order: plugins in load order, each plugin's codecs in the order it registers them);
    - ``factory(config, shared)`` builds the codec: ``config`` is the model's ``JatConfig`` and ``shared`` a
      :class:`jat_core.codec.SharedParts` holding the parts the core owns (the token table ``wte`` and the
      token head ``head``). It returns a :class:`jat_core.codec.Codec` (an ``nn.Module`` with ``encode``,
      ``decode`` and ``loss``; see that class for the contract and shapes);
    - ``options`` (optional) is ``{option name: default}``: top-level config fields the factory reads as
      ``config.<option>``. ``JatConfig`` accepts them (overrides, ``config.json``) and the registry sets the
      default on a config that lacks one before the factory runs, so ``save_pretrained`` records it. A new codec
      may prefer ``config.codec_setting(name, option, default)`` (``JatConfig.codec_settings``), which needs no
      declaration.

    The factory may also carry class-level metadata through the returned module (``Codec.columns``...).
    Returns nothing.
    """


@hookspec
def jat_register_tasks(register):
    """Register tasks (one environment or data set each).

    Called once per registry build. Call ``register(spec)`` with a :class:`jat_core.TaskSpec` for each task.
    The spec validates itself on construction (field shapes, dtypes, scores); the registry then checks that
    every ``FieldSpec.codec`` names a registered codec. A task name must be unique across all plugins.
    Returns nothing.
    """
