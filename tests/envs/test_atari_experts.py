"""The Atari RAM experts: wiring, determinism, and a clear win over random actions within a few hundred steps."""

import pytest

pytest.importorskip("ale_py")

from jat_envs.atari.expert import EXPERTS, pong_intercept  # noqa: E402
from jat_envs.atari.lookahead import Emulator  # noqa: E402
from playkit import play  # noqa: E402


def _play(spec, factory, steps, seed=1000):
    """Return, actions (ints) and final RAM of ``steps`` steps; ``factory=None`` plays seeded random actions."""
    total, actions, ram = play(spec, factory, steps, seed, final=lambda env: env.unwrapped.ale.getRAM().copy())
    return total, [int(a) for a in actions], ram


def _assert_replays(spec, actions, steps):
    """The expert plays its first ``steps`` actions again, the same ones (it is deterministic for a seed)."""
    _, same_actions, _ = _play(spec, spec.expert, steps)
    assert same_actions == actions[:steps]


def test_expert_wiring(registry):
    atari = registry.domains()["atari"]
    assert (
        {n for n in atari if registry.task(n).expert is not None}
        == {"atari-pong", "atari-freeway", "atari-boxing", "atari-skiing", "atari-surround", "atari-breakout",
            "atari-kangaroo"}
        == set(EXPERTS)
    )


def test_pong_expert_scores_and_is_deterministic(registry):
    spec = registry.task("atari-pong")
    steps = 1000  # about 2 s; the expert takes the first points, random play only concedes
    total, actions, ram = _play(spec, spec.expert, steps)
    random_total, _, random_ram = _play(spec, None, steps)
    assert total >= 1 and random_total <= -5, (total, random_total)
    assert ram[13] == 0  # the computer has not scored against the expert
    _assert_replays(spec, actions, 200)


def test_freeway_expert_crosses_more_often_than_up_only(registry):
    spec = registry.task("atari-freeway")
    steps = 600  # about 1 s
    total, actions, _ = _play(spec, spec.expert, steps)
    up_only, _, _ = _play(spec, lambda env: lambda _obs: 1, steps)
    random_total, _, _ = _play(spec, None, steps)
    assert total >= up_only + 1 and total >= 8 and random_total <= 1, (total, up_only, random_total)
    _assert_replays(spec, actions, 200)


def test_boxing_expert_outscores_the_computer(registry):
    spec = registry.task("atari-boxing")
    steps = 300  # about 1.5 s: the expert lands punches from its first approach on, random play about none
    total, actions, _ = _play(spec, spec.expert, steps)
    random_total, _, _ = _play(spec, None, steps)
    assert total >= 20 and total >= random_total + 15, (total, random_total)
    _assert_replays(spec, actions, 100)


def test_skiing_expert_passes_the_gates(registry):
    spec = registry.task("atari-skiing")
    # one whole run (about 550 steps, 2 s): the return is minus the time in centiseconds, plus 5 s (-500) for each
    # missed gate; going straight down misses most gates (about -9000), the expert about none (about -4100)
    total, actions, _ = _play(spec, spec.expert, 1500)
    straight, _, _ = _play(spec, lambda env: lambda _obs: 0, 1500)
    assert total >= -5000 and total >= straight + 3000, (total, straight)
    _assert_replays(spec, actions, 100)


def test_surround_expert_wins_rounds(registry):
    spec = registry.task("atari-surround")
    steps = 900  # about 2 s: the first two rounds; random play crashes into a wall within a few moves
    total, actions, _ = _play(spec, spec.expert, steps)
    random_total, _, _ = _play(spec, None, steps)
    assert total >= 2 and random_total <= -2, (total, random_total)
    _assert_replays(spec, actions, 300)


def test_breakout_expert_keeps_the_ball(registry):
    spec = registry.task("atari-breakout")
    steps = 1000  # about 2 s
    total, actions, ram = _play(spec, spec.expert, steps)
    random_total, _, _ = _play(spec, None, steps)
    assert ram[57] == 5, ram[57]  # RAM byte 57: lives left, none lost
    assert total >= 40 and total >= random_total + 30, (total, random_total)
    _assert_replays(spec, actions, 300)


def test_kangaroo_expert_dodges_what_kills_a_still_kangaroo(registry):
    spec = registry.task("atari-kangaroo")
    steps = 300  # about 4 s: its look-ahead plays about 150 frames a step; a falling apple kills a still kangaroo
    _, actions, ram = _play(spec, spec.expert, steps)
    _, _, still_ram = _play(spec, lambda env: lambda _obs: 0, steps)
    # RAM byte 45: lives in reserve (255 once the last is lost: the still kangaroo loses all three)
    assert ram[45] == 2 and still_ram[45] != 2, (ram[45], still_ram[45])
    _assert_replays(spec, actions, 100)


def test_lookahead_leaves_the_episode_unchanged(registry):
    spec = registry.task("atari-breakout")
    env = spec.make_env()
    try:
        env.reset(seed=3)
        emu = Emulator(env)
        before = emu.ram().copy()
        reward, lost, frames = emu.rollout([0] * 64)
        assert frames == 4 * 64 and lost == 1 and reward == 0  # the paddle stays put: the ball falls past it
        assert (emu.ram() == before).all()
        _, _, frames = emu.rollout([1] * 10, until=lambda ram, frame: frame == 5)
        assert frames == 6
    finally:
        env.close()


def test_pong_intercept_reflects_off_the_walls():
    # straight flight: 10 steps of (+4, +2) from x 148
    assert pong_intercept(148, 100, 4, 2) == (120, 10)
    # the ball would pass the bottom wall (205.5) and comes back up by as much
    y, steps = pong_intercept(148, 190, 4, 4)
    assert steps == 10 and y == pytest.approx(2 * 205.5 - 230)
