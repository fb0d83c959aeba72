"""Source fingerprints in cache keys: a cache written by other code is never read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import kgfuse.kg as kg_pkg
import kgfuse.kg.preprocess as preprocess_mod
from kgfuse.fingerprint import source_fingerprint, tree_fingerprint
from kgfuse.kg import EntityLinker, SubgraphRetriever
from kgfuse.kg.preprocess import PreprocessedDataset, cache_key, examples_hash, preprocess_dataset

EXAMPLES = [
    {"id": "q1", "question": "Where would you put a plate after drying it?", "choices": ["cupboard", "oven"]},
    {"id": "q2", "question": "What do people drink when thirsty?", "choices": ["water", "sand"]},
]


@pytest.fixture()
def kg_copy(tmp_path):
    """A copy of the installed kgfuse.kg source, compiled files and caches included."""
    dst = tmp_path / "kg"
    shutil.copytree(kg_pkg.__path__[0], dst)
    return dst


def test_copy_of_the_package_has_its_fingerprint(kg_copy):
    fp = source_fingerprint("kgfuse.kg")
    assert len(fp) == 32 and int(fp, 16) >= 0
    assert tree_fingerprint([kg_copy]) == fp
    assert source_fingerprint("kgfuse.kg", "kgfuse.encoders") != fp


def test_any_source_edit_changes_it_and_nothing_else_does(kg_copy):
    before = tree_fingerprint([kg_copy])
    (kg_copy / "__pycache__").mkdir(exist_ok=True)
    (kg_copy / "__pycache__" / "linking.cpython-311.pyc").write_bytes(b"\0stale")
    (kg_copy / "presets" / "extra.json").write_text("{}")
    (kg_copy / "retrieval" / "_other.so").write_bytes(b"\x7fELF")
    (kg_copy / "retrieval" / "_pathsearch.c").write_text("/* the same search */\n")
    assert tree_fingerprint([kg_copy]) == before  # bytecode, data, binaries and C sources do not count

    linking = kg_copy / "linking.py"
    linking.write_text(linking.read_text() + "\n# one more comment\n")
    edited = tree_fingerprint([kg_copy])
    assert edited != before
    (kg_copy / "retrieval" / "base.py").write_text((kg_copy / "retrieval" / "base.py").read_text() + "\n")
    assert tree_fingerprint([kg_copy]) != edited  # a sub-package's file counts too
    # the same bytes under another name are another tree
    moved = tree_fingerprint([kg_copy])
    (kg_copy / "verbalize.py").rename(kg_copy / "verbalise.py")
    assert tree_fingerprint([kg_copy]) != moved


def test_a_module_counts_with_its_own_file(kg_copy):
    fp = source_fingerprint("kgfuse.kg.embeddings")
    assert tree_fingerprint([kg_copy / "embeddings.py"]) == fp != source_fingerprint("kgfuse.kg")
    (kg_copy / "linking.py").write_text("# another linker\n")
    assert tree_fingerprint([kg_copy / "embeddings.py"]) == fp
    with pytest.raises(ValueError, match="'sys' has no source file"):
        source_fingerprint("sys")


def test_same_in_another_process():
    code = "from kgfuse.fingerprint import source_fingerprint as f; print(f('kgfuse.kg'))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == source_fingerprint("kgfuse.kg")


def test_caches_of_other_code_are_not_read(sample_kg, tmp_path, monkeypatch):
    linker = EntityLinker(sample_kg, pattern_cache=tmp_path / "patterns")
    sr = SubgraphRetriever(sample_kg)
    pre = preprocess_dataset(EXAMPLES, sample_kg, linker, sr, tmp_path, num_workers=1, progress=False)
    assert pre.meta["code"] == source_fingerprint("kgfuse.kg")
    assert pre.path.name == cache_key(sample_kg.hash, linker.config, sr.config, examples_hash(EXAMPLES))
    assert preprocess_dataset(EXAMPLES, sample_kg, linker, sr, tmp_path, num_workers=1, progress=False).cache_hit
    pattern_file = linker.pattern_cache_path

    # the same inputs and settings under other kgfuse.kg source: new keys, rebuilt, the old cache kept
    monkeypatch.setattr(preprocess_mod, "source_fingerprint", lambda *packages: "0" * 32)
    monkeypatch.setattr("kgfuse.kg.linking.source_fingerprint", lambda *packages: "0" * 32)
    other = preprocess_dataset(EXAMPLES, sample_kg, linker, sr, tmp_path, num_workers=1, progress=False)
    assert not other.cache_hit and other.path != pre.path and other.meta["code"] == "0" * 32
    assert EntityLinker(sample_kg, pattern_cache=tmp_path / "patterns").pattern_cache_path != pattern_file
    assert PreprocessedDataset.load(pre.path, graph=sample_kg).meta["code"] == source_fingerprint("kgfuse.kg")
    for i in range(len(EXAMPLES)):  # what the old code's cache holds is the same here
        for j in range(2):
            a, b = pre[i][j][1], other[i][j][1]
            assert a.concept_ids.tolist() == b.concept_ids.tolist()


def test_kge_key_follows_its_module_only(monkeypatch):
    import kgfuse.fingerprint as fingerprint_mod
    from kgfuse.kg.embeddings import KGEConfig

    cfg = KGEConfig(model="transe", dim=8, epochs=1)
    key = cfg.key("g" * 64)
    real = fingerprint_mod.source_fingerprint
    monkeypatch.setattr(fingerprint_mod, "source_fingerprint",
                        lambda *names: "0" * 32 if names == ("kgfuse.kg.embeddings",) else real(*names))
    assert cfg.key("g" * 64) != key
    monkeypatch.setattr(fingerprint_mod, "source_fingerprint",
                        lambda *names: "0" * 32 if names == ("kgfuse.kg",) else real(*names))
    assert cfg.key("g" * 64) == key  # an edit elsewhere in kgfuse.kg keeps a trained table
