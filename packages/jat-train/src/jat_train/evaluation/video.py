"""Episode recordings as animated GIFs (pillow only: no ffmpeg, no moviepy).

:class:`RecordEpisodeGif` wraps one env made with ``render_mode="rgb_array"``: it grabs ``env.render()`` after
each reset and step, and when an episode ends writes ``<directory>/episode-<id>.gif``. It records the first
``len(episode_ids)`` episodes the env runs, naming them with the given ids (the evaluation passes the global
episode indices that env is scheduled to run), and nothing after. If ``render()`` fails (a simulator without an
OpenGL context), it warns and records nothing more, and the evaluation goes on.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from jat_train.files import atomic_write


def write_gif(frames: Sequence[np.ndarray], path: str, fps: float = 30.0) -> str:
    """Write ``frames`` (each ``(H, W, 3)`` or ``(H, W)`` uint8) as a looping animated GIF.

    Returns:
        ``path``.

    Raises:
        OSError: it could not be written (naming it and the cause); no partial file is left.
    """
    from PIL import Image

    if not frames:
        raise ValueError(f"write_gif: no frames to write to {path}")
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    duration_ms = max(20, int(round(1000 / max(fps, 1e-3))))

    def save(tmp: str) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)

    return atomic_write(path, save)  # a killed evaluation leaves no half GIF


class RecordEpisodeGif(gym.Wrapper):
    """Record the first episodes of an env as GIFs.

    Args:
        env: an env whose ``render()`` returns an RGB array.
        directory: where the GIFs go.
        episode_ids: names of the episodes to record, in the order the env runs them.
        max_frames: frames kept per episode (the first ones); long episodes are cut.
        fps: frames per second of the GIF; default: the env's ``metadata["render_fps"]`` or 30.
    """

    def __init__(
        self,
        env: gym.Env,
        directory: str,
        episode_ids: Sequence[int],
        max_frames: int = 1000,
        fps: float | None = None,
    ):
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(
                f"RecordEpisodeGif: the env must have render_mode='rgb_array', got {env.render_mode!r}"
            )
        self.directory = directory
        self.pending = list(episode_ids)
        self.max_frames = max_frames
        self.fps = fps or float(env.metadata.get("render_fps") or 30)
        self.frames: list[np.ndarray] = []
        self.recording = False
        self.written: list[str] = []

    def _grab(self) -> None:
        if self.recording and len(self.frames) < self.max_frames:
            try:
                frame = self.env.render()
            except Exception as exc:  # e.g. a simulator without an OpenGL context: skip the video, keep evaluating
                name = self.env.spec.id if self.env.spec else type(self.env.unwrapped).__name__
                warnings.warn(
                    f"{name}: render() failed ({exc!r}); no video for this env "
                    "(on a machine without a display, a simulator may need a headless OpenGL backend)",
                    stacklevel=2,
                )
                self.pending, self.recording, self.frames = [], False, []
                return
            if frame is not None:
                self.frames.append(np.asarray(frame))

    def reset(self, **kwargs: Any):
        """Reset; start recording if an episode id is left."""
        self._flush()
        obs, info = self.env.reset(**kwargs)
        self.recording = bool(self.pending)
        self._grab()
        return obs, info

    def step(self, action: Any):
        """Step, grab the frame, and write the GIF when the episode ends."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._grab()
        if terminated or truncated:
            self._flush()
        return obs, reward, terminated, truncated, info

    def _flush(self) -> None:
        if self.recording and self.frames:
            path = os.path.join(self.directory, f"episode-{self.pending.pop(0)}.gif")
            self.written.append(write_gif(self.frames, path, self.fps))
        self.recording = False
        self.frames = []

    def close(self) -> None:
        """Close without writing a partial episode."""
        self.recording = False
        self.frames = []
        super().close()
