"""Atari experts for ``jat-collect``: scripted policies that read the emulator's RAM (``ale.getRAM()``).

They act on the evaluation env itself (:func:`jat_envs.atari.env.make_env`: no-op reset, 4-frame skip with max
pooling, FIRE reset, 84x84 grayscale stack of 4), one decision per env step, and ignore the image observation:
the state comes from the RAM of ``env.unwrapped.ale`` (addresses as annotated by AtariARI, checked by stepping
the emulator). Each is a ``TaskSpec.expert`` factory ``expert(env) -> policy``, created afresh after each reset,
with no randomness (a seeded reset gives the same episode).

- ``atari-pong`` (:func:`pong_expert`): predicts where the ball meets the paddle (straight flight with
  reflections off the top and bottom walls) and places the paddle so that the ball meets it a fixed offset from
  its top, which returns the ball at an angle the computer cannot reach. The paddle is a paddle controller, not
  a joystick: one step of RIGHT/LEFT moves it 23 px, spread over the next four steps (6, 13, 3, 1 px), so the
  policy keeps its last four presses and aims the paddle's resting position, using the partial moves of the
  last steps before contact for fine placement. Near the walls it aims for the paddle's middle. Wins 21-0 in
  about 6,000-10,000 steps.
- ``atari-freeway`` (:func:`freeway_expert`): cars move at constant speeds, so their positions can be
  predicted; a dynamic programme over the next 24 steps (chicken height x time, actions UP/NOOP/DOWN) picks the
  move that gets furthest up without entering a lane while its car crosses the chicken's column.

The other games with an expert: Boxing, Skiing, Surround and Breakout (:mod:`jat_envs.atari.more_experts`) and
Kangaroo (:mod:`jat_envs.atari.expert_kangaroo`); some of them read the screen, and some look ahead on the
emulator (:mod:`jat_envs.atari.lookahead`: clone the state, play candidate actions, restore it).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np

from jat_envs.atari import more_experts
from jat_envs.atari.expert_kangaroo import kangaroo_expert

Policy = Callable[[dict], int]


def _ale(env: Any) -> Any:
    return env.unwrapped.ale


# -- Pong -----------------------------------------------------------------------------------------------------
#: RAM addresses: player paddle y (top), ball x, ball y (0 while no ball is in play)
PONG_PADDLE_Y, PONG_BALL_X, PONG_BALL_Y = 51, 49, 54
#: walls the ball reflects off (ball y), and the ball x at which it meets the player's paddle
PONG_TOP, PONG_BOTTOM, PONG_HIT_X = 45.5, 205.5, 188
#: where the paddle waits while the ball moves away (ball y units)
PONG_CENTRE = 125.0
#: px the paddle moves in each of the four steps after one press (sum 23)
PONG_PRESS_PROFILE = np.array([6, 13, 3, 1])
#: ball y minus paddle y at contact that the policy aims for (the paddle is hit between about -3 and 14; 0
#: and 13 both win 21-0, 5-10 return the ball without winning the point)
PONG_HIT_OFFSET = 13
#: contacts predicted outside this band of ball y (close to a wall, where a bounce just before the paddle makes
#: the prediction less exact) aim for the paddle's middle instead: an edge there can lose the point
PONG_SAFE_BAND, PONG_SAFE_OFFSET = (55.0, 195.0), 8
#: minimal action set of Pong: NOOP, FIRE, RIGHT (paddle up), LEFT (paddle down)
PONG_NOOP, PONG_UP, PONG_DOWN = 0, 2, 3


def pong_intercept(bx: float, by: float, dx: float, dy: float) -> tuple[float, int]:
    """Ball y when it reaches the player's paddle and how many steps until then (``dx > 0``: ball approaching)."""
    return more_experts.ball_flight(bx, by, dx, dy, PONG_HIT_X, (PONG_TOP, PONG_BOTTOM))


class PongExpert:
    """The Pong policy of one episode (see the module docstring)."""

    def __init__(self, env: Any, offset: float = PONG_HIT_OFFSET):
        self.ale = _ale(env)
        self.offset = offset
        self.presses: collections.deque[int] = collections.deque([0] * len(PONG_PRESS_PROFILE), maxlen=4)
        self.ball: tuple[int, int] | None = None
        self.reach = np.cumsum(PONG_PRESS_PROFILE)  # reach[k-1]: move of a press made k steps before

    def pending(self) -> float:
        """Displacement (px, down positive) the last presses have yet to produce."""
        total = int(self.reach[-1])
        return float(sum(u * (total - self.reach[age]) for age, u in enumerate(reversed(self.presses))))

    def __call__(self, observation: Any) -> int:
        ram = self.ale.getRAM()
        bx, by, paddle = int(ram[PONG_BALL_X]), int(ram[PONG_BALL_Y]), int(ram[PONG_PADDLE_Y])
        target, steps = PONG_CENTRE, len(PONG_PRESS_PROFILE)
        if by and self.ball is not None and self.ball[1]:
            dx, dy = bx - self.ball[0], by - self.ball[1]
            if dx > 0:
                y, steps = pong_intercept(bx, by, dx, dy)
                low, high = PONG_SAFE_BAND
                target = y - (self.offset if low <= y <= high else PONG_SAFE_OFFSET)
        self.ball = (bx, by)
        error = target - (paddle + self.pending())
        # a press now moves the paddle by reach[steps - 1] before contact (its full 23 px if contact is far)
        gain = float(self.reach[min(steps, len(self.reach)) - 1]) if steps >= 1 else 0.0
        press = 0
        for u in (-1, 1):
            if abs(error - u * gain) < abs(error - press * gain):
                press = u
        self.presses.append(press)
        return {0: PONG_NOOP, -1: PONG_UP, 1: PONG_DOWN}[press]


