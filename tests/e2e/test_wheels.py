"""The packages as a user gets them: wheels built from the sources, installed into a fresh virtual environment
(no system site-packages, no editable installs, no jat-envs), then a third-party domain plugin
(examples/jat-corridor) run through every console script: listed by ``jat-plugins``, checked by its own
conformance tests (``jat_core.testing``), collected, trained and evaluated.

Needs the package index that ``make setup`` uses (torch==2.13.0 first, then ``-c constraints.txt``). Everything
it writes, pip's cache included, stays under the test's temporary folder.
"""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("jat-core", "jat-codecs", "jat-train")
TORCH = "torch==2.13.0"
TASK = "corridor-walk"


def _run(cmd, *, env, cwd, timeout=900):
    done = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _clean_env(tmp: Path, bin_dir: Path | None = None) -> dict:
    """The test's environment without anything that points Python at the repository's sources."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "JAT_PLUGINS")}
    env.update(PIP_CACHE_DIR=str(tmp / "pip-cache"), HF_HOME=str(tmp / "hf"), MPLCONFIGDIR=str(tmp / "mpl"),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``(venv bin folder, env, work folder)``: a fresh venv holding the built wheels and the corridor plugin."""
    tmp = tmp_path_factory.mktemp("wheels")
    env = _clean_env(tmp)
    dist = tmp / "dist"
    for package in PACKAGES:
        _run([sys.executable, "-m", "build", "--outdir", dist, ROOT / "packages" / package], env=env, cwd=tmp)
    wheels = {p.name.split("-")[0]: p for p in dist.glob("*.whl")}
    assert sorted(wheels) == sorted(p.replace("-", "_") for p in PACKAGES), sorted(dist.iterdir())
    assert len(list(dist.glob("*.tar.gz"))) == len(PACKAGES)

    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(tmp / "venv")
    bin_dir = tmp / "venv" / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    env = _clean_env(tmp, bin_dir)
    _run([python, "-m", "pip", "install", "-q", TORCH], env=env, cwd=tmp)
    example = tmp / "jat-corridor"
    shutil.copytree(ROOT / "examples" / "jat-corridor", example)
    _run([python, "-m", "pip", "install", "-q", f"{wheels['jat_core']}[testing]", wheels["jat_codecs"],
          wheels["jat_train"], example, "-c", ROOT / "constraints.txt"], env=env, cwd=tmp)
    work = tmp / "work"
    work.mkdir()
    return bin_dir, env, work


@pytest.mark.slow
def test_wheels_install_without_the_repository(installed):
    bin_dir, env, work = installed
    code = "import jat_core, jat_codecs, jat_train; print(jat_core.__file__, jat_codecs.__file__, jat_train.__file__)"
    files = _run([bin_dir / "python", "-c", code], env=env, cwd=work).split()
    venv_dir = bin_dir.parent.resolve()
    assert all(Path(f).resolve().is_relative_to(venv_dir) for f in files), files
    missing = subprocess.run([bin_dir / "python", "-c", "import jat_envs"], env=env, cwd=work, capture_output=True)
    assert missing.returncode != 0, "jat-envs must not be installed for this test"
    listed = _run([bin_dir / "jat-plugins"], env=env, cwd=work)
    assert "corridor  [jat-corridor 0.1.0]" in listed and "codecs  [jat-codecs 0.1.0]" in listed, listed
    assert _run([bin_dir / "jat-plugins", "--tasks"], env=env, cwd=work).split() == [TASK]


@pytest.mark.slow
def test_plugin_passes_its_conformance_tests(installed):
    bin_dir, env, work = installed
    shutil.copy(ROOT / "examples" / "jat-corridor" / "test_corridor.py", work / "test_corridor.py")
    out = _run([bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_corridor.py"],
               env=env, cwd=work)
    assert " passed" in out and "failed" not in out, out


@pytest.mark.slow
def test_collect_train_evaluate_the_plugin_task(installed):
    bin_dir, env, work = installed
    _run([bin_dir / "jat-collect", "--tasks", TASK, "--episodes", "20", "--out", "data", "--seed", "0",
          "--no-progress"], env=env, cwd=work)
    assert (work / "data" / TASK).is_dir()
    _run([bin_dir / "jat-train", "--plugins", "corridor", "--tasks", TASK, "--data", "data", "--preset", "tiny",
          "--model-config", "num_layers=1", "--max-steps", "4", "--batch-size", "4", "--save-every", "4",
          "--output-dir", "run", "--num-threads", "1", "--cpu", "--no-progress"], env=env, cwd=work)
    assert (work / "run" / "checkpoint-4" / "config.json").is_file()
    _run([bin_dir / "jat-eval", "--model", "run/checkpoint-4", "--plugins", "corridor", "--tasks", TASK,
          "--episodes", "2", "--out", "eval", "--no-progress"], env=env, cwd=work)
    results = json.loads((work / "eval" / "results.json").read_text())
    assert TASK in results["tasks"], results.keys()
