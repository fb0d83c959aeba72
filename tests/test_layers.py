"""The layers only import downward: kg → encoders → fusion → tasks.

Every import of every module is checked, at module level and inside functions alike
(``import kgfuse.x``, ``from kgfuse.x import y`` and relative imports), so a layer can be used
without the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"kg": 0, "encoders": 1, "fusion": 2, "tasks": 3}


def imported_modules(path: Path, layer: str) -> list[tuple[int, str]]:
    """``(line, absolute kgfuse module)`` for every import in the file."""
    parts = ["kgfuse", layer, *path.relative_to(ROOT / layer).with_suffix("").parts]
    package = parts[:-1] if path.name != "__init__.py" else parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
                names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
                out += [(node.lineno, n) for n in names]
            else:
                out.append((node.lineno, node.module or ""))
    return out


def upward_imports() -> list[str]:
    bad = []
    for layer, rank in LAYERS.items():
        for f in sorted((ROOT / layer).rglob("*.py")):
            for line, mod in imported_modules(f, layer):
                p = mod.split(".")
                if len(p) >= 2 and p[0] == "kgfuse" and p[1] in LAYERS and LAYERS[p[1]] > rank:
                    bad.append(f"{f.relative_to(ROOT)}:{line} imports {mod}")
    return bad


def test_no_upward_imports():
    assert upward_imports() == []


def test_the_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    layer = tmp_path / "kg"
    layer.mkdir()
    (layer / "bad.py").write_text("def f():\n    from ..tasks.pipeline import build_run\n    import kgfuse.fusion\n")
    (layer / "ok.py").write_text("from .graph import KnowledgeGraph\nimport numpy\n")
    for other in ("encoders", "fusion", "tasks"):
        (tmp_path / other).mkdir()
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert upward_imports() == ["kg/bad.py:2 imports kgfuse.tasks.pipeline", "kg/bad.py:3 imports kgfuse.fusion"]
