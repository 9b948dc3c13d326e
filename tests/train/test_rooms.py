"""jat-train's rooms (data, training, collection, evaluation) import one another only through their interfaces.

Each room's ``__init__.py`` states, read here with ``ast`` (nothing is imported):

- ``INTERFACE``: the room's modules another room or a top-level module may import;
- ``__all__`` (the data room): the names another room may import from the package itself;
- ``MAY_IMPORT``: the rooms whose interfaces the room's modules may import.

``jat_train/__init__.py``'s ``SHARED`` names the top-level modules every room may import; they import no room.
Every ``import`` of every module is checked, those inside functions included.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import jat_train
import pytest

ROOT = Path(jat_train.__file__).parent


def _constants(path: Path) -> dict[str, object]:
    """The module-level constants ``INTERFACE``, ``MAY_IMPORT``, ``SHARED`` and ``__all__`` of the file at ``path``."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text()).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id in ("INTERFACE", "MAY_IMPORT", "SHARED", "__all__"):
            found[target.id] = tuple(ast.literal_eval(node.value))
    return found


def _imports(path: Path) -> list[tuple[int, str, tuple[str, ...]]]:
    """``(line, module, names)`` of every import of ``jat_train`` in the file at ``path`` (``names`` empty for
    ``import x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, tuple(alias.name for alias in node.names)))
    return [item for item in found if item[1].split(".")[0] == "jat_train"]


def _targets(root: Path, module: str, names: tuple[str, ...]) -> list[tuple[list[str], tuple[str, ...]]]:
    """What an import reaches, as ``(module path below jat_train, names taken from it)`` pairs: ``from jat_train.x
    import m`` with ``m`` a module file is an import of module ``x.m``."""
    parts = module.split(".")[1:]
    modules = [name for name in names if (root.joinpath(*parts, name + ".py")).exists()]
    rest = tuple(name for name in names if name not in modules)
    targets = [(parts + [name], ()) for name in modules]
    if rest or not names:
        targets.append((parts, rest))
    return targets


def violations(root: Path = ROOT) -> list[str]:
    """Every import under ``root`` (a ``jat_train`` source folder) that goes around a room's interface."""
    rooms = {p.parent.name: _constants(p) for p in sorted(root.glob("*/__init__.py"))}
    shared = _constants(root / "__init__.py")["SHARED"]
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        own = rel.parts[0] if len(rel.parts) > 1 else None  # the room of this module; None: top level
        top = None if own else rel.stem
        for line, module, names in _imports(path):
            for parts, taken in _targets(root, module, names):
                where = f"{rel}:{line}: {'.'.join(['jat_train'] + parts)}"
                if not parts or parts[0] == own:
                    continue
                if parts[0] not in rooms:  # a top-level module
                    if (own or top in shared) and parts[0] not in shared:
                        found.append(f"{where}: only the shared modules {shared} are open to rooms and shared modules")
                    continue
                room = rooms[parts[0]]
                if own and parts[0] not in rooms[own].get("MAY_IMPORT", ()):
                    found.append(f"{where}: room {own!r} may import only the rooms {rooms[own].get('MAY_IMPORT')}")
                elif top in shared:
                    found.append(f"{where}: shared module {top!r} imports a room")
                elif len(parts) > 1 and parts[1] not in room.get("INTERFACE", ()):
                    found.append(f"{where}: not in the interface of {parts[0]!r} ({room.get('INTERFACE')})")
                for name in taken:
                    if len(parts) == 1 and name not in room.get("__all__", ()):
                        found.append(f"{where}: {name!r} is not in the __all__ of {parts[0]!r}")
    return found


def test_rooms_import_one_another_only_through_their_interfaces():
    assert violations() == []


def test_each_room_states_what_it_owns_may_import_and_offers():
    rooms = sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))
    assert rooms == ["collection", "data", "evaluation", "training"]
    for name in rooms:
        init = ROOT / name / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "What it owns" in doc and "What it may import" in doc and "interface" in doc, name
        constants = _constants(init)
        assert set(constants.get("MAY_IMPORT", ())) <= set(rooms) - {name}, name
        for module in constants.get("INTERFACE", ()):
            assert (ROOT / name / f"{module}.py").exists(), (name, module)
        assert constants.get("INTERFACE") or constants.get("__all__"), f"room {name} offers nothing"
    assert all((ROOT / f"{module}.py").exists() for module in _constants(ROOT / "__init__.py")["SHARED"])


@pytest.mark.parametrize(
    "file, bad_import, message",
    [
        ("collection/schema.py", "from jat_train.data.sources import REWARDS", "not in the interface of 'data'"),
        ("evaluation/report.py", "from jat_train.training.checkpoint import save", "not in the interface of 'training'"),
        ("evaluation/report.py", "from jat_train.training import checkpoint", "not in the interface of 'training'"),
        ("training/trainer.py", "from jat_train.data import find_damage", "is not in the __all__ of 'data'"),
        ("data/windows.py", "from jat_train.training.trainer import train", "room 'data' may import only the rooms"),
        ("collection/store.py", "import jat_train.evaluation.evaluate", "room 'collection' may import only the rooms"),
        ("training/runlog.py", "from jat_train.generalist import main", "only the shared modules"),
        ("files.py", "from jat_train.data import REWARDS", "shared module 'files' imports a room"),
        ("generalist.py", "from jat_train.evaluation.scores import DEFAULT_REPS", "not in the interface of 'evaluation'"),
    ],
)
def test_an_import_around_an_interface_is_caught(tmp_path, file, bad_import, message):
    copy = tmp_path / "jat_train"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / file
    path.write_text(path.read_text() + f"\n\ndef _bad():\n    {bad_import}\n")
    found = violations(copy)
    assert len(found) == 1 and message in found[0] and found[0].startswith(file), found
