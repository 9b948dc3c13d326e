"""The atari domain."""
