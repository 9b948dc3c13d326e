"""MuJoCo experts for ``jat-collect``: analytic controllers and a planner that uses the simulator itself.

These are not the agents that produced the published data; each is a ``TaskSpec.expert`` factory
``expert(env) -> policy`` with ``policy(observation) -> float32 action``, created afresh right after each reset:

- ``mujoco-pendulum``, ``mujoco-doublependulum``: LQR around the upright state. The env's own model is
  linearised by central finite differences over one control step (``frame_skip`` physics steps), the
  discrete Riccati equation is iterated to a fixed point, and the gain acts on ``[qpos, qvel]`` as read from the
  observation. Both keep the pole(s) up for the whole 1000 steps.
- ``mujoco-reacher``: Jacobian-transpose PD control of the fingertip toward the target (``fingertip - target``
  is in the observation; the Jacobian comes from the env's model at the current state).
- ``mujoco-swimmer``: an open-loop travelling wave (a central pattern generator): both joints driven by
  sinusoids of the same frequency with a fixed phase lag. Faster than the reference expert.
- ``mujoco-halfcheetah``: :class:`SamplingPlanner`, predictive sampling over copies of the env's state
  (``mujoco.rollout``): at each step it rolls out the current plan and ``samples - 1`` noisy variants (linear
  splines) for ``horizon`` control steps, keeps the best under the task's reward (plus an upright term that
  keeps the cheetah off its back), applies its first action and warm-starts the next step from the shifted plan.
  With 128 samples over 15 steps it plays close to the reference expert, at about 10M physics steps per
  1000-step episode, so collecting its data is slow (docs/benchmarks.md, "Design measurements").

Every expert is deterministic: the controllers have no randomness, and the planner's noise is seeded from the
episode's start state (so a seeded reset gives the same episode).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

Policy = Callable[[dict], Any]


def _obs(observation: dict) -> np.ndarray:
    return np.asarray(observation["continuous_observations"], dtype=np.float64)


def _clip(action: np.ndarray, model: Any) -> np.ndarray:
    low, high = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    return np.clip(action, low, high).astype(np.float32)


# -- LQR for the inverted pendulums ---------------------------------------------------------------------------
def linearise(model: Any, frame_skip: int, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """``A, B`` of one control step ``x' = A x + B u`` around ``qpos = qvel = 0, ctrl = 0`` (central differences).

    The state is ``x = [qpos, qvel]`` (the pendulum models have ``nq == nv``); the control is held for
    ``frame_skip`` physics steps, as ``env.step`` does.
    """
    import mujoco

    data = mujoco.MjData(model)
    nq, nv, nu = model.nq, model.nv, model.nu

    def step(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        mujoco.mj_resetData(model, data)
        data.qpos[:], data.qvel[:], data.ctrl[:] = x[:nq], x[nq:], u
        mujoco.mj_step(model, data, nstep=frame_skip)
        return np.concatenate([data.qpos, data.qvel])

    x0, u0 = np.zeros(nq + nv), np.zeros(nu)
    a, b = np.zeros((nq + nv, nq + nv)), np.zeros((nq + nv, nu))
    for i in range(nq + nv):
        d = np.zeros(nq + nv)
        d[i] = eps
        a[:, i] = (step(x0 + d, u0) - step(x0 - d, u0)) / (2 * eps)
    for i in range(nu):
        d = np.zeros(nu)
        d[i] = eps
        b[:, i] = (step(x0, u0 + d) - step(x0, u0 - d)) / (2 * eps)
    return a, b


def dlqr(a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray, iters: int = 10_000) -> np.ndarray:
    """The gain ``K`` of the discrete LQR (``u = -K x``), by iterating the Riccati recursion to its fixed point."""
    p = q.copy()
    for _ in range(iters):
        k = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        p_next = q + a.T @ p @ (a - b @ k)
        done = np.max(np.abs(p_next - p)) <= 1e-10 * max(1.0, float(np.max(np.abs(p))))
        p = p_next
        if done:
            break
    return np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)


_GAINS: dict[str, np.ndarray] = {}


def _lqr_gain(env: Any, key: str) -> np.ndarray:
    """The LQR gain of an env's model (identity state and control weights), computed once per task."""
    if key not in _GAINS:
        u = env.unwrapped
        a, b = linearise(u.model, u.frame_skip)
        _GAINS[key] = dlqr(a, b, np.eye(a.shape[0]), np.eye(b.shape[1]))
    return _GAINS[key]


