"""The 11 MuJoCo tasks: task name -> (gymnasium id, observation size, action size, action bound).

The reference used gymnasium's ``-v4`` envs. They still run on gymnasium 1.x with mujoco 3.x and keep the
observation sizes of the data (``-v5`` changed ant 27->105, humanoid and standup 376->348, doublependulum 11->9,
reacher 11->10), so every task keeps ``-v4`` except ``pusher``: ``Pusher-v4`` refuses mujoco>=3, and
``Pusher-v5`` is the closest env (same 23-float observation and 7-float action; v5 fixed the model's contact
and inertia details), so pusher uses ``Pusher-v5``.
"""

from __future__ import annotations

#: task name (``mujoco-<name>``) -> (gymnasium id, observation size, action size, action bound)
ENVS: dict[str, tuple[str, int, int, float]] = {
    "mujoco-ant": ("Ant-v4", 27, 8, 1.0),
    "mujoco-doublependulum": ("InvertedDoublePendulum-v4", 11, 1, 1.0),
    "mujoco-halfcheetah": ("HalfCheetah-v4", 17, 6, 1.0),
    "mujoco-hopper": ("Hopper-v4", 11, 3, 1.0),
    "mujoco-humanoid": ("Humanoid-v4", 376, 17, 0.4),
    "mujoco-pendulum": ("InvertedPendulum-v4", 4, 1, 3.0),
    "mujoco-pusher": ("Pusher-v5", 23, 7, 2.0),
    "mujoco-reacher": ("Reacher-v4", 11, 2, 1.0),
    "mujoco-standup": ("HumanoidStandup-v4", 376, 17, 0.4),
    "mujoco-swimmer": ("Swimmer-v4", 8, 2, 1.0),
    "mujoco-walker": ("Walker2d-v4", 17, 6, 1.0),
}

#: per-task loss weights of the reference code (its paper swaps pendulum and doublependulum: 20 and 50);
#: every other MuJoCo task weighs 10
LOSS_WEIGHTS = {"mujoco-pendulum": 50.0, "mujoco-doublependulum": 20.0}
DEFAULT_LOSS_WEIGHT = 10.0
