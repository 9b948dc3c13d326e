"""minigrid's BabyAI bot with two of its steps done faster, to the same decisions.

The bot spends most of a step in two places this module replaces by code that computes the same values:

- what the agent sees: the stock bot asks the env for the agent's view again (``gen_obs_grid``, as costly as the
  env's own step) to mark the cells it has seen; the observation the env has just returned holds the same view
  (a cell of the view is visible exactly when its object channel is not minigrid's ``unseen``, 0), so
  :meth:`FastBot.see` marks them from it with array arithmetic;
- its breadth-first search: the stock search pops its queue by copying the list (quadratic in the queue), queues
  every cell once per neighbour and reads every cell through ``Grid.get`` and the numpy mask one by one;
  :meth:`FastBot._breadth_first_search` visits the same states in the same order with a deque, queues a cell once
  (the entries after its first are never expanded) and reads the grid's cell list and a Python copy of the mask.

The two methods override the bot's own, whose names and contracts are those of the minigrid version the project
pins (``constraints.txt``); ``tests/envs/test_babyai_bot.py`` plays the stock bot and this one side by side on
every BabyAI level and checks that they choose the same actions.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from minigrid.utils.baby_ai_bot import BabyAIBot

from jat_envs.babyai.env import VIEW


class FastBot(BabyAIBot):
    """The BabyAI bot, planning on ``env.unwrapped`` (the same env, without the wrappers' attribute lookups).

    Call :meth:`see` with the env's latest observation before each :meth:`replan`; without it a replan marks the
    seen cells the stock way.
    """

    def __init__(self, env: Any):
        self._seen_view: np.ndarray | None = None
        super().__init__(env.unwrapped)

    def see(self, grid: np.ndarray) -> None:
        """Remember the view of the env's latest observation for the next :meth:`replan`.

        Args:
            grid: int (148,): the observation's ``discrete_observations``, the direction then the 7x7x3 view.
        """
        view = np.asarray(grid)[1:].reshape(VIEW, VIEW, -1)
        self._seen_view = view[:, :, 0] != 0  # (7, 7) bool, [i, j] as the view's own indexing

    def _process_obs(self) -> None:
        """Mark the cells visible in the remembered view as seen (the stock method, from the observation)."""
        visible, self._seen_view = self._seen_view, None
        env = self.mission.unwrapped
        if visible is None or env.agent_view_size != VIEW:
            return super()._process_obs()
        vis_i, vis_j = np.nonzero(visible)
        f_vec, r_vec = np.asarray(env.dir_vec), np.asarray(env.right_vec)
        top_left = np.asarray(env.agent_pos) + f_vec * (VIEW - 1) - r_vec * (VIEW // 2)
        cells = top_left - np.outer(vis_j, f_vec) + np.outer(vis_i, r_vec)  # (n, 2) world coordinates
        inside = (cells[:, 0] >= 0) & (cells[:, 0] < self.vis_mask.shape[0])
        inside &= (cells[:, 1] >= 0) & (cells[:, 1] < self.vis_mask.shape[1])
        self.vis_mask[cells[inside, 0], cells[inside, 1]] = True

    def _breadth_first_search(self, initial_states, accept_fn, ignore_blockers):
        """The stock search (same visiting order, same results and counters), with a deque and direct reads."""
        self.bfs_counter += 1
        # a cell is queued once: its first entry is popped first and the stock search skips the later ones
        queue, queued = deque(), set()
        for i, j, di, dj in initial_states:
            if (i, j) not in queued:
                queued.add((i, j))
                queue.append((i, j, di, dj, None))
        grid = self.mission.unwrapped.grid
        cells, width, height = grid.grid, grid.width, grid.height
        seen = self.vis_mask.tolist()
        previous_pos: dict = {}
        visited = 0
        try:
            while queue:
                i, j, di, dj, prev_pos = queue.popleft()
                visited += 1
                pos = (i, j)
                cell = cells[j * width + i] if 0 <= i < width and 0 <= j < height else grid.get(i, j)
                previous_pos[pos] = prev_pos
                if accept_fn(pos, cell):
                    path = []
                    while pos:
                        path.append(pos)
                        pos = previous_pos[pos]
                    return path, (i, j), previous_pos
                if not seen[i][j]:  # not observed: not expanded
                    continue
                if cell:
                    if cell.type == "wall":
                        continue
                    if cell.type == "door":
                        if not cell.is_open:
                            continue
                    elif not ignore_blockers:
                        continue
                # cells reachable without turning are queued first
                for k, m in ((di, dj), (dj, di), (-dj, -di), (-di, -dj)):
                    nxt = (i + k, j + m)
                    if nxt not in queued:
                        queued.add(nxt)
                        queue.append((i + k, j + m, k, m, pos))
            return None, None, previous_pos
        finally:
            self.bfs_step_counter += visited
