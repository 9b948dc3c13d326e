"""The Meta-World env's touching_object (jat_envs.metaworld.env) answers as Meta-World's own, step by step."""

import warnings

import numpy as np
import pytest

#: tasks whose reward asks whether the gripper touches the object
TOUCHING = ["metaworld-push", "metaworld-pick-place", "metaworld-sweep-into"]


@pytest.mark.parametrize("name", TOUCHING)
def test_touching_object_answers_as_metaworlds(registry, name):
    spec = registry.task(name)
    env = spec.make_env()
    raw = env.unwrapped
    stock = type(raw).touching_object  # Meta-World's method, beneath the one make_env installs
    answers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in (0, 1):
            obs, _ = env.reset(seed=seed)
            policy = spec.expert(env)
            for _ in range(100):
                geom = raw._get_id_main_object()
                answers.append(raw.touching_object(geom))
                assert answers[-1] == stock(raw, geom), (name, seed)
                if raw.data.ncon:  # every geom pair in contact, not only the main object's
                    for g in np.unique(np.concatenate([raw.data.contact.geom1, raw.data.contact.geom2])):
                        assert raw.touching_object(int(g)) == stock(raw, int(g)), (name, seed, g)
                obs, _, terminated, truncated, _ = env.step(policy(obs))
                if terminated or truncated:
                    break
    env.close()
    assert any(answers), f"{name}: the expert never grasped the object; the test compared only False answers"
