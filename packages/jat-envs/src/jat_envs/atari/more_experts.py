"""Atari experts beyond Pong and Freeway: Boxing, Skiing, Surround, Breakout (see :mod:`jat_envs.atari.expert`
for the conventions: each acts on the evaluation env itself, reads the emulator, ignores the image observation,
is made afresh after each reset and has no randomness).

- ``atari-boxing`` (:func:`boxing_expert`): walks to a spot level with the opponent, a punch's reach to its
  side, and punches when a 3-step look-ahead on the emulator (:class:`jat_envs.atari.lookahead.Emulator`) sees a
  punch score more than not punching (2 look-aheads of 12 frames a step). Knocks the computer out (100 points)
  in about 400-600 steps.
- ``atari-skiing`` (:func:`skiing_expert`): finds the next gate's two flags on the screen (their colour) below
  the skier and turns the skier (its heading is RAM byte 15) towards the gate's middle, more steeply the
  further the gate is to the side and the closer it is. Passes the gates; a skier going straight down
  (``NOOP``) misses them and takes the 5 s penalty for each.
- ``atari-surround`` (:func:`surround_expert`): reads the grid off the screen and, each time its head enters a
  new cell, turns towards the cell that leaves it the most territory (cells it reaches first by two steps or
  more, less the computer's), then the most room. Wins the game 10-0.
- ``atari-breakout`` (:class:`BreakoutExpert`): aims the paddle at the ball's landing point, checks the catch
  with the look-ahead, and lets a ball go that loops for :data:`BREAKOUT_STALL` steps without scoring. Clears
  most of the first wall (about 425 of its 432 points).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np

from jat_envs.atari.lookahead import Emulator

Policy = Callable[[dict], int]

# -- Boxing ---------------------------------------------------------------------------------------------------
#: RAM addresses: the player's x and y, the computer's x and y
BOXING_X, BOXING_Y, BOXING_CPU_X, BOXING_CPU_Y = 32, 34, 33, 35
#: the horizontal distance the player keeps from the computer (its punches land from about 17 to 29 px), and the
#: x range of the ring
BOXING_REACH, BOXING_X_RANGE = 24, (0, 109)
#: steps of the punch look-ahead (a punch scores within 10 frames of the press)
BOXING_LOOKAHEAD = 3
#: minimal action set: NOOP, FIRE, then (dx, dy) moves (y grows downwards)
BOXING_NOOP, BOXING_FIRE = 0, 1
BOXING_MOVES = {(0, 0): 0, (0, -1): 2, (1, 0): 3, (-1, 0): 4, (0, 1): 5, (1, -1): 6, (-1, -1): 7, (1, 1): 8,
                (-1, 1): 9}


class BoxingExpert:
    """The Boxing policy of one episode (see the module docstring)."""

    def __init__(self, env: Any):
        self.emu = Emulator(env)

    def move(self, ram: np.ndarray) -> int:
        """The move towards the punching spot: level with the computer, :data:`BOXING_REACH` to its side."""
        x, y, cx, cy = (int(ram[a]) for a in (BOXING_X, BOXING_Y, BOXING_CPU_X, BOXING_CPU_Y))
        side = -1 if x < cx else 1
        tx = min(max(cx + side * BOXING_REACH, BOXING_X_RANGE[0]), BOXING_X_RANGE[1])
        dx = int(np.sign(tx - x)) if abs(tx - x) > 1 else 0
        dy = int(np.sign(cy - y)) if abs(cy - y) > 1 else 0
        return BOXING_MOVES[(dx, dy)]

    def __call__(self, observation: Any) -> int:
        move = self.move(self.emu.ram())
        rest = [BOXING_NOOP] * (BOXING_LOOKAHEAD - 1)
        punch, _, _ = self.emu.rollout([BOXING_FIRE, *rest])
        walk, _, _ = self.emu.rollout([move, *rest])
        return BOXING_FIRE if punch > walk else move


def boxing_expert(env: Any) -> Policy:
    """The Boxing expert of one episode: ``policy(observation) -> action`` (the observation is not used)."""
    return BoxingExpert(env)


# -- Skiing ---------------------------------------------------------------------------------------------------
#: screen colours (RGB) of the skier and of the gates' flags
SKIING_SKIER, SKIING_FLAG = (214, 92, 92), (66, 72, 200)
#: screen rows of the slope (above: the clock, below: the logo)
SKIING_ROWS = (30, 190)
#: RAM address of the skier's heading: 8 is straight down, larger turns towards the right (one press of RIGHT or
#: LEFT turns it by one every one or two steps)
SKIING_HEADING, SKIING_DOWN = 15, 8
#: heading change per unit of (lateral distance / vertical distance) to the gate's middle, the largest turn, and
#: the rows below a gate's top that still belong to its flags
SKIING_GAIN, SKIING_MAX_TURN, SKIING_FLAG_ROWS = 4.0, 3, 16
#: minimal action set of Skiing
SKIING_NOOP, SKIING_RIGHT, SKIING_LEFT = 0, 1, 2


def skiing_heading(screen: np.ndarray) -> int | None:
    """The heading to take: towards the middle of the next gate below the skier (``None``: no skier seen).

    Args:
        screen: ``(210, 160, 3) uint8`` RGB.

    Returns:
        The target value of RAM byte :data:`SKIING_HEADING` (:data:`SKIING_DOWN` when no gate is in sight).
    """
    top, bottom = SKIING_ROWS
    rows, cols = np.nonzero(np.all(screen[top:bottom] == SKIING_SKIER, axis=-1))
    if len(cols) == 0:
        return None
    skier_y, skier_x = rows.max(), cols.mean()
    rows, cols = np.nonzero(np.all(screen[top:bottom] == SKIING_FLAG, axis=-1))
    ahead = rows > skier_y
    rows, cols = rows[ahead], cols[ahead]
    if len(rows) == 0:
        return SKIING_DOWN
    gate = rows <= rows.min() + SKIING_FLAG_ROWS  # the nearest gate's two flags
    middle = (cols[gate].min() + cols[gate].max()) / 2.0 + 1
    slope = (middle - skier_x) / max(rows.min() - skier_y, 8)
    return SKIING_DOWN + int(np.clip(np.round(slope * SKIING_GAIN), -SKIING_MAX_TURN, SKIING_MAX_TURN))


def skiing_expert(env: Any) -> Policy:
    """The Skiing expert of one episode: ``policy(observation) -> action`` (the observation is not used)."""
    emu = Emulator(env)

    def policy(observation: Any) -> int:
        target = skiing_heading(emu.screen())
        heading = int(emu.ram()[SKIING_HEADING])
        if target is None or target == heading:
            return SKIING_NOOP
        return SKIING_RIGHT if target > heading else SKIING_LEFT

    return policy


# -- Surround -------------------------------------------------------------------------------------------------
#: screen colours (RGB) of the player's head (the right-hand, yellow player), the computer's head and the free
#: floor (walls and trails are a fourth colour)
SURROUND_ME, SURROUND_CPU, SURROUND_FLOOR = (183, 194, 95), (200, 72, 72), (84, 92, 214)
#: the playing grid on the screen: first row's top, cell height and width, rows and columns (walls included)
SURROUND_TOP, SURROUND_CELL, SURROUND_SHAPE = 23, (9, 4), (21, 40)
#: minimal action set of Surround: NOOP, then the four turns as (row, column) steps
SURROUND_MOVES = {1: (-1, 0), 2: (0, 1), 3: (0, -1), 4: (1, 0)}  # UP, RIGHT, LEFT, DOWN
_UNREACHED = 1 << 20


def surround_grid(screen: np.ndarray) -> tuple[np.ndarray, tuple | None, tuple | None]:
    """The grid read off the screen at each cell's centre.

    Args:
        screen: ``(210, 160, 3) uint8`` RGB.

    Returns:
        ``(free, me, cpu)``: ``(21, 40) bool`` free cells, and the (row, column) of each head (``None``: not on
        the screen, e.g. between rounds).
    """
    (height, width), (rows, cols) = SURROUND_CELL, SURROUND_SHAPE
    ys = SURROUND_TOP + height * np.arange(rows) + height // 2
    xs = width * np.arange(cols) + width // 2
    cells = screen[ys][:, xs]  # (21, 40, 3)
    heads = []
    for colour in (SURROUND_ME, SURROUND_CPU):
        found = np.argwhere(np.all(cells == colour, axis=-1))
        heads.append(tuple(int(v) for v in found[0]) if len(found) else None)
    return np.all(cells == SURROUND_FLOOR, axis=-1), heads[0], heads[1]


def surround_distances(free: np.ndarray, start: tuple) -> np.ndarray:
    """Steps from ``start`` to each free cell (breadth-first; :data:`_UNREACHED` where none leads), ``(21, 40)``."""
    dist = np.full(free.shape, _UNREACHED)
    dist[start] = 0
    queue = collections.deque([start])
    rows, cols = free.shape
    while queue:
        r, c = queue.popleft()
        for dr, dc in SURROUND_MOVES.values():
            n = (r + dr, c + dc)
            if 0 <= n[0] < rows and 0 <= n[1] < cols and free[n] and dist[n] == _UNREACHED:
                dist[n] = dist[r, c] + 1
                queue.append(n)
    return dist


def surround_move(free: np.ndarray, me: tuple, cpu: tuple | None) -> int | None:
    """The turn whose next cell leaves the player the most territory (free cells it reaches at least two steps
    before the computer, less those the computer reaches two steps first), then the most room; ``None``: no
    free cell next to the player."""
    cpu_dist = surround_distances(free, cpu) if cpu is not None else None
    best, best_value = None, None
    for action, (dr, dc) in SURROUND_MOVES.items():
        cell = (me[0] + dr, me[1] + dc)
        if not (0 <= cell[0] < free.shape[0] and 0 <= cell[1] < free.shape[1]) or not free[cell]:
            continue
        after = free.copy()
        after[cell] = False
        dist = surround_distances(after, cell)
        room = int((dist < _UNREACHED).sum())
        value: tuple[int, int] = (room, 0)
        if cpu_dist is not None:
            mine = int(((dist < _UNREACHED) & (dist < cpu_dist - 1)).sum())
            theirs = int(((cpu_dist < _UNREACHED) & (cpu_dist < dist - 1)).sum())
            value = (mine - theirs, room)
        if best_value is None or value > best_value:
            best, best_value = action, value
    return best


def surround_expert(env: Any) -> Policy:
    """The Surround expert of one episode: ``policy(observation) -> action`` (the observation is not used).

    The heads move one cell every few steps; the policy chooses a turn (:func:`surround_move`) when its head
    reaches a new cell and holds it until the next.
    """
    emu = Emulator(env)
    state: dict[str, Any] = {"cell": None, "action": 0}

    def policy(observation: Any) -> int:
        free, me, cpu = surround_grid(emu.screen())
        if me is not None and me != state["cell"]:
            state["cell"] = me
            move = surround_move(free, me, cpu)
            state["action"] = move if move is not None else state["action"]
        return state["action"]

    return policy


# -- Breakout -------------------------------------------------------------------------------------------------
#: RAM addresses: ball x, ball y (0 while no ball is in play), paddle x (its left end)
BREAKOUT_BALL_X, BREAKOUT_BALL_Y, BREAKOUT_PADDLE = 99, 101, 72
#: ball x of the side walls it reflects off, ball y of the paddle's row, and the paddle's x range
BREAKOUT_WALLS, BREAKOUT_PADDLE_Y, BREAKOUT_PADDLE_RANGE = (55.0, 199.0), 180.0, (55, 191)
#: the paddle is a paddle controller: one press of RIGHT or LEFT moves it about 21.5 px, half in the step of the
#: press and half in the next
BREAKOUT_HALF_PRESS = 10.75
#: ball x minus paddle x the policy aims for (the paddle returns the ball from about -6 to 17)
BREAKOUT_AIM = 5.5
#: steps before the ball reaches ball y :data:`BREAKOUT_CATCH_Y` from which the look-ahead checks the catch, and
#: the steps it plays to see the ball come back up
BREAKOUT_CHECK_STEPS, BREAKOUT_CHECK_HORIZON, BREAKOUT_CATCH_Y = 4, 7, 185
#: RAM addresses of the score (BCD), and the steps without a point after which the ball is let go: the ball then
#: flies a path that misses the remaining bricks for ever (the episode would run to its time limit), and a new
#: ball launched after the life is lost flies another
BREAKOUT_SCORE, BREAKOUT_STALL = (76, 77), 1000
#: minimal action set of Breakout; a press is -1 (LEFT), 0 or 1 (RIGHT)
BREAKOUT_NOOP, BREAKOUT_FIRE, BREAKOUT_RIGHT, BREAKOUT_LEFT = 0, 1, 2, 3
BREAKOUT_PRESS = {0: BREAKOUT_NOOP, 1: BREAKOUT_RIGHT, -1: BREAKOUT_LEFT}


def ball_flight(along: float, across: float, d_along: float, d_across: float, stop: float,
                walls: tuple[float, float], max_steps: int | None = None) -> tuple[float, int]:
    """A ball's straight flight, bouncing off two walls, until it reaches a line.

    Args:
        along, d_along: its position and speed along the axis it travels to ``stop`` on (``d_along > 0``).
        across, d_across: its position and speed across it, reflected at ``walls = (low, high)``.
        stop: the line (a paddle's row or column).
        max_steps: give up after so many steps (``None``: never).

    Returns:
        ``(across at the line, steps until then)``.
    """
    (low, high), steps = walls, 0
    while along < stop and (max_steps is None or steps < max_steps):
        along, across, steps = along + d_along, across + d_across, steps + 1
        if across < low:
            across, d_across = 2 * low - across, -d_across
        elif across > high:
            across, d_across = 2 * high - across, -d_across
    return across, steps


def breakout_landing(bx: float, by: float, dx: float, dy: float) -> tuple[float, int]:
    """Ball x when a falling ball (``dy > 0``) reaches the paddle's row, and the steps until then."""
    return ball_flight(float(by), float(bx), dy, dx, BREAKOUT_PADDLE_Y, BREAKOUT_WALLS, max_steps=200)


class BreakoutExpert:
    """The Breakout policy of one episode: aims the paddle at where the ball will land (straight flight with
    reflections off the side walls, pressing as the Pong expert does for a paddle that moves after the press),
    and in the last steps before the ball reaches the paddle checks the catch on the emulator: of the nine
    two-step press sequences (the aimed press first) it plays the first that sends the ball back up. A ball that
    has scored nothing for :data:`BREAKOUT_STALL` steps is let go (the paddle stays put until it is lost)."""

    def __init__(self, env: Any):
        self.emu = Emulator(env)
        self.ball: tuple[int, int] | None = None
        self.last_press, self.steps = 0, 0
        self.score: tuple[int, ...] = ()
        self.scored_at = 0
        order = (BREAKOUT_NOOP, BREAKOUT_RIGHT, BREAKOUT_LEFT)
        self.sequences = [(a, b) for a in order for b in order]

    def aim(self, ball: tuple[int, int], paddle: int) -> tuple[int, int]:
        """The press (-1, 0, 1) that brings the paddle closest to where it should meet the ball, and the steps
        until the ball reaches the paddle's row (a large number while it rises)."""
        target, steps = float(ball[0]), 99
        if self.ball is not None and self.ball[1] and ball[1] > self.ball[1]:
            target, steps = breakout_landing(*ball, ball[0] - self.ball[0], ball[1] - self.ball[1])
        low, high = BREAKOUT_PADDLE_RANGE
        position = min(max(paddle + self.last_press * BREAKOUT_HALF_PRESS, low), high)  # after its pending move
        error = target - BREAKOUT_AIM - position
        gain = 2 * BREAKOUT_HALF_PRESS if steps >= 2 else BREAKOUT_HALF_PRESS
        press = 0
        for u in (-1, 1):
            if abs(error - u * gain) < abs(error - press * gain):
                press = u
        return press, steps

    def returns_ball(self, actions: tuple[int, ...]) -> bool:
        """Whether ``actions`` (then NOOP) send the falling ball back up before a life is lost."""
        y0 = int(self.emu.ram()[BREAKOUT_BALL_Y])
        seen = {"y": y0, "up": False}

        def until(ram: np.ndarray, frame: int) -> bool:
            y = int(ram[BREAKOUT_BALL_Y])
            seen["up"] = 0 < y < seen["y"]
            seen["y"] = y
            return y == 0 or seen["up"]

        padded = list(actions) + [BREAKOUT_NOOP] * (BREAKOUT_CHECK_HORIZON - len(actions))
        _, lost, _ = self.emu.rollout(padded, until)
        return seen["up"] and not lost

    def __call__(self, observation: Any) -> int:
        ram = self.emu.ram()
        ball = (int(ram[BREAKOUT_BALL_X]), int(ram[BREAKOUT_BALL_Y]))
        self.steps += 1
        score = tuple(int(ram[a]) for a in BREAKOUT_SCORE)
        if score != self.score:
            self.score, self.scored_at = score, self.steps
        if ball[1] == 0:  # no ball in play: launch one
            self.ball, self.last_press, self.scored_at = None, 0, self.steps
            return BREAKOUT_FIRE if self.steps % 2 == 0 else BREAKOUT_NOOP
        if self.steps - self.scored_at > BREAKOUT_STALL:  # the ball loops without scoring: let it go
            self.ball = ball
            return BREAKOUT_NOOP
        press, _ = self.aim(ball, int(ram[BREAKOUT_PADDLE]))
        action = BREAKOUT_PRESS[press]
        falling = self.ball is not None and self.ball[1] and ball[1] > self.ball[1]
        if falling and (BREAKOUT_CATCH_Y - ball[1]) / (ball[1] - self.ball[1]) <= BREAKOUT_CHECK_STEPS:
            preferred = sorted(self.sequences, key=lambda s: (s[0] != action, s != (action, BREAKOUT_NOOP)))
            action = next((s[0] for s in preferred if self.returns_ball(s)), action)
        self.ball = ball
        self.last_press = {v: k for k, v in BREAKOUT_PRESS.items()}[action]
        return action


def breakout_expert(env: Any) -> Policy:
    """The Breakout expert of one episode: ``policy(observation) -> action`` (the observation is not used)."""
    return BreakoutExpert(env)