def pong_expert(env: Any) -> Policy:
    """The Pong expert of one episode: ``policy(observation) -> action`` (the observation is not used)."""
    return PongExpert(env)


# -- Freeway --------------------------------------------------------------------------------------------------
#: RAM addresses: chicken y (6 at the bottom, larger is higher), the x of the car in each of the 10 lanes
FREEWAY_CHICKEN_Y, FREEWAY_CARS = 14, slice(108, 118)
#: chicken y of lane k's centre: 16 + 16 k; it is hit in y [centre - 5, centre + 10] while that lane's car x is
#: in [39, 55] (measured frame by frame)
FREEWAY_LANE_Y = 16 + 16 * np.arange(10)
FREEWAY_BAND = (-5, 10)
FREEWAY_CAR_X = (39, 55)
#: chicken y at which it crosses (scores and restarts at the bottom); px per step of UP or DOWN
FREEWAY_TOP, FREEWAY_STEP = 178, 4
#: steps planned ahead, and steps of car history the speeds are averaged over
FREEWAY_HORIZON, FREEWAY_HISTORY = 24, 8
#: minimal action set of Freeway
FREEWAY_NOOP, FREEWAY_UP, FREEWAY_DOWN = 0, 1, 2


class FreewayExpert:
    """The Freeway policy of one episode (see the module docstring)."""

    def __init__(self, env: Any):
        self.ale = _ale(env)
        self.history: collections.deque[np.ndarray] = collections.deque(maxlen=FREEWAY_HISTORY + 1)
        self.heights = np.arange(200)
        low, high = FREEWAY_BAND
        self.in_lane = (self.heights[:, None] >= FREEWAY_LANE_Y + low) & (
            self.heights[:, None] <= FREEWAY_LANE_Y + high
        )  # (200, 10)

    def blocked(self, cars: np.ndarray) -> np.ndarray:
        """``(horizon, 200)``: chicken heights that collide during each of the next steps."""
        self.history.append(cars)
        if len(self.history) >= 2:  # car speeds (px per step), unwrapping the screen's 160 px
            speed = ((np.diff(np.array(self.history), axis=0) + 80) % 160 - 80).mean(0)
        else:  # the lower five lanes drive right, the upper five left
            speed = np.where(np.arange(10) < 5, 1.0, -1.0)
        ahead = (cars + speed * np.arange(FREEWAY_HORIZON + 1)[:, None]) % 160
        crossing = (ahead >= FREEWAY_CAR_X[0]) & (ahead <= FREEWAY_CAR_X[1])
        crossing = crossing[1:] | crossing[:-1]  # at either end of the step
        return (crossing[:, None, :] & self.in_lane[None]).any(-1)

    def __call__(self, observation: Any) -> int:
        ram = self.ale.getRAM()
        y = int(ram[FREEWAY_CHICKEN_Y])
        blocked = self.blocked(ram[FREEWAY_CARS].astype(float))
        s, top, n = FREEWAY_STEP, FREEWAY_TOP, FREEWAY_HORIZON
        # value[h]: the best height reachable at the horizon from height h (crossing early is worth more)
        value = np.where(blocked[-1], -1e9, np.minimum(self.heights, top)).astype(float)
        for k in range(n - 2, -1, -1):
            up = np.concatenate([value[s:], np.full(s, value[-1])])
            down = np.concatenate([np.full(s, value[0]), value[:-s]])
            best = np.maximum(np.maximum(up, value), down)
            best = np.where(self.heights >= top, top + (n - k), best)
            value = np.where(blocked[k], -1e9, best)
        moves = {FREEWAY_UP: min(y + s, 199), FREEWAY_NOOP: y, FREEWAY_DOWN: max(y - s, 0)}
        # ties go to UP, then NOOP
        return max(moves, key=lambda a: value[moves[a]] + (0.5 if a == FREEWAY_UP else 0.0))


def freeway_expert(env: Any) -> Policy:
    """The Freeway expert of one episode: ``policy(observation) -> action`` (the observation is not used)."""
    return FreewayExpert(env)


#: task name -> expert factory (the games without an entry have no expert)
EXPERTS: dict[str, Callable[[Any], Policy]] = {
    "atari-pong": pong_expert,
    "atari-freeway": freeway_expert,
    "atari-boxing": more_experts.boxing_expert,
    "atari-skiing": more_experts.skiing_expert,
    "atari-surround": more_experts.surround_expert,
    "atari-breakout": more_experts.breakout_expert,
    "atari-kangaroo": kangaroo_expert,
}
