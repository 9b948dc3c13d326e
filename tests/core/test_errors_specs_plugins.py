"""Fuzzing the specs, the plugin manager and the config overrides: exceptions raised by a plugin's own code (a hook
implementation, a codec factory), NaN / infinite field values, config overrides that are no field (typos). Every
case is a one-line ``ValueError`` (``PluginError`` for plugins) naming the plugin and hook, the codec, the task and
field, or the unknown config field and the closest valid one; the original exception stays as ``__cause__``; a
failed load changes nothing (the registry of a later load is complete; checkpoint files are byte-identical)."""

from __future__ import annotations

import re
import types

import numpy as np
import pytest
import torch
from jat_core import FieldSpec, TaskSpec, hookimpl, load_plugins
from jat_core.codec import Codec
from jat_core.config import JatConfig
from jat_core.model import JatModel
from jat_core.plugins import PluginError, Registry
from jat_core.specs import check_field_value, check_finite, check_task_codecs
from model_helpers import snapshot, tiny_config

torch.set_num_threads(1)


class _Toy(Codec):
    name = "toy"
    roles = ("observation", "action")
    columns = {"observation": "toy_observations", "action": "toy_actions"}


TOY_TASK = TaskSpec(
    "toy-a", "toy", (FieldSpec("toy_observations", "toy", (2,)),), FieldSpec("toy_actions", "toy", (), "int64", n=3)
)

ERRORS = [
    RuntimeError("boom"),
    ValueError("bad value"),
    KeyError("missing-key"),
    TypeError("wrong type"),
    ZeroDivisionError("division by zero"),
    AttributeError("no attribute"),
    AssertionError("assertion"),
    ImportError("no module named torchvision"),
    OSError("disk"),
]


def codecs_plugin(error: BaseException | None = None, *, after: int = 0):
    """A codec plugin that registers ``after`` codecs, then raises ``error``."""

    @hookimpl
    def jat_register_codecs(register):
        for i in range(after):
            register(f"toy{i}" if i else "toy", lambda config, shared: _Toy())
        if error is not None:
            raise error

    return types.SimpleNamespace(jat_register_codecs=jat_register_codecs)


def tasks_plugin(error: BaseException | None = None, *, make=None):
    @hookimpl
    def jat_register_tasks(register):
        register(make() if make is not None else TOY_TASK)
        if error is not None:
            raise error

    return types.SimpleNamespace(jat_register_tasks=jat_register_tasks)


def assert_names(exc: BaseException, *names: str) -> None:
    message = str(exc)
    assert "\n" not in message
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"


# -- plugins -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("after", [0, 1, 2])
def test_an_exception_in_a_codec_hook_names_plugin_and_hook(error, after):
    with pytest.raises(PluginError) as info:
        load_plugins(extra={"good": tasks_plugin(), "broken-codecs": codecs_plugin(error, after=after)}, entry_points=False)
    assert_names(info.value, "plugin 'broken-codecs'", "hook jat_register_codecs", type(error).__name__)
    assert info.value.__cause__ is error
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_exception_in_a_task_hook_names_plugin_and_hook(error):
    with pytest.raises(PluginError) as info:
        load_plugins(extra={"codecs": codecs_plugin(after=1), "broken-tasks": tasks_plugin(error)}, entry_points=False)
    assert_names(info.value, "plugin 'broken-tasks'", "hook jat_register_tasks", type(error).__name__)
    assert info.value.__cause__ is error


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda: TaskSpec("toy-b", "toy", (FieldSpec("toy_observations", "toy", (-2,)),)), "shape dimensions must be positive"),
        (lambda: TaskSpec("toy-b", "toy", (FieldSpec("toy_observations", "toy", (2,), "float16"),)), "dtype must be one of"),
        (lambda: TaskSpec("toy-b", "toy", ()), "observation must be a non-empty tuple"),
        (lambda: TaskSpec("toy-b", "toy", TOY_TASK.observation, loss_weight=float("nan")), "loss_weight must be a positive finite"),
        (lambda: FieldSpec("x", "toy").undefined_attribute, "undefined_attribute"),
    ],
)
def test_a_bad_spec_built_inside_a_hook_names_the_plugin(make, what):
    with pytest.raises(PluginError) as info:
        load_plugins(extra={"codecs": codecs_plugin(after=1), "bad-specs": tasks_plugin(make=make)}, entry_points=False)
    assert_names(info.value, "plugin 'bad-specs'", "hook jat_register_tasks", what)
    assert info.value.__cause__ is not None


