"""Atari envs with the wrappers the JAT data was collected under.

The reference collected its Atari data with Sample Factory on envpool and evaluates with equivalent
gymnasium wrappers. With gymnasium 1.x and ale-py 0.12 the same pipeline is::

    ALE/<Game>-v5 (frameskip=1, repeat_action_probability=0, minimal action set)
    -> AtariPreprocessing: no-op reset (up to 30), repeat each action 4 frames and max-pool the last two,
       grayscale (the ALE's own luminance, as envpool), resize to 84x84 (cv2 INTER_AREA)
    -> FireReset (games with FIRE): press FIRE, then action 2, after each reset
    -> [training only: episodic life, reward clipping -- off by default, as for collection and evaluation]
    -> FrameStackObservation(4): (4, 84, 84)
    -> {"image_observations": (84, 84, 4) uint8}, channels last, as stored in the data set.
"""

from __future__ import annotations

from typing import Any

FRAME_SIZE = 84
STACK = 4
NOOP_MAX = 30
FRAME_SKIP = 4


def _fire_reset_wrapper():
    import gymnasium as gym

    class FireReset(gym.Wrapper):
        """Press FIRE (then action 2) after each reset, for games that wait for it (as OpenAI Baselines)."""

        def reset(self, **kwargs):
            self.env.reset(**kwargs)
            obs, _, terminated, truncated, info = self.env.step(1)
            if terminated or truncated:
                self.env.reset(**kwargs)
            obs, _, terminated, truncated, info = self.env.step(2)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
            return obs, info

    return FireReset


def make_env(env_id: str, *, episodic_life: bool = False, clip_rewards: bool = False, **kwargs: Any):
    """Make one Atari env whose observations are ``{"image_observations": uint8 (84, 84, 4)}``.

    Args:
        env_id: the ALE id, e.g. ``"ALE/Pong-v5"``.
        episodic_life: end an episode when a life is lost (a training-time option of the reference; off for
            data collection and evaluation).
        clip_rewards: replace rewards by their sign (training-time option; the data stores raw rewards).
        **kwargs: passed to ``gymnasium.make`` (``render_mode``, ``max_episode_steps``...).

    Returns:
        The wrapped gymnasium env; actions are integers of the game's minimal action set.
    """
    import ale_py
    import gymnasium as gym
    import numpy as np

    gym.register_envs(ale_py)
    env = gym.make(env_id, frameskip=1, repeat_action_probability=0.0, full_action_space=False, **kwargs)
    env = gym.wrappers.AtariPreprocessing(
        env,
        noop_max=NOOP_MAX,
        frame_skip=FRAME_SKIP,
        screen_size=FRAME_SIZE,
        terminal_on_life_loss=episodic_life,
        grayscale_obs=True,
        scale_obs=False,
    )
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = _fire_reset_wrapper()(env)
    if clip_rewards:
        env = gym.wrappers.TransformReward(env, lambda r: float(np.sign(r)))
    env = gym.wrappers.FrameStackObservation(env, STACK)  # (4, 84, 84)
    space = gym.spaces.Dict(
        {"image_observations": gym.spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, STACK), np.uint8)}
    )
    return gym.wrappers.TransformObservation(
        env, lambda obs: {"image_observations": np.ascontiguousarray(np.moveaxis(obs, 0, -1))}, space
    )
