"""The documentation: the site builds with ``mkdocs build --strict`` (what ``make docs`` runs), its generated
pages hold every console script, and the README's links lead to files that exist."""

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]


def _console_scripts() -> list[str]:
    return [
        script
        for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml"))
        for script in tomllib.loads(pyproject.read_text())["project"].get("scripts", {})
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_strict_build_writes_every_page(site):
    for page in ("index.html", "getting-started/index.html", "concepts/index.html", "benchmarks/index.html",
                 "troubleshooting/index.html", "reference/api/index.html", "guides/domain-plugin/index.html"):
        assert (site / page).is_file(), page


def test_cli_reference_holds_every_console_script(site):
    page = (site / "reference" / "cli" / "index.html").read_text()
    scripts = _console_scripts()
    assert len(scripts) >= 6
    for script in scripts:
        assert f'id="{script}"' in page, f"{script} has no section on the command-line page"
        assert f"usage: {script}" in page, f"{script}'s --help is not on the command-line page"


def test_help_texts_hold_no_timings(site):
    """Help texts say what an option does; how fast it makes things is in docs/benchmarks.md."""
    page = html.unescape(re.sub(r"<[^>]+>", "", (site / "reference" / "cli" / "index.html").read_text()))
    timings = re.findall(r"\b\d+(?:\.\d+)?\s?(?:ms|seconds|minutes)\b|\b\d+(?:\.\d+)?\s?[x%] (?:faster|slower)\b", page)
    assert not timings, timings


def test_domain_plugin_guide_shows_the_example_files(site):
    page = (site / "guides" / "domain-plugin" / "index.html").read_text()
    assert "jat_register_tasks" in page and "DomainConformance" in page


def test_readme_links_exist():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    assert local, "the README links no file of the repository"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links missing files: {missing}"


def test_readme_reaches_every_docs_page_in_two_clicks():
    nav = re.findall(r":\s+([\w/-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    readme = (ROOT / "README.md").read_text()
    index = (ROOT / "docs" / "index.md").read_text()
    linked = {t.removeprefix("docs/") for t in re.findall(r"\]\((docs/[^)#]+)", readme)}
    linked |= set(re.findall(r"\]\(([^)#:]+\.md)", index)) if "index.md" in linked else set()
    assert set(nav) - linked == set(), f"pages more than two clicks from the README: {sorted(set(nav) - linked)}"


def test_nothing_points_outside_the_repository():
    """The facts the code relies on live in docs/; no tracked file cites a document the repository does not hold."""
    outside = ("REFERENCE" + ".md", "../" + "shared", "work/" + "shared/")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    found = []
    for name in tracked.stdout.split("\n"):
        path = ROOT / name
        if not name or path.suffix in {".png", ".safetensors", ".gif"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        found += [f"{name}: {word}" for word in outside if word in text]
    assert not found, found
