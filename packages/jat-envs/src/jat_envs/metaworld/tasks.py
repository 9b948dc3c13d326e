"""The 50 Meta-World tasks (the MT50 set): task name -> Meta-World env name.

The reference used Meta-World's ``-v2`` envs; Meta-World 3.x ships only ``-v3`` (same tasks, same
39-float observation and 4-float action, revised rewards and physics details), so each task maps to its
``-v3`` env. Scores in ``reference_scores.csv`` were measured on ``-v2``.
"""

from __future__ import annotations

NAMES = (
    "assembly basketball bin-picking box-close button-press button-press-topdown button-press-topdown-wall "
    "button-press-wall coffee-button coffee-pull coffee-push dial-turn disassemble door-close door-lock door-open "
    "door-unlock drawer-close drawer-open faucet-close faucet-open hammer hand-insert handle-press "
    "handle-press-side handle-pull handle-pull-side lever-pull peg-insert-side peg-unplug-side pick-out-of-hole "
    "pick-place pick-place-wall plate-slide plate-slide-back plate-slide-back-side plate-slide-side push push-back "
    "push-wall reach reach-wall shelf-place soccer stick-pull stick-push sweep sweep-into window-close window-open"
).split()

#: task name (``metaworld-<name>``) -> Meta-World 3.x env name
ENV_NAMES: dict[str, str] = {f"metaworld-{n}": f"{n}-v3" for n in NAMES}
