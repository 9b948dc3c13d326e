"""The Atari RAM experts: wiring, determinism, and a clear win over random actions within a few hundred steps."""

import pytest

pytest.importorskip("ale_py")

from jat_envs.atari.expert import EXPERTS, pong_intercept  # noqa: E402
from playkit import play  # noqa: E402


def _play(spec, factory, steps, seed=1000):
    """Return, actions (ints) and final RAM of ``steps`` steps; ``factory=None`` plays seeded random actions."""
    total, actions, ram = play(spec, factory, steps, seed, final=lambda env: env.unwrapped.ale.getRAM().copy())
    return total, [int(a) for a in actions], ram


def test_expert_wiring(registry):
    atari = registry.domains()["atari"]
    assert (
        {n for n in atari if registry.task(n).expert is not None}
        == {"atari-pong", "atari-freeway"}
        == set(EXPERTS)
    )


def test_pong_expert_scores_and_is_deterministic(registry):
    spec = registry.task("atari-pong")
    steps = 1000  # about 2 s; the expert takes the first points, random play only concedes
    total, actions, ram = _play(spec, spec.expert, steps)
    random_total, _, random_ram = _play(spec, None, steps)
    assert total >= 1 and random_total <= -5, (total, random_total)
    assert ram[13] == 0  # the computer has not scored against the expert
    again, same_actions, _ = _play(spec, spec.expert, 200)
    assert same_actions == actions[:200]


def test_freeway_expert_crosses_more_often_than_up_only(registry):
    spec = registry.task("atari-freeway")
    steps = 600  # about 1 s
    total, actions, _ = _play(spec, spec.expert, steps)
    up_only, _, _ = _play(spec, lambda env: lambda _obs: 1, steps)
    random_total, _, _ = _play(spec, None, steps)
    assert total >= up_only + 1 and total >= 8 and random_total <= 1, (total, up_only, random_total)
    _, same_actions, _ = _play(spec, spec.expert, 200)
    assert same_actions == actions[:200]


def test_pong_intercept_reflects_off_the_walls():
    # straight flight: 10 steps of (+4, +2) from x 148
    assert pong_intercept(148, 100, 4, 2) == (120, 10)
    # the ball would pass the bottom wall (205.5) and comes back up by as much
    y, steps = pong_intercept(148, 190, 4, 4)
    assert steps == 10 and y == pytest.approx(2 * 205.5 - 230)
