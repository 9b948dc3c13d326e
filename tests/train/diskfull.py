"""A real full disk for the fault tests: run a console script on a small tmpfs that is nearly full.

``run_on_full_disk(seed, result, argv, free=N)`` starts a process in its own mount namespace (``unshare``: as
root, or as a user where user namespaces are allowed) that mounts a tmpfs, copies ``seed`` into it, fills it
up to ``N`` free bytes, runs ``toy_cli.py argv`` there (paths in ``argv`` relative to it), then copies what is
left (without the filler) to ``result``. The host never sees the mount. Tests that need it skip where
``unshare`` cannot mount (:func:`available`).

``python diskfull.py inside WORK SEED RESULT FREE ARGV...`` is the part that runs in the namespace, after the
mount.
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FILLER = ".filler"


def _unshare() -> list[str] | None:
    """The ``unshare`` command line that gives a private mount namespace here, or ``None``."""
    exe = shutil.which("unshare")
    if exe is None or sys.platform != "linux":
        return None
    for args in ([exe, "--mount"], [exe, "--user", "--map-root-user", "--mount"]):
        probe = subprocess.run([*args, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", "/tmp"],
                               capture_output=True)  # a private mount: the host's /tmp is not touched
        if probe.returncode == 0:
            return args
    return None


_ARGS: list = []


def available() -> bool:
    """Whether :func:`run_on_full_disk` can run here (cached)."""
    if not _ARGS:
        _ARGS.append(_unshare())
    return _ARGS[0] is not None


def run_on_full_disk(seed, work, result, argv: list[str], *, free: int, timeout: int = 300):
    """Run ``toy_cli.py argv`` in ``work`` (a tmpfs holding a copy of ``seed``, ``free`` bytes left) and copy
    the tmpfs's files to ``result``.

    Returns:
        The ``subprocess.CompletedProcess`` (``stderr`` as text).
    """
    assert available()
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(seed) for f in fs) + free + (8 << 20)
    os.makedirs(work, exist_ok=True)
    os.makedirs(result, exist_ok=True)
    script = (f'mount -t tmpfs -o size={size} tmpfs "$1" && shift && exec "{sys.executable}" '
              f'"{os.path.abspath(__file__)}" inside "$@"')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    return subprocess.run([*_ARGS[0], "sh", "-c", script, "sh", str(work), str(work), str(seed), str(result),
                           str(free), *argv], capture_output=True, text=True, env=env, timeout=timeout)


def _inside(work: str, seed: str, result: str, free: int, argv: list[str]) -> int:
    shutil.copytree(seed, work, dirs_exist_ok=True, symlinks=True)
    left = shutil.disk_usage(work).free - free
    with open(os.path.join(work, FILLER), "wb") as f:
        while left > 0:
            left -= f.write(b"\0" * min(left, 1 << 20))
    os.chdir(work)
    code = subprocess.run([sys.executable, os.path.join(HERE, "toy_cli.py"), *argv]).returncode
    os.remove(os.path.join(work, FILLER))
    shutil.copytree(work, result, dirs_exist_ok=True, symlinks=True)
    return code


if __name__ == "__main__" and sys.argv[1] == "inside":
    sys.exit(_inside(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6:]))
