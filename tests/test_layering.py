"""The sans-IO cores import no I/O, clock or randomness; erl_interop never imports pyra_dist."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN_IN_CORES = {"asyncio", "socket", "os", "time", "random", "threading", "selectors", "subprocess"}

# Packages (or modules) that must stay sans-IO. Entries that do not exist yet are ignored.
SANS_IO = [
    "pyra_dist/core",
    "erl_interop/term",
    "erl_interop/epmd/protocol.py",
    "erl_interop/dist/handshake.py",
    "erl_interop/dist/framing.py",
    "erl_interop/dist/connection.py",
    "erl_interop/dist/control.py",
    "erl_interop/dist/fragments.py",
]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _files(rel: str) -> list[Path]:
    p = ROOT / rel
    if p.is_dir():
        return sorted(p.rglob("*.py"))
    return [p] if p.exists() else []


def test_sans_io_cores_import_no_io_clock_or_randomness() -> None:
    offenders = {
        str(f.relative_to(ROOT)): sorted(_imports(f) & FORBIDDEN_IN_CORES)
        for rel in SANS_IO
        for f in _files(rel)
        if _imports(f) & FORBIDDEN_IN_CORES
    }
    assert offenders == {}


def test_erl_interop_never_imports_pyra_dist() -> None:
    offenders = [str(f) for f in (ROOT / "erl_interop").rglob("*.py") if "pyra_dist" in _imports(f)]
    assert offenders == []
