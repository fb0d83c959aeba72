"""Packaging: the folder layout installs as one `kgfuse` package, and importing it is light."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "spacy", "transformers", "torch_geometric", "networkx", "accelerate")


def test_import_loads_nothing_heavy():
    code = (
        "import sys, kgfuse, kgfuse.kg, kgfuse.encoders, kgfuse.fusion, kgfuse.tasks\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing kgfuse loaded: {out.stdout.strip()}"


def test_subpackages_map_onto_folders():
    import kgfuse.encoders
    import kgfuse.fusion
    import kgfuse.kg
    import kgfuse.tasks

    for mod, folder in ((kgfuse.kg, "kg"), (kgfuse.encoders, "encoders"), (kgfuse.fusion, "fusion"), (kgfuse.tasks, "tasks")):
        assert Path(mod.__file__).resolve().parent == ROOT / folder


def test_wheel_contains_only_kgfuse(tmp_path):
    pytest.importorskip("setuptools")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    if res.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{res.stderr[-2000:]}")
    (wheel,) = tmp_path.glob("kgfuse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert all(t == "kgfuse" or t.startswith("kgfuse-") for t in tops), tops
    for sub in ("kg", "encoders", "fusion", "tasks"):
        assert f"kgfuse/{sub}/__init__.py" in names
    assert "kgfuse/kg/graph.py" in names
    # the bundled sample data travels with the package
    assert any(n.startswith("kgfuse/data/") and n.endswith(".csv") for n in names), "sample data missing from wheel"
    # built from a git checkout, the wheel records its commit, and the installed copy reports it
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if git.returncode != 0:
        assert "kgfuse/_source.json" not in names
        return
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    expected = git.stdout.strip() + ("-dirty" if dirty else "")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from kgfuse.tasks import provenance as p; "
            "print(p.__file__); print(p.source_commit())")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path / "site")], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    where, commit = out.stdout.split()
    assert Path(where).is_relative_to(tmp_path / "site") and commit == expected


def test_spacy_finds_the_linker_component_through_its_entry_point(tmp_path):
    """A user's spaCy pipeline can add "kgfuse_linker" without importing kgfuse first."""
    from kgfuse.kg import GraphBuilder

    b = GraphBuilder()
    b.add("plate", "atlocation", "cupboard")
    b.build().save(tmp_path / "g")
    code = (
        "import spacy, sys\n"
        "nlp = spacy.blank('en')\n"
        f"nlp.add_pipe('kgfuse_linker', config={{'graph_path': {str(tmp_path / 'g')!r}}})\n"
        "doc = nlp('Put the plate in the cupboard.')\n"
        "print(sorted(s.label_ for s in doc.spans['kgfuse_concepts']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['cupboard', 'plate']"
