"""Console-script plumbing shared by every ``jat-*`` command, and ``jat-plugins``.

``jat-plugins`` lists installed plugins with their distribution, version, codecs and tasks.

Every console script (``jat-plugins``, ``jat-convert``, ``jat-collect``, ``jat-train``, ``jat-eval``,
``jat-report``) runs its body through :func:`run_console_script`, which turns errors into exit codes:

- a user error (:data:`USER_ERRORS`: ``ValueError`` and its subclasses such as ``DataError``, ``PluginError``
  and ``json.JSONDecodeError``; ``OSError`` such as a missing file; ``KeyError`` from a name lookup; and
  :class:`UserError`) prints ``PROG: error: MESSAGE`` on one line of stderr and exits 2, like argparse;
- ``KeyboardInterrupt`` prints ``PROG: interrupted`` and exits 130;
- anything else is a bug: one line naming the exception type, a hint, and exit 1;
- ``--debug`` anywhere on the command line, or ``JAT_DEBUG=1`` in the environment, prints the traceback too.

Paths. :func:`looks_like_local_path` decides whether a ``--model`` / ``SRC`` / ``--init-from`` / ``--tokenizer``
reference is a local path or a hub id; :func:`check_source` reports a local-looking reference that does not
exist as a missing path (it is never looked up on the hub); :func:`check_output_dir` refuses an output
directory that exists as a file (or sits below a file).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence

#: Environment variable that turns on tracebacks (any value but "", "0", "false", "no").
DEBUG_ENV = "JAT_DEBUG"
DEBUG_FLAG = "--debug"


class UserError(ValueError):
    """Bad input from the user (an argument, a file, a directory): reported in one line, exit status 2."""


#: Exceptions that mean "bad input", reported without a traceback and with exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError, UserError)


# -- errors -------------------------------------------------------------------------------------------------
def error_message(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a ``KeyError``'s own text, without the repr quotes)."""
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else exc
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " ".join(lines) or type(exc).__name__


def debug_requested(argv: Sequence[str] | None = None) -> bool:
    """``--debug`` is in ``argv`` (before a ``--``), or ``JAT_DEBUG`` is set to a true value."""
    if os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no"):
        return True
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" in args:
        args = args[: args.index("--")]
    return DEBUG_FLAG in args


def add_debug_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Declare ``--debug`` on a console script's parser (read by :func:`run_console_script`)."""
    parser.add_argument(
        DEBUG_FLAG, action="store_true", help=f"show the traceback of an error (or set {DEBUG_ENV}=1)"
    )
    return parser


def run_console_script(
    prog: str,
    body: Callable[[list[str] | None], int | None],
    argv: Sequence[str] | None = None,
    *,
    exit_codes: Mapping[type[BaseException], int] | None = None,
) -> int:
    """Run a console script's ``body(argv)`` and turn what it raises into one line on stderr and an exit code.

    Args:
        prog: the script's name, the prefix of every message (``"jat-train"``).
        body: the script; returns its exit code (``None``: 0). argparse's ``SystemExit`` passes through.
        argv: the arguments (``None``: ``sys.argv[1:]``).
        exit_codes: exceptions with an exit code of their own (checked first, e.g. ``{NonFiniteLossError: 1}``);
            reported in one line like user errors.

    Returns:
        The exit code: the body's, 2 for a user error (:data:`USER_ERRORS`), 130 when interrupted, 1 for any
        other exception (a bug: the line says how to see the traceback).
    """
    argv = None if argv is None else list(argv)
    debug = debug_requested(argv)
    try:
        code = body(argv)
        return 0 if code is None else int(code)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        for kind, code in (exit_codes or {}).items():
            if isinstance(exc, kind):
                print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
                return code
        if isinstance(exc, USER_ERRORS):
            print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
            return 2
        hint = "" if debug else f" (unexpected; rerun with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback)"
        print(f"{prog}: error: {type(exc).__name__}: {error_message(exc)}{hint}", file=sys.stderr)
        return 1


# -- paths --------------------------------------------------------------------------------------------------
def looks_like_local_path(ref: str) -> bool:
    """Whether a model / tokenizer reference names a local path rather than a hub id.

    The rule: a hub id is ``name`` or ``owner/name`` (at most one ``/``, no leading ``.``, ``/`` or ``~``, no
    ``\\``). Anything else is a local path: ``./x``, ``../x``, ``/x``, ``~/x``, ``a/b/c``, ``C:\\x``. So is any
    reference that exists on disk, and an ``owner/name`` whose ``owner`` is an existing local directory (a
    path partly there, such as ``runs/typo``).
    """
    if not ref:
        return True
    if ref.startswith((".", "/", "~", os.sep)) or (os.altsep and ref.startswith(os.altsep)):
        return True
    if "\\" in ref or ref.count("/") > 1 or (os.sep != "/" and os.sep in ref):
        return True
    if os.path.lexists(ref):
        return True
    head = ref.split("/", 1)[0]
    return "/" in ref and os.path.isdir(head)


def check_source(ref: str, field: str, *, kind: str = "directory") -> str:
    """Check a ``--model`` / ``SRC`` / ``--init-from`` reference before anything is loaded from it.

    Args:
        ref: the reference, a local path or a hub id (see :func:`looks_like_local_path`).
        field: the argument's name, for the message (``"--model"``).
        kind: ``"directory"`` (a local reference must be a directory) or ``"path"`` (file or directory).

    Returns:
        ``ref``, with ``~`` expanded when it is local.

    Raises:
        UserError: a local-looking reference that does not exist (it is not looked up on the hub), or a file
            where a directory is expected.
    """
    if not looks_like_local_path(ref):
        return ref
    path = os.path.expanduser(ref)
    if not os.path.exists(path):
        raise UserError(f"{field}: the local {kind} {ref!r} does not exist (hub ids look like owner/name)")
    if kind == "directory" and not os.path.isdir(path):
        raise UserError(f"{field}: expected a directory, {ref!r} is a file")
    return path


def check_output_dir(path: str, field: str) -> str:
    """Refuse an output directory that exists as a file, or that would sit below a file.

    Returns:
        ``path`` (nothing is created).

    Raises:
        UserError: naming ``field`` and the file in the way.
    """
    if not path:
        raise UserError(f"{field}: expected a directory, got an empty path")
    current = os.path.abspath(os.path.expanduser(path))
    while True:
        if os.path.exists(current):
            if not os.path.isdir(current):
                what = "is a file" if current == os.path.abspath(path) else f"is below the file {current!r}"
                raise UserError(f"{field}: expected a directory, {path!r} {what}")
            return path
        parent = os.path.dirname(current)
        if parent == current:
            return path
        current = parent


# -- jat-plugins --------------------------------------------------------------------------------------------
def _plugins(argv: list[str] | None) -> int:
    from jat_core.plugins import load_plugins

    parser = argparse.ArgumentParser(
        prog="jat-plugins", description="List installed plugins with their distribution, version, codecs and tasks."
    )
    parser.add_argument("--tasks", action="store_true", help="print one task name per line and nothing else")
    parser.add_argument("--plugins", default=None, help="comma-separated plugin names (default: all, or $JAT_PLUGINS)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    registry = load_plugins(args.plugins)
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


def plugins_main(argv: list[str] | None = None) -> int:
    """Entry point of ``jat-plugins``. Returns the process exit code."""
    return run_console_script("jat-plugins", _plugins, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(plugins_main())
