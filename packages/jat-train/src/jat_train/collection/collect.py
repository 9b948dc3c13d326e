"""Local expert data collection: roll out a task's expert (or any policy) and save episodes in the jat-dataset schema.

``jat-collect --tasks babyai-go-to,metaworld-reach --episodes 100 --out data/`` writes ``data/<task>/``
with ``datasets.DatasetDict.save_to_disk`` (splits ``train`` and ``test``), one row per episode, exactly the
columns and types of the hub data set ``jat-project/jat-dataset``. Training then reads local and hub data the
same way.

Nothing here knows a domain: the schema comes from the task's field specs, the env from ``TaskSpec.make_env``
and the policy from ``TaskSpec.expert`` or a user factory. The pieces, one module each:

- :mod:`jat_train.collection.schema`: the data set's columns and types (:func:`features_for`) and how values are encoded;
- :mod:`jat_train.collection.recording`: policies (:func:`load_policy_factory`), checked rollouts, and :func:`collect`
  (policies, checks, ``--action-noise``, determinism);
- :mod:`jat_train.collection.store`: atomic writes to ``OUT/<task>/`` (:func:`collect_to_disk`, :func:`write_data`) and
  the :class:`CollectSummary` of what was written;
- :mod:`jat_train.collection.samples`: tasks without an env, whose rows come from their ``TaskSpec.samples`` source;
- this module: the ``jat-collect`` command line; it re-exports the names above.

``--episodes 1`` puts its episode in ``train`` and writes an empty but typed ``test`` split (the data set loads,
and trains).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

# re-exported: the names this module held before its schema, rollouts and writer moved out
from jat_train.collection.recording import collect, load_policy_factory, random_policy  # noqa: F401
from jat_train.collection.schema import features_for, split_sizes  # noqa: F401
from jat_train.collection.store import collect_to_disk, remove_partial, summarize, write_data  # noqa: F401


# -- command line -------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``jat-collect`` argument parser."""
    from jat_core.cli import add_debug_flag

    parser = argparse.ArgumentParser(prog="jat-collect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", required=True, help="comma-separated task and/or domain names")
    parser.add_argument("--episodes", type=int, required=True,
                        help="episodes to keep per task (samples, for tasks without an env that make their data)")
    parser.add_argument("--out", required=True, help="output root: one DIR/<task>/ per task")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument(
        "--test-fraction", type=float, default=0.1, help="share of episodes in the test split"
    )
    parser.add_argument("--plugins", default=None, help="comma-separated plugins to load (default: all)")
    parser.add_argument(
        "--policy",
        default=None,
        help="policy factory 'module:callable' (factory(env) -> policy), or 'random'; default: each task's expert",
    )
    parser.add_argument(
        "--input-dir",
        default=None,
        help="folder of input files for tasks whose samples are read from files (e.g. a folder of *.txt files; "
        "default: each task's own source)",
    )
    parser.add_argument(
        "--action-noise", type=float, default=0.0, metavar="SCALE",
        help="DART: the env executes a perturbed action while the expert's own is recorded, so the data show how "
        "it recovers from mistakes; Box spaces get Gaussian noise of SCALE x half their range, Discrete ones a "
        "random action with probability SCALE; train episodes only (default: 0, none)",
    )
    parser.add_argument(
        "--max-steps", type=int, default=None, metavar="N",
        help="env steps to keep at most per task: a task whose episodes are long stops before --episodes once its "
        "episodes hold N steps (each split its share; the episode crossing it is kept); tasks with an env only "
        "(default: no limit)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_debug_flag(parser)
    return parser


def _main(argv: Sequence[str] | None) -> int:
    from jat_core.cli import UserError, check_output_dir
    from jat_core.plugins import load_plugins

    from jat_train.run_lock import run_lock

    args = build_parser().parse_args(argv)
    if args.episodes < 1:
        raise UserError(f"--episodes: expected a positive number of episodes, got {args.episodes}")
    if args.max_steps is not None and args.max_steps < 1:
        raise UserError(f"--max-steps: expected a positive number of steps, got {args.max_steps}")
    if not 0.0 <= args.test_fraction < 1.0:
        raise UserError(f"--test-fraction: expected a value in [0, 1), got {args.test_fraction}")
    if not 0.0 <= args.action_noise <= 1.0:
        raise UserError(f"--action-noise: expected a scale in [0, 1], got {args.action_noise}")
    check_output_dir(args.out, "--out")
    registry = load_plugins(args.plugins)
    tasks = registry.select(args.tasks)
    factory = load_policy_factory(args.policy) if args.policy else None
    made = {t.name for t in tasks if (not t.is_rl or t.make_env is None) and t.samples is not None}
    not_rl = [t.name for t in tasks if (not t.is_rl or t.make_env is None) and t.samples is None]
    no_expert = [t.name for t in tasks if t.is_rl and t.make_env is not None and t.expert is None and factory is None]
    if not_rl:
        raise UserError(
            f"tasks without an environment or a local sample source cannot be collected: {', '.join(not_rl)} "
            "(their data come from the hub: jat-train --data hub)"
        )
    if args.input_dir is not None and not os.path.isdir(os.path.expanduser(args.input_dir)):
        what = "is a file" if os.path.exists(args.input_dir) else "does not exist"
        raise UserError(f"--input-dir: expected a directory of input files, {args.input_dir!r} {what}")
    if no_expert:
        raise UserError(
            f"no offline expert for {', '.join(no_expert)}; give --policy module:callable "
            "(a factory(env) -> policy) or --policy random"
        )
    with run_lock(args.out, prog="jat-collect", field="--out"):  # one jat-collect or jat-train writes --out
        remove_partial(args.out)  # what a killed jat-collect left: its data set set aside is put back
        for task in tasks:
            if task.name in made:
                from jat_train.collection.samples import collect_samples_to_disk

                summary = collect_samples_to_disk(
                    task, args.episodes, args.out, seed=args.seed, input_dir=args.input_dir,
                    test_fraction=args.test_fraction, progress=not args.no_progress,
                )
                print(summary.line(), flush=True)
                continue
            summary = collect_to_disk(
                task,
                args.episodes,
                args.out,
                seed=args.seed,
                policy_factory=factory,
                test_fraction=args.test_fraction,
                progress=not args.no_progress,
                action_noise=args.action_noise,
                max_steps=args.max_steps,
            )
            print(summary.line(), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jat-collect``; returns the exit code (2 for bad arguments, policies or data; see
    :func:`jat_core.cli.run_console_script`)."""
    from jat_core.cli import run_console_script

    return run_console_script("jat-collect", _main, argv)
