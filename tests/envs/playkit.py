"""One episode of a task's env under a policy factory, for the expert tests (Atari, MuJoCo)."""


def play(spec, factory, steps, seed=1000, final=None):
    """Play up to ``steps`` steps of one episode; ``factory=None`` plays seeded random actions.

    Args:
        spec: the task (with ``make_env``).
        factory: ``factory(env) -> policy`` (an expert), or ``None``.
        steps: the most steps played (the episode may end first).
        seed: seed of the reset and of the action space.
        final: ``final(env)`` read after the last step (e.g. the emulator's RAM), or ``None``.

    Returns:
        ``(return, actions, final(env) or None)``; every action is checked to be in the env's action space.
    """
    env = spec.make_env()
    try:
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        policy = factory(env) if factory is not None else (lambda _obs: env.action_space.sample())
        total, actions = 0.0, []
        for _ in range(steps):
            action = policy(obs)
            assert env.action_space.contains(action), action
            actions.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return total, actions, None if final is None else final(env)
    finally:
        env.close()
