"""The example domain plugin (examples/jat-corridor, shown in docs/guides/domain-plugin.md), run for real:
installed through an entry point, its task appears and its own conformance tests pass.

The docs include these files, so the guide cannot drift from what works.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jat-corridor"


@pytest.fixture()
def installed_example(tmp_path):
    """Install the example the way pip does for an entry point: a module plus a dist-info with entry_points.txt."""
    import tomllib

    meta = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    module_src = (EXAMPLE / "jat_corridor.py").read_text()
    ((ep_name, ep_value),) = meta["project"]["entry-points"]["jat"].items()
    (tmp_path / f"{ep_value}.py").write_text(module_src)
    dist = tmp_path / f"{meta['project']['name'].replace('-', '_')}-{meta['project']['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {meta['project']['name']}\nVersion: {meta['project']['version']}\n"
    )
    (dist / "entry_points.txt").write_text(f"[jat]\n{ep_name} = {ep_value}\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.pop("JAT_PLUGINS", None)
    return tmp_path, env, ep_name


def test_example_plugin_tasks_appear(installed_example):
    path, env, name = installed_example
    listed = subprocess.run(
        [sys.executable, "-m", "jat_core.cli"], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert f"{name}  [jat-corridor 0.1.0]" in listed
    tasks = subprocess.run(
        [sys.executable, "-m", "jat_core.cli", "--tasks", "--plugins", name],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.split()
    assert tasks == ["corridor-walk"]


def test_example_plugin_passes_conformance_kit(installed_example):
    path, env, _ = installed_example
    test_src = (EXAMPLE / "test_corridor.py").read_text()
    (path / "test_corridor_conformance.py").write_text(test_src)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path / "test_corridor_conformance.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    from jat_core.testing import DomainConformance

    checks = [name for name in dir(DomainConformance) if name.startswith("test_")]  # every check of the kit
    assert f"{len(checks)} passed" in out.stdout
