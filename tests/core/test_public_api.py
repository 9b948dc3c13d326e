"""The public API: ``from jat_core import JatModel, JatConfig, ...`` works, lazily."""

import subprocess
import sys

import jat_core


def test_top_level_names_are_the_modules_classes():
    from jat_core.agent import JatAgent
    from jat_core.cache import KVCache, SlotCache
    from jat_core.config import JatConfig
    from jat_core.model import JatModel, JatOutput
    from jat_core.processor import JatProcessor

    assert (jat_core.JatModel, jat_core.JatConfig, jat_core.JatOutput) == (JatModel, JatConfig, JatOutput)
    assert (jat_core.JatAgent, jat_core.JatProcessor) == (JatAgent, JatProcessor)
    assert (jat_core.KVCache, jat_core.SlotCache) == (KVCache, SlotCache)
    assert {"JatModel", "JatConfig", "hookimpl", "TaskSpec"} <= set(jat_core.__all__) <= set(dir(jat_core))


def test_plugin_imports_do_not_import_torch():
    """A plugin that only needs hookimpl and the specs does not pay for torch or transformers."""
    code = (
        "import sys\n"
        "from jat_core import FieldSpec, Scores, TaskSpec, hookimpl, load_plugins\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'eager import'\n"
        "from jat_core import JatConfig\n"
        "assert 'transformers' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="NoSuchThing"):
        jat_core.NoSuchThing  # noqa: B018
