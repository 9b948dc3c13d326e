"""Each package's declared dependencies match what its source imports (deptry on ``packages/<name>/src``).

deptry fails on an import of an undeclared package (DEP001), a declared dependency never imported (DEP002), an
import of a package that is only a transitive dependency (DEP003) or of a dev-only one (DEP004). Each package's
``[tool.deptry]`` section in its pyproject.toml lists the few deliberate exceptions, with the reason for each.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["jat-core", "jat-codecs", "jat-envs", "jat-train"]


def _deptry() -> list[str]:
    """deptry of this interpreter's environment (it maps import names to the distributions installed here)."""
    if importlib.util.find_spec("deptry") is None:
        pytest.fail("deptry is not installed: it is in the root `dev` extra (make setup installs it)")
    exe = Path(sys.executable).with_name("deptry")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "deptry"]


@pytest.mark.parametrize("package", PACKAGES)
def test_declared_dependencies_match_imports(package):
    package_dir = ROOT / "packages" / package
    result = subprocess.run(
        [*_deptry(), "--no-ansi", "--config", "pyproject.toml", "src"],
        cwd=package_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"{package}: declared dependencies and imports differ (fix packages/{package}/pyproject.toml, or its "
        f"[tool.deptry] section for a deliberate exception):\n{result.stdout}{result.stderr}"
    )
