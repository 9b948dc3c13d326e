"""The plugin's own tests: the JAT conformance kit checks its specs, env, action space and expert."""

import jat_corridor
from jat_core.testing import DomainConformance


class TestCorridor(DomainConformance):
    plugin = jat_corridor
