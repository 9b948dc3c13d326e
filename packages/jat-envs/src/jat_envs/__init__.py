"""jat-envs: the JAT domains (atari, babyai, metaworld, mujoco, text), one jat plugin each."""

__version__ = "0.1.0"