def test_the_registrys_own_refusals_are_not_wrapped_twice():
    with pytest.raises(PluginError, match=r"^codec 'toy' is registered twice: by plugin 'a' and by plugin 'b'$"):
        load_plugins(extra={"a": codecs_plugin(after=1), "b": codecs_plugin(after=1)}, entry_points=False)


def test_a_plugin_that_swallows_a_refusal_and_raises_its_own_is_still_named():
    @hookimpl
    def jat_register_codecs(register):
        try:
            register("", None)
        except PluginError:
            raise RuntimeError("could not register") from None

    with pytest.raises(PluginError) as info:
        load_plugins(extra={"sly": types.SimpleNamespace(jat_register_codecs=jat_register_codecs)}, entry_points=False)
    assert_names(info.value, "plugin 'sly'", "hook jat_register_codecs", "could not register")


def test_a_failed_load_leaves_nothing_behind():
    with pytest.raises(PluginError):
        load_plugins(extra={"c": codecs_plugin(after=1), "t": tasks_plugin(RuntimeError("x"))}, entry_points=False)
    registry = load_plugins(extra={"c": codecs_plugin(after=1), "t": tasks_plugin()}, entry_points=False)
    assert list(registry.tasks) == ["toy-a"] and list(registry.codecs) == ["toy"]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_exception_in_a_codec_factory_names_codec_and_plugin(error):
    def factory(config, shared):
        raise error

    registry = Registry()
    registry.register_codec("maker", "fragile", factory)
    with pytest.raises(PluginError) as info:
        registry.build_codec("fragile", None, None)
    assert_names(info.value, "codec 'fragile'", "plugin 'maker'", type(error).__name__)
    assert info.value.__cause__ is error
    # through the model: the codec and plugin are named too
    registry.register_codec("builtin", "text", lambda config, shared: _Toy())
    with pytest.raises(PluginError) as info:
        JatModel(tiny_config(codecs=["text", "fragile"]), registry=registry)
    assert_names(info.value, "codec 'fragile'", "plugin 'maker'")


def test_a_builtin_codec_factory_refusing_the_config_names_the_codec():
    with pytest.raises(ValueError) as info:
        JatModel(tiny_config(hidden_size=32, num_heads=4, codecs=["discrete", "text"]))
    assert_names(info.value, "codec 'discrete'", "hidden_size")


# -- specs -------------------------------------------------------------------------------------------------------
BAD = {"NaN": np.nan, "inf": np.inf, "-inf": -np.inf}


@pytest.mark.parametrize("label", list(BAD))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
def test_check_field_value_refuses_non_finite_floats(label, dtype, batch):
    field = FieldSpec("joints", "continuous", (5,), dtype)
    rng = np.random.default_rng(len(batch))
    value = rng.standard_normal(batch + (5,)).astype(dtype)
    index = tuple(int(rng.integers(0, n)) for n in value.shape)
    value[index] = BAD[label]
    expected = rf"^task 'arm' field 'joints': expected finite values, got {re.escape(label)} at {re.escape(str(list(index)))}$"
    with pytest.raises(ValueError, match=expected):
        check_field_value(field, value, task="arm", batch=batch)


def test_check_field_value_lets_finite_and_integer_values_through():
    check_field_value(FieldSpec("joints", "continuous", (2,)), np.array([1e38, -1e38], np.float32), task="arm")
    check_field_value(FieldSpec("grid", "discrete", (2,), "int64", n=4), np.array([0, 3]), task="grid")
    check_field_value(FieldSpec("frame", "image", (2,), "uint8"), np.array([0, 255], np.uint8), task="atari")


@pytest.mark.parametrize("label", list(BAD))
def test_check_finite_on_tensors_and_arrays(label):
    for values in (torch.zeros(2, 3), np.zeros((2, 3)), torch.zeros(2, 3, dtype=torch.bfloat16)):
        values[1, 2] = BAD[label]
        with pytest.raises(ValueError, match=rf"^rewards: expected finite values, got {re.escape(label)} at \[1, 2\]$"):
            check_finite(values, field="rewards")
    check_finite(torch.zeros(0), field="empty")
    check_finite(torch.arange(3), field="ints")
    check_finite(np.array(["a", "b"]), field="strings")
    with pytest.raises(ValueError, match=r"^x: expected finite values, got NaN at \[\]$"):
        check_finite(np.float32("nan"), field="x")


def test_check_task_codecs_names_task_field_and_codecs():
    with pytest.raises(ValueError, match=r"^task 'toy-a': field 'toy_observations' needs codec 'toy', the plugins has codecs \['a', 'b'\]$"):
        check_task_codecs(TOY_TASK, ["b", "a"], owner="the plugins")
    check_task_codecs(TOY_TASK, {"toy"})


