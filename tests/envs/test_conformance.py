"""Each built-in domain passes the plugin conformance kit; one task per domain is made, reset and stepped."""

from jat_core.testing import DomainConformance
from jat_envs.atari import plugin as atari
from jat_envs.atari.expert import EXPERTS
from jat_envs.babyai import plugin as babyai
from jat_envs.metaworld import plugin as metaworld
from jat_envs.mujoco import plugin as mujoco
from jat_envs.text import plugin as text


class TestAtari(DomainConformance):
    plugin = atari
    env_tasks = ["atari-breakout"]
    expert_tasks = sorted(EXPERTS)  # every game with an expert


class TestBabyAI(DomainConformance):
    plugin = babyai
    env_tasks = ["babyai-go-to-red-ball"]


class TestMetaWorld(DomainConformance):
    plugin = metaworld
    env_tasks = ["metaworld-reach"]


class TestMuJoCo(DomainConformance):
    plugin = mujoco
    env_tasks = ["mujoco-pusher"]  # the one task on -v5 (Pusher-v4 needs mujoco<3)


class TestText(DomainConformance):
    """Text tasks have no env: the kit checks their specs and codecs; the env test has nothing to step."""

    plugin = text

    def test_env_observations_match_spec(self):
        assert all(t.make_env is None and t.action is None for t in self._tasks())