def pendulum_expert(env: Any) -> Policy:
    """LQR on InvertedPendulum: the observation is ``[cart x, pole angle, cart velocity, pole angular velocity]``."""
    model = env.unwrapped.model
    gain = _lqr_gain(env, "pendulum")

    def policy(observation: dict) -> np.ndarray:
        return _clip(-gain @ _obs(observation), model)

    return policy


def double_pendulum_expert(env: Any) -> Policy:
    """LQR on InvertedDoublePendulum; the state comes out of the observation
    ``[x, sin q1, sin q2, cos q1, cos q2, xdot, q1dot, q2dot, constraint forces x3]``."""
    model = env.unwrapped.model
    gain = _lqr_gain(env, "doublependulum")

    def policy(observation: dict) -> np.ndarray:
        o = _obs(observation)
        angles = np.arctan2(o[1:3], o[3:5])
        state = np.concatenate([o[:1], angles, o[5:8]])
        return _clip(-gain @ state, model)

    return policy


# -- Reacher --------------------------------------------------------------------------------------------------
#: fingertip stiffness (action per metre of error, through the Jacobian transpose) and joint damping
REACHER_KP, REACHER_KD = 20.0, 0.07


def reacher_expert(env: Any) -> Policy:
    """Jacobian-transpose PD: ``a = J^T kp (target - fingertip) - kd qdot`` (clipped to [-1, 1]).

    The observation gives ``fingertip - target`` (entries 8:10) and the joint velocities (6:8); the fingertip
    Jacobian is taken on the env's data, which holds the state the observation was made from.
    """
    import mujoco

    u = env.unwrapped
    model, data = u.model, u.data
    tip = model.body("fingertip").id
    jac = np.zeros((3, model.nv))

    def policy(observation: dict) -> np.ndarray:
        o = _obs(observation)
        mujoco.mj_jacBody(model, data, jac, None, tip)
        j = jac[:2, :2]
        return _clip(j.T @ (-REACHER_KP * o[8:10]) - REACHER_KD * o[6:8], model)

    return policy


# -- Swimmer --------------------------------------------------------------------------------------------------
#: travelling wave: angular frequency (radians per control step) and the second joint's phase lag
SWIMMER_OMEGA, SWIMMER_PHASE = 0.15, -0.8


def swimmer_expert(env: Any) -> Policy:
    """An open-loop gait: ``a_t = [sin(w t), sin(w t + phase)]`` from the episode's first step."""
    step = 0

    def policy(observation: dict) -> np.ndarray:
        nonlocal step
        t = SWIMMER_OMEGA * step
        step += 1
        return np.array([np.sin(t), np.sin(t + SWIMMER_PHASE)], dtype=np.float32)

    return policy


# -- Sampling planner -----------------------------------------------------------------------------------------
Objective = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]


