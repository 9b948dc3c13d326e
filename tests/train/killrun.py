"""SIGKILL a console script at seeded random moments and check what it leaves: ``python killrun.py SPEC.json``.

SPEC: ``{"prog", "argv", "seed_dir", "work", "writes", "points", "seed", "check"}``. This process imports
everything once and copies ``seed_dir`` to ``work``; then for each point it restores the folder ``writes`` of
``work`` from ``seed_dir``, forks a child that runs ``toy_cli.main(prog, argv)`` in ``work``, kills it with
SIGKILL after a delay (measured by a first, complete run: half drawn uniformly over 1.2 times the command's
duration, half over the part of it where it writes its files), or in the middle of writing its k-th file (each
file the complete run opened for writing with ``open``, in turn), and runs the check named ``check`` on what
is left: what a later command would read there must be the old files or the new complete ones, never a
half-written file taken as good. Prints one JSON object:
``{"duration": s, "files": k, "outcomes": ["old" | "new" | "mixed", ...], "failures": [message, ...]}``.
"""

import json
import os
import shutil
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import jat_core.plugins  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from filekit import snapshot  # noqa: E402
from toy_cli import EXTRA, load_plugins, main, task  # noqa: E402


class _DiesWhileWriting:
    """A file that writes half of the first data it is given, flushes it and SIGKILLs its process: a kill in the
    middle of writing a file."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[: max(1, len(data) // 2)])
        self._file.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._file.__exit__(*exc)

    def __iter__(self):
        return iter(self._file)


def _die_in_write(target: int, counter: str | None) -> None:
    """In this process, die while writing the ``target``-th file opened for writing with ``open`` (0: never);
    with ``counter``, write how many such files were opened there at exit."""
    import atexit
    import builtins

    real, opened = builtins.open, [0]

    def hooked(file, mode="r", *args, **kwargs):
        f = real(file, mode, *args, **kwargs)
        if isinstance(mode, str) and any(c in mode for c in "wax+"):
            opened[0] += 1
            if opened[0] == target:
                return _DiesWhileWriting(f)
        return f

    builtins.open = hooked
    if counter:
        atexit.register(lambda: real(counter, "w").write(str(opened[0])))


def _run_child(prog: str, argv: list[str], die_in_write: int = 0, counter: str | None = None) -> int:
    pid = os.fork()
    if pid == 0:  # the child: the command, its output discarded
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        code = 1
        try:
            _die_in_write(die_in_write, counter)
            code = main(prog, argv)
        finally:
            if counter:
                import atexit

                atexit._run_exitfuncs()
            os._exit(code)
    return pid


def _visible(root: str) -> list[str]:
    """Files a later command reads: everything but hidden names (temporaries)."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        out += [os.path.join(d, f) for f in files if not f.startswith(".")]
    return out


def _images_ok(root: str) -> None:
    from PIL import Image

    for path in _visible(root):
        if path.endswith((".png", ".gif")):
            with Image.open(path) as image:
                image.load()  # a cut-off PNG or GIF fails here


def check_collect(seed_dir: str, work: str) -> str:
    """``jat-train --data collected`` reads the task's data set: the old one, or the new one complete."""
    from jat_train.collection.store import remove_partial
    from jat_train.data.episodes import find_damage, local_path, open_episodes
    from jat_train.run_lock import LOCK_FILE

    path = local_path(task(), os.path.join(work, "collected"))
    old = snapshot(os.path.join(seed_dir, "collected", "toy-reach"))
    remove_partial(os.path.join(work, "collected"))  # what the next jat-collect does first
    assert find_damage(path) is None, find_damage(path)
    episodes = len(open_episodes(task(), os.path.join(work, "collected")).dataset)
    if snapshot(path) == old:
        return "old"
    assert episodes == 9, f"{episodes} train episodes: neither the old data set nor the new one"  # 10: 9 train
    left = [n for n in os.listdir(os.path.join(work, "collected")) if n.startswith(".") and n != LOCK_FILE]
    assert not left, left
    return "new"


