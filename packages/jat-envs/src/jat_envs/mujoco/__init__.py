"""The mujoco domain."""