class SamplingPlanner:
    """Predictive sampling (receding-horizon random shooting) on copies of the env's MuJoCo state.

    At each call: read the env's full physics state, roll out the current plan and ``samples - 1`` perturbed
    plans for ``horizon`` control steps (each ``frame_skip`` physics steps, as ``env.step``) with
    ``mujoco.rollout`` on a scratch ``MjData`` (the env's own data is never touched), score them with
    ``objective`` and keep the best; return its first action and shift it by one step for the next call.
    Plans are linear splines with ``knots`` knots over the horizon; perturbations are Gaussian on the knots.

    Args:
        env: the env (its ``unwrapped`` is a gymnasium ``MujocoEnv``).
        objective: ``objective(qpos0, qpos, qvel, actions, dt) -> (samples,)`` returns; ``qpos0`` is the start
            position, ``qpos``/``qvel`` are ``(samples, horizon, n)`` after each control step, ``actions`` is
            ``(samples, horizon, nu)``, ``dt`` the control step in seconds.
        horizon: control steps per rollout.
        samples: rollouts per step (the current plan included).
        knots: spline knots over the horizon.
        sigma: standard deviation of the knot noise (action units).
        seed: seed of the noise; ``None`` seeds from the env's current state (deterministic per episode).
    """

    def __init__(
        self,
        env: Any,
        objective: Objective,
        *,
        horizon: int = 15,
        samples: int = 64,
        knots: int = 15,
        sigma: float = 1.0,
        seed: int | None = None,
    ):
        import mujoco

        u = env.unwrapped
        self.model, self.data, self.frame_skip = u.model, u.data, u.frame_skip
        self.scratch = mujoco.MjData(self.model)
        self.spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.state = np.zeros(mujoco.mj_stateSize(self.model, self.spec))
        self.objective = objective
        self.horizon, self.samples, self.sigma = horizon, samples, sigma
        self.low = self.model.actuator_ctrlrange[:, 0].copy()
        self.high = self.model.actuator_ctrlrange[:, 1].copy()
        self.dt = self.frame_skip * self.model.opt.timestep
        self.knot_times = np.linspace(0.0, horizon - 1.0, knots)
        steps = np.arange(horizon)
        # (horizon, knots): linear interpolation of knot values at each control step
        self.interp = np.stack([np.interp(steps, self.knot_times, np.eye(knots)[k]) for k in range(knots)], 1)
        self.knots = np.zeros((knots, self.model.nu))
        if seed is None:
            mujoco.mj_getState(self.model, self.data, self.state, self.spec)
            seed = zlib.crc32(np.ascontiguousarray(self.state[1:]).tobytes())
        self.rng = np.random.default_rng(seed)

    def plan(self) -> np.ndarray:
        """One planning step from the env's current state; returns the action to apply now."""
        import mujoco
        from mujoco import rollout

        mujoco.mj_getState(self.model, self.data, self.state, self.spec)
        nq, nv = self.model.nq, self.model.nv
        noise = self.rng.standard_normal((self.samples, *self.knots.shape)) * self.sigma
        noise[0] = 0.0
        knots = np.clip(self.knots[None] + noise, self.low, self.high)
        actions = np.einsum("hk,nku->nhu", self.interp, knots)
        states, _ = rollout.rollout(
            self.model, self.scratch, self.state, np.repeat(actions, self.frame_skip, axis=1)
        )
        after = states[:, self.frame_skip - 1 :: self.frame_skip]
        qpos, qvel = after[..., 1 : 1 + nq], after[..., 1 + nq : 1 + nq + nv]
        returns = self.objective(self.state[1 : 1 + nq], qpos, qvel, actions, self.dt)
        best = knots[int(np.argmax(returns))]
        # shift the best plan by one control step (the last knot value is held)
        shifted = self.knot_times + 1.0
        self.knots = np.stack(
            [np.interp(shifted, self.knot_times, best[:, j]) for j in range(best.shape[1])], 1
        )
        return np.clip(self.interp[0] @ best, self.low, self.high).astype(np.float32)

    def __call__(self, observation: dict) -> np.ndarray:
        return self.plan()


def _forward_velocity(qpos0: np.ndarray, qpos: np.ndarray, dt: float) -> np.ndarray:
    """``(samples, horizon)`` x-velocity of the root over each control step (gymnasium's forward reward)."""
    x = np.concatenate([np.broadcast_to(qpos0[0], (qpos.shape[0], 1)), qpos[..., 0]], axis=1)
    return np.diff(x, axis=1) / dt


#: HalfCheetah-v4 control cost weight; planner weight of the squared torso angle (keeps it off its back)
CHEETAH_CTRL_COST, CHEETAH_UPRIGHT = 0.1, 1.0
#: rollouts per step of the halfcheetah planner (64 reach about 0.77 expert-normalised, 128 about 0.87)
CHEETAH_SAMPLES = 128


def cheetah_objective(qpos0, qpos, qvel, actions, dt):
    """HalfCheetah-v4's reward summed over the horizon, minus ``CHEETAH_UPRIGHT * torso_angle**2`` per step."""
    reward = _forward_velocity(qpos0, qpos, dt) - CHEETAH_CTRL_COST * np.sum(actions**2, axis=-1)
    return reward.sum(1) - CHEETAH_UPRIGHT * np.sum(qpos[..., 2] ** 2, axis=1)


def planner_expert(env: Any, *, objective: Objective, **planner_kwargs: Any) -> Policy:
    """A :class:`SamplingPlanner` for one episode (bind ``objective`` and settings with ``functools.partial``)."""
    return SamplingPlanner(env, objective, **planner_kwargs)


#: task name -> expert factory (the tasks without an entry have no expert)
EXPERTS: dict[str, Callable[[Any], Policy]] = {
    "mujoco-pendulum": pendulum_expert,
    "mujoco-doublependulum": double_pendulum_expert,
    "mujoco-reacher": reacher_expert,
    "mujoco-swimmer": swimmer_expert,
    "mujoco-halfcheetah": functools.partial(
        planner_expert, objective=cheetah_objective, samples=CHEETAH_SAMPLES
    ),
}