def _classify(old: dict, now: dict) -> str:
    same = [k for k in now if k in old and now[k] == old[k]]
    return "old" if len(same) == len(now) == len(old) else "new" if not same else "mixed"


def check_eval(seed_dir: str, work: str) -> str:
    """``jat-report --eval eval`` reads results.json (and the plots): each old or new, whole."""
    from jat_train.evaluation.report import read_results

    results = read_results(os.path.join(work, "eval", "results.json"))
    assert results["seed"] in (0, 5), results["seed"]
    _images_ok(os.path.join(work, "eval"))
    visible = {os.path.relpath(p, work): open(p, "rb").read() for p in _visible(os.path.join(work, "eval"))}
    old = {os.path.join("eval", k): v for k, v in snapshot(os.path.join(seed_dir, "eval")).items()}
    return _classify(old, visible)


def check_report(seed_dir: str, work: str) -> str:
    """Someone reading the report folder: report.md whole (the old one or the new one, with ``--extra``), its
    plots whole."""
    text = open(os.path.join(work, "report", "report.md"), encoding="utf-8").read()
    assert text.startswith("# JAT run report") and text.endswith("\n"), text[-80:]
    _images_ok(os.path.join(work, "report"))
    return "new" if text.rstrip().endswith(EXTRA) else "old"


def _restore(seed_dir: str, work: str, folder: str = "") -> None:
    """``work`` as ``seed_dir`` again (only its ``folder``, which the command writes, when given)."""
    shutil.rmtree(os.path.join(work, folder), ignore_errors=True)
    shutil.copytree(os.path.join(seed_dir, folder), os.path.join(work, folder), symlinks=True)


def run(spec: dict) -> dict:
    torch.set_num_threads(1)
    jat_core.plugins.load_plugins = load_plugins
    check = globals()[f"check_{spec['check']}"]
    seed_dir, work = spec["seed_dir"], spec["work"]
    os.makedirs(work, exist_ok=True)
    _restore(seed_dir, work)
    os.chdir(work)
    counter = os.path.join(os.path.dirname(work), "opened-for-writing")
    start, wall = time.perf_counter(), time.time()
    _, status = os.waitpid(_run_child(spec["prog"], spec["argv"], counter=counter), 0)
    duration = time.perf_counter() - start
    assert os.waitstatus_to_exitcode(status) == 0, f"the complete run failed ({status})"
    with open(counter) as f:
        files = int(f.read())
    written = [os.stat(p).st_mtime - wall for p in _visible(spec["writes"])]
    writing = max(0.0, min(written) - 0.3)  # about when the command starts writing its files
    rng = np.random.default_rng(spec["seed"])
    # half the moments over the whole run, a sixth of them after its end (the check must tell the new files
    # from the old ones), half over its writes, which take a small part of it; then the middle of each file
    # opened for writing with ``open``, which random moments rarely hit
    delays = np.concatenate([rng.uniform(0.0, 1.2 * duration, spec["points"] // 2),
                             rng.uniform(writing, duration, spec["points"] - spec["points"] // 2)])
    outcomes, failures = [], []
    for how, when in [*(("after", d) for d in delays), *(("in file", k) for k in range(1, files + 1))]:
        _restore(seed_dir, work, spec["writes"])
        if how == "after":
            pid = _run_child(spec["prog"], spec["argv"])
            time.sleep(when)
            os.kill(pid, signal.SIGKILL)  # a no-op when it has already ended
        else:
            pid = _run_child(spec["prog"], spec["argv"], die_in_write=when)
        os.waitpid(pid, 0)
        try:
            outcomes.append(check(seed_dir, work))
        except Exception as exc:
            failures.append(f"killed {how} {when:.3f}: {type(exc).__name__}: {exc}")
    return {"duration": duration, "files": files, "outcomes": outcomes, "failures": failures}

if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(run(json.load(f))))
