"""The agent's view of a minigrid env, computed as minigrid's ``gen_obs`` computes it, on plain lists.

``MiniGridEnv.gen_obs`` (called by every ``step`` and ``reset``) builds the view through three temporary ``Grid``
objects (the slice, then one per quarter turn) and numpy reads cell by cell; it is as costly as the BabyAI bot's
planning. :func:`observe` follows the same steps (``gen_obs_grid``: slice, turns, ``process_vis``, the carried
object; then ``Grid.encode``) on lists of the same cell objects and returns the same observation, value for value;
:func:`make_env <jat_envs.babyai.env.make_env>` installs it as the env's ``gen_obs``.
``tests/envs/test_babyai_bot.py`` checks it against minigrid's own on every level.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minigrid.core.constants import OBJECT_TO_IDX
from minigrid.core.world_object import Wall

#: what the view holds outside the world (``Grid.slice`` puts a fresh wall there; only its encoding is read)
_OUTSIDE = Wall()
_EMPTY = (OBJECT_TO_IDX["empty"], 0, 0)
_UNSEEN = (OBJECT_TO_IDX["unseen"], 0, 0)


def observe(env: Any) -> dict[str, Any]:
    """``env.gen_obs()`` of a minigrid env (``env`` unwrapped): ``{"image": uint8 (V, V, 3), "direction": int,
    "mission": str}`` with ``V = env.agent_view_size``."""
    size = env.agent_view_size
    view = _turned_view(env, size)  # view[i][j]: the cell at column i, row j of the agent's view
    visible = [[True] * size for _ in range(size)] if env.see_through_walls else _visible(view, size)
    view[size // 2][size - 1] = env.carrying  # the agent sees what it carries, where it stands
    codes = []
    for i in range(size):
        for j in range(size):
            cell = view[i][j]
            codes.extend(_UNSEEN if not visible[i][j] else _EMPTY if cell is None else cell.encode())
    image = np.array(codes, dtype=np.uint8).reshape(size, size, 3)
    return {"image": image, "direction": env.agent_dir, "mission": env.mission}


def _turned_view(env: Any, size: int) -> list[list]:
    """``Grid.slice`` of the view's square, then ``agent_dir + 1`` quarter turns left (``Grid.rotate_left``)."""
    top_x, top_y, _, _ = env.get_view_exts(size)
    cells, width, height = env.grid.grid, env.grid.width, env.grid.height
    view = [
        [
            cells[(top_y + j) * width + top_x + i] if 0 <= top_x + i < width and 0 <= top_y + j < height else _OUTSIDE
            for j in range(size)
        ]
        for i in range(size)
    ]
    for _ in range((env.agent_dir + 1) % 4):  # four turns leave the view as it was
        turned = [[None] * size for _ in range(size)]
        for i in range(size):
            for j in range(size):
                turned[j][size - 1 - i] = view[i][j]
        view = turned
    return view


def _visible(view: list[list], size: int) -> list[list[bool]]:
    """``Grid.process_vis`` from the agent's cell (the middle of the bottom row): which cells it sees."""
    mask = [[False] * size for _ in range(size)]
    mask[size // 2][size - 1] = True
    for j in reversed(range(size)):
        for i in range(size - 1):
            cell = view[i][j]
            if not mask[i][j] or (cell and not cell.see_behind()):
                continue
            mask[i + 1][j] = True
            if j > 0:
                mask[i + 1][j - 1] = mask[i][j - 1] = True
        for i in reversed(range(1, size)):
            cell = view[i][j]
            if not mask[i][j] or (cell and not cell.see_behind()):
                continue
            mask[i - 1][j] = True
            if j > 0:
                mask[i - 1][j - 1] = mask[i][j - 1] = True
    return mask
