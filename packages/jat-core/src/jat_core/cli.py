"""``jat-plugins``: list installed plugins with their distribution, version, codecs and tasks."""

from __future__ import annotations

import argparse
import sys

from jat_core.plugins import load_plugins


def plugins_main(argv: list[str] | None = None) -> int:
    """Entry point of ``jat-plugins``. Returns the process exit code."""
    parser = argparse.ArgumentParser(prog="jat-plugins", description=__doc__)
    parser.add_argument("--tasks", action="store_true", help="print one task name per line and nothing else")
    parser.add_argument("--plugins", default=None, help="comma-separated plugin names (default: all, or $JAT_PLUGINS)")
    args = parser.parse_args(argv)
    try:
        registry = load_plugins(args.plugins)
    except Exception as exc:
        print(f"jat-plugins: {exc}", file=sys.stderr)
        return 2
    if args.tasks:
        for name in registry.tasks:
            print(name)
        return 0
    for name, info in registry.plugins.items():
        codecs = [c for c, owner in registry.codec_owner.items() if owner == name]
        tasks = [t for t, owner in registry.task_owner.items() if owner == name]
        dist = f"{info.distribution} {info.version}" if info.distribution else "(not installed)"
        print(f"{name}  [{dist}]  {info.value}")
        if codecs:
            print(f"  codecs ({len(codecs)}): {', '.join(codecs)}")
        if tasks:
            shown = ", ".join(tasks[:8]) + (f", ... (+{len(tasks) - 8})" if len(tasks) > 8 else "")
            print(f"  tasks ({len(tasks)}): {shown}")
    print(f"{len(registry.plugins)} plugins, {len(registry.codecs)} codecs, {len(registry.tasks)} tasks")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(plugins_main())
