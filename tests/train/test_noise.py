"""DART action noise in jat-collect: the env executes a perturbed action, the data keep the expert's own."""

import gymnasium as gym
import numpy as np
import pytest
from jat_core.specs import FieldSpec, TaskSpec
from jat_train import cli
from jat_train.collection.collect import collect
from jat_train.collection.noise import ActionNoise


class _Drift(gym.Env):
    """A 1-d point the action pushes: ``x += a``; the expert pushes it toward 0 (``a = clip(-x)``)."""

    observation_space = gym.spaces.Box(-10, 10, (1,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = np.float32(self.np_random.uniform(-3, 3)), 0
        return {"continuous_observations": np.array([self.x], np.float32)}, {}

    def step(self, action):
        self.x, self.t = np.float32(np.clip(self.x + action[0], -10, 10)), self.t + 1
        return {"continuous_observations": np.array([self.x], np.float32)}, -abs(float(self.x)), False, self.t >= 8, {}


def _expert(env):
    return lambda obs: np.clip(-obs["continuous_observations"], -1, 1).astype(np.float32)


TASK = TaskSpec(
    name="toy-drift", domain="toy",
    observation=(FieldSpec("continuous_observations", "continuous", (1,), "float32", low=-10, high=10),),
    action=FieldSpec("continuous_actions", "continuous", (1,), "float32", low=-1, high=1),
    make_env=_Drift, expert=_expert,
)


def test_noise_perturbs_execution_but_records_the_experts_action():
    clean = collect(TASK, 10, seed=0, progress=False, test_fraction=0.2)
    noisy = collect(TASK, 10, seed=0, progress=False, test_fraction=0.2, action_noise=0.5)
    # the test split is played without noise: the same episodes as a clean collection
    assert noisy["test"].to_dict() == clean["test"].to_dict()
    assert noisy["train"]["continuous_observations"] != clean["train"]["continuous_observations"]
    for row in noisy["train"].with_format("numpy"):
        obs, act = row["continuous_observations"], row["continuous_actions"]
        np.testing.assert_allclose(act, np.clip(-obs, -1, 1))  # the expert's own action for the state it saw
    again = collect(TASK, 10, seed=0, progress=False, test_fraction=0.2, action_noise=0.5)
    assert again["train"].to_dict() == noisy["train"].to_dict()  # seeded


def test_box_noise_scale_and_bounds():
    space = gym.spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 4.0]), dtype=np.float32)
    noise = ActionNoise(space, 0.1, seed=0)
    a = np.array([0.0, 2.0], np.float32)
    samples = np.stack([noise(a) for _ in range(4000)])  # (4000, 2)
    assert samples.dtype == np.float32
    np.testing.assert_allclose(samples.std(0), [0.1, 0.2], rtol=0.1)  # scale x half the range
    edge = np.stack([noise(np.array([1.0, 4.0], np.float32)) for _ in range(200)])
    assert (edge <= space.high).all() and (edge >= space.low).all()
    assert (ActionNoise(space, 0.0, seed=0)(a) == a).all()


def test_discrete_noise_replaces_a_share_of_actions():
    noise = ActionNoise(gym.spaces.Discrete(4, start=1), 0.25, seed=0)
    out = [noise(2) for _ in range(4000)]
    assert set(out) <= {1, 2, 3, 4}
    changed = np.mean([o != 2 for o in out])
    assert abs(changed - 0.25 * 3 / 4) < 0.03  # a random action is the expert's one time in four


@pytest.mark.parametrize("scale", [-0.1, 1.5])
def test_noise_scale_outside_0_1_is_refused(scale):
    with pytest.raises(ValueError, match="scale in \\[0, 1\\]"):
        ActionNoise(gym.spaces.Discrete(3), scale, seed=0)


def test_unsupported_space_is_refused():
    with pytest.raises(ValueError, match="Box or Discrete"):
        ActionNoise(gym.spaces.MultiDiscrete([2, 3]), 0.1, seed=0)


def test_cli_refuses_a_bad_noise_scale(tmp_path, capsys):
    code = cli.collect_main(["--tasks", "metaworld-reach", "--episodes", "2", "--out", str(tmp_path),
                             "--action-noise", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--action-noise: expected a scale in [0, 1], got 2.0" in err and "Traceback" not in err