# -- config overrides --------------------------------------------------------------------------------------------
TYPOS = [
    ("num_layer", "num_layers"),
    ("hiden_size", "hidden_size"),
    ("num_head", "num_heads"),
    ("vocab", "vocab_size"),
    ("window", "window_size"),
    ("observation_loss_coeff", "observation_loss_coef"),
    ("max_continous_size", "max_continuous_size"),
    ("codec", "codecs"),
    ("Hidden_Size", "hidden_size"),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny")
    JatModel(tiny_config(codecs=["continuous", "text"])).save_pretrained(folder)
    return folder


@pytest.fixture
def files_unchanged(checkpoint):
    before = snapshot(checkpoint)
    yield
    assert snapshot(checkpoint) == before


@pytest.mark.parametrize("typo, closest", TYPOS)
def test_unknown_override_names_the_field_and_the_closest_one(typo, closest, checkpoint, files_unchanged):
    pattern = rf"unknown config field '{typo}'; did you mean '{closest}'\?$"
    with pytest.raises(ValueError, match=r"^JatConfig.from_preset: " + pattern):
        JatConfig.from_preset("tiny", **{typo: 3})
    with pytest.raises(ValueError, match=r"^JatConfig.from_pretrained: " + pattern):
        JatConfig.from_pretrained(checkpoint, **{typo: 3})
    with pytest.raises(ValueError, match=r"^JatModel: " + pattern):
        JatModel.from_pretrained(checkpoint, **{typo: 3})


def test_an_override_like_nothing_lists_the_fields(checkpoint, files_unchanged):
    with pytest.raises(ValueError, match=r"^JatConfig.from_preset: unknown config field 'zzz'; the JAT fields are \[.*'num_layers'"):
        JatConfig.from_preset("small", zzz=1)
    with pytest.raises(ValueError, match=r"unknown config field 'zzz'"):
        JatModel.from_pretrained(checkpoint, zzz=1)


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(hidden_size=-1), "JatConfig.hidden_size: expected a positive int"),
        (dict(num_heads=5), "JatConfig.hidden_size: expected a multiple of num_heads=5"),
        (dict(observation_loss_coef=-1.0), "JatConfig.observation_loss_coef: expected a non-negative finite number"),
        (dict(observation_loss_coef=float("nan")), "JatConfig.observation_loss_coef: expected a non-negative finite number"),
        (dict(action_loss_coef=float("inf")), "JatConfig.action_loss_coef: expected a non-negative finite number"),
        (dict(num_layers="2"), "JatConfig.num_layers: expected a positive int, got '2'"),
        (dict(codecs="text"), "JatConfig.codecs: expected a list of codec names"),
        (dict(codecs=[]), "JatConfig.codecs: expected a non-empty list"),
        (dict(attention_types=[[["global", "sideways"], 1]]), "JatConfig.attention_types"),
    ],
)
def test_bad_override_values_are_validated_on_every_path(override, message, checkpoint, files_unchanged):
    for load in (
        lambda: JatConfig.from_preset("tiny", **override),
        lambda: JatConfig.from_pretrained(checkpoint, **override),
        lambda: JatModel.from_pretrained(checkpoint, **override),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            load()


def test_valid_overrides_and_model_arguments_still_work(checkpoint, files_unchanged):
    config = JatConfig.from_pretrained(checkpoint, num_layers=3)
    assert config.num_layers == 3 and config.attention_layers == ["global", "local", "global"]
    assert JatConfig.from_preset("tiny", num_hidden_layers=3).attention_layers == ["global", "local", "global"]
    assert JatConfig.from_pretrained(checkpoint, num_attention_heads=8).num_heads == 8
    model = JatModel.from_pretrained(checkpoint, registry=None, observation_loss_coef=0.25, action_loss_coef=0.75)
    assert (model.config.observation_loss_coef, model.config.action_loss_coef) == (0.25, 0.75)
    assert JatConfig.from_pretrained(checkpoint, dtype="float32").hidden_size == 128


def test_model_arguments_that_are_config_fields_or_typos():
    config = tiny_config(codecs=["continuous", "text"])
    with pytest.raises(ValueError, match=r"^JatModel: 'num_layers' is a config field; set it on the JatConfig"):
        JatModel(config, num_layers=3)
    with pytest.raises(ValueError, match=r"^JatModel: unknown config field 'registy'; did you mean 'registry'\?$"):
        JatModel(config, registy=None)
