"""Tests of kgfuse.kg.preprocess: parallel preprocessing, cache hit and rebuild, reading
without spaCy."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("spacy")

from kgfuse.kg import GraphBuilder  # noqa: E402
from kgfuse.kg.linking import EntityLinker, Grounding  # noqa: E402
import kgfuse.kg.preprocess as preprocess_mod  # noqa: E402
from kgfuse.kg.preprocess import (  # noqa: E402
    FORMAT_VERSION,
    CacheFormatError,
    PreprocessedDataset,
    cache_key,
    examples_hash,
    preprocess_dataset,
)
from kgfuse.kg.retrieval import KGData, PathRetriever, SubgraphRetriever  # noqa: E402

TRIPLES = [
    ("plate", "AtLocation", "cupboard"),
    ("kitchen", "HasA", "cupboard"),
    ("plate", "AtLocation", "kitchen"),
    ("dish", "RelatedTo", "plate"),
    ("dish", "AtLocation", "cupboard"),
    ("child", "AtLocation", "school"),
    ("school", "HasA", "classroom"),
    ("running_shoe", "UsedFor", "run"),
    ("child", "CapableOf", "run"),
]


@dataclass
class Ex:
    id: str
    question: str
    choices: list


EXAMPLES = [
    Ex("a", "Where do you keep a clean plate?", ["cupboard", "kitchen", "school"]),
    Ex("b", "Where do children learn?", ["school", "classroom", "running shoes"]),
    Ex("c", "Nothing matches here?", ["xyzzy", "plate", "zzz"]),
    Ex("d", "What do children wear to run?", ["running shoes", "dish", "cupboard"]),
    Ex("e", "Why?", ["because", "no", "dish"]),
]


def build(extra=()):
    b = GraphBuilder()
    for h, r, t in TRIPLES + list(extra):
        b.add(h, r, t)
    return b.build()


@pytest.fixture(scope="module")
def kg():
    return build()


@pytest.fixture(scope="module")
def linker(kg):
    return EntityLinker(kg)


def test_preprocess_matches_direct_calls_and_caches(kg, linker, tmp_path):
    sr = SubgraphRetriever(kg, max_nodes=50)
    pre = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=2, chunk_size=2, progress=False)
    assert not pre.cache_hit and len(pre) == len(EXAMPLES) and pre.num_statements == 15
    for i, ex in enumerate(EXAMPLES):
        row = pre[i]
        assert len(row) == len(ex.choices)
        for j, c in enumerate(ex.choices):
            g, d = row[j]
            ref_g = linker.ground(ex.question, c)
            ref_d = sr(ref_g)
            assert g == ref_g
            assert isinstance(d, KGData)
            for k in ("concept_ids", "node_type", "edge_index", "edge_type"):
                assert d[k].tolist() == ref_d[k].tolist(), (i, j, k)
    # on disk: JSON + .npy only (no pickle)
    files = {p.suffix for p in pre.path.rglob("*") if p.is_file()}
    assert files <= {".json", ".npy"}
    meta = json.loads((pre.path / "meta.json").read_text())
    assert meta["stats"]["statements"] == 15 and meta["graph_hash"] == kg.hash
    for p in (pre.path / "arrays").glob("*.npy"):
        np.load(p, allow_pickle=False)

    again = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=2, progress=False)
    assert again.cache_hit and again.path == pre.path
    assert again[3][0][1].concept_ids.tolist() == pre[3][0][1].concept_ids.tolist()


def test_rebuild_on_any_change(kg, linker, tmp_path):
    sr = SubgraphRetriever(kg, max_nodes=50)
    base = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=1, progress=False)
    # retriever config
    r2 = preprocess_dataset(EXAMPLES, kg, linker, SubgraphRetriever(kg, max_nodes=3), tmp_path, num_workers=1, progress=False)
    # linker config
    r3 = preprocess_dataset(EXAMPLES, kg, EntityLinker(kg, max_words=2), sr, tmp_path, num_workers=1, progress=False)
    # dataset
    changed = EXAMPLES[:-1] + [Ex("e", "Why not?", ["because", "no", "dish"])]
    r4 = preprocess_dataset(changed, kg, linker, sr, tmp_path, num_workers=1, progress=False)
    # graph
    kg2 = build([("plate", "IsA", "dish")])
    r5 = preprocess_dataset(EXAMPLES, kg2, EntityLinker(kg2), SubgraphRetriever(kg2, max_nodes=50), tmp_path,
                            num_workers=1, progress=False)
    # explicit dataset hash (of a file)
    r6 = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, dataset_hash="0" * 64, num_workers=1, progress=False)
    paths = {base.path, r2.path, r3.path, r4.path, r5.path, r6.path}
    assert len(paths) == 6
    assert not any(r.cache_hit for r in (r2, r3, r4, r5, r6))
    assert r4[4][0][0] == linker.ground("Why not?", "because")
    assert examples_hash(changed) != examples_hash(EXAMPLES)
    # edge between plate and dish appears only in the new graph's subgraph
    g, d = r5[0][0]
    assert d.edge_index.shape[1] > base[0][0][1].edge_index.shape[1]
    assert preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=1, progress=False).cache_hit
    assert not preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=1, progress=False, rebuild=True).cache_hit


def test_paths_and_groundings_only(kg, linker, tmp_path):
    pr = PathRetriever(kg, max_hops=2, max_paths=4)
    pre = preprocess_dataset(EXAMPLES, kg, linker, pr, tmp_path, num_workers=2, progress=False)
    g, d = pre[0][0]
    ref = pr(g)
    for k in ("paths", "path_rels", "path_len", "edge_index"):
        assert d[k].tolist() == ref[k].tolist()
    assert pre.meta["has_paths"]

    only = preprocess_dataset(EXAMPLES, kg, linker, None, tmp_path, num_workers=1, progress=False)
    assert not only.has_subgraphs and only[0][0][1] is None
    assert only[0][0][0] == g
    view = PreprocessedDataset.load(only.path).with_retriever(pr)
    assert view[0][0][1].paths.tolist() == ref.paths.tolist()
    with pytest.raises(ValueError, match="graph"):
        only.with_retriever(PathRetriever(build([("a", "R", "b")])))


def test_empty_statement_and_bad_input(kg, linker, tmp_path):
    sr = SubgraphRetriever(kg)
    pre = preprocess_dataset([Ex("z", "Why?", ["qqq"])], kg, linker, sr, tmp_path, num_workers=1, progress=False)
    g, d = pre[0][0]
    assert g == Grounding([], [], []) and d.num_nodes == 0 and d.edge_index.shape == (2, 0)
    assert pre.meta["stats"]["no_answer_concept"] == 1
    with pytest.raises(ValueError, match=r"example 1 \(id 'y'\): field 'question'"):
        preprocess_dataset([Ex("x", "q", ["a"]), Ex("y", None, ["a"])], kg, linker, sr, tmp_path, progress=False)
    with pytest.raises(ValueError, match="example 0: missing field 'choices'"):
        preprocess_dataset([{"id": 1, "question": "q"}], kg, linker, sr, tmp_path, progress=False)


def test_load_without_spacy(kg, linker, tmp_path):
    """The GPU-side flow: only the cache folder and the compiled graph travel; edges are
    rebuilt there without spaCy."""
    sr = SubgraphRetriever(kg)
    pre = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path / "cache", num_workers=1, progress=False)
    kg.save(tmp_path / "graph")
    code = (
        "import sys\n"
        "from kgfuse.kg import KnowledgeGraph\n"
        "from kgfuse.kg.preprocess import PreprocessedDataset\n"
        f"pre = PreprocessedDataset.load({str(pre.path)!r}, graph=KnowledgeGraph.load({str(tmp_path / 'graph')!r}))\n"
        "g, d = pre[1][0]\n"
        "assert 'spacy' not in sys.modules, 'spacy imported'\n"
        "print(len(pre), d.num_nodes, d.edge_index.t().tolist(), d.edge_type.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ref = sr(linker.ground(EXAMPLES[1].question, EXAMPLES[1].choices[0]))
    assert ref.edge_index.shape[1] > 0
    expected = f"{len(EXAMPLES)} {ref.num_nodes} {ref.edge_index.t().tolist()} {ref.edge_type.tolist()}"
    assert out.stdout.strip() == expected


def test_cache_stores_node_sets_only(kg, linker, tmp_path):
    for r, mode in ((SubgraphRetriever(kg), "induced"), (PathRetriever(kg, max_hops=3), "paths"),
                    (PathRetriever(kg, max_hops=2, edges="induced"), "induced")):
        pre = preprocess_dataset(EXAMPLES, kg, linker, r, tmp_path, num_workers=1, progress=False)
        assert pre.meta["edges"] == mode and pre.meta["format"] == FORMAT_VERSION
        stored = {p.stem for p in (pre.path / "arrays").glob("*.npy")}
        assert not stored & {"edge_index", "edge_type", "edge_ptr"}
        if mode == "paths" or r.config["class"] == "PathRetriever":  # compact dtypes on disk
            assert np.load(pre.path / "arrays" / "paths.npy").dtype == np.int16
            assert np.load(pre.path / "arrays" / "path_rels.npy").dtype == np.int8
        total = 0
        for i, ex in enumerate(EXAMPLES):
            for j, c in enumerate(ex.choices):
                ref = r(linker.ground(ex.question, c))
                _, d = pre[i][j]
                total += d.edge_index.shape[1]
                assert d.num_nodes == ref.num_nodes and sorted(d.keys()) == sorted(ref.keys())
                for k in ref.keys():
                    if k != "num_nodes":
                        assert d[k].tolist() == ref[k].tolist(), (mode, i, j, k)
        assert total > 0
        # a reader without the graph: paths caches need none, induced ones say what to pass
        bare = PreprocessedDataset.load(pre.path)
        if mode == "paths":
            assert bare[0][0][1].edge_index.tolist() == pre[0][0][1].edge_index.tolist()
        else:
            with pytest.raises(ValueError, match="graph=KnowledgeGraph.load"):
                bare[0]
            assert bare.node_arrays(0, 0)["concept_ids"].tolist() == pre[0][0][1].concept_ids.tolist()
    with pytest.raises(ValueError, match="made on graph"):
        PreprocessedDataset.load(pre.path, graph=build([("a", "R", "b")]))


class EdgesOnly:
    """A third-party retriever: only ``retrieve_arrays`` and ``config`` (edges get stored)."""

    def __init__(self, inner):
        self.inner, self.graph, self.config = inner, inner.graph, {"class": "EdgesOnly", **inner.config}

    def retrieve_arrays(self, g):
        return self.inner.retrieve_arrays(g)


def test_stored_edges_for_other_retrievers(kg, linker, tmp_path):
    r = EdgesOnly(SubgraphRetriever(kg))
    pre = preprocess_dataset(EXAMPLES, kg, linker, r, tmp_path, num_workers=2, chunk_size=2, progress=False)
    assert pre.meta["edges"] == "stored" and (pre.path / "arrays" / "edge_index.npy").is_file()
    for i, ex in enumerate(EXAMPLES):
        for j, c in enumerate(ex.choices):
            ref = r.inner(linker.ground(ex.question, c))
            d = PreprocessedDataset.load(pre.path)[i][j][1]  # no graph needed
            assert d.edge_index.tolist() == ref.edge_index.tolist() and d.edge_type.tolist() == ref.edge_type.tolist()


def test_format_version_in_key_and_checked(kg, linker, tmp_path, monkeypatch):
    sr = SubgraphRetriever(kg)
    pre = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=1, progress=False)
    key = cache_key(kg.hash, linker.config, sr.config, examples_hash(EXAMPLES))
    assert pre.path.name == key
    monkeypatch.setattr(preprocess_mod, "FORMAT_VERSION", "kgfuse-preprocess-v999")
    assert cache_key(kg.hash, linker.config, sr.config, examples_hash(EXAMPLES)) != key
    # a cache of another version is not read: new key, rebuilt (and the old one fails to load)
    with pytest.raises(CacheFormatError, match=rf"meta.json: field 'format' is '{FORMAT_VERSION}'"):
        PreprocessedDataset.load(pre.path, graph=kg)
    again = preprocess_dataset(EXAMPLES, kg, linker, sr, tmp_path, num_workers=1, progress=False)
    assert not again.cache_hit and again.path != pre.path


def _corrupt(pre, name, value):
    np.save(pre.path / "arrays" / f"{name}.npy", value, allow_pickle=False)


def _rerecord_manifest(pre):
    """Record the folder's present files in its manifest, as if the malformed arrays had been
    written so: what is left to catch them is the structural validation."""
    from kgfuse.integrity import list_files, write_manifest

    kind = json.loads((pre.path / preprocess_mod.MANIFEST).read_text())["kind"]
    write_manifest(pre.path, list_files(pre.path, exclude=[preprocess_mod.MANIFEST]), preprocess_mod.MANIFEST, kind=kind)


@pytest.mark.parametrize(
    "name, make, field",
    [
        ("concept_ids", lambda a: a[:-1], "node_type"),  # lengths differ
        ("node_ptr", lambda a: a[:-1], "node_ptr"),  # wrong number of offsets
        ("node_type", lambda a: a + 3, "node_type"),  # out of range
        ("concept_ids", lambda a: a.astype(np.float32), "concept_ids"),  # not integers
        ("paths", lambda a: a[:, :-1], "paths"),  # wrong width
        ("paths", lambda a: a + 1000, "paths"),  # local index outside the statement
        ("path_ptr", lambda a: a[::-1].copy(), "path_ptr"),  # not rising
        ("path_rels", None, "path_rels"),  # file missing
    ],
)
def test_malformed_cache_raises_clear_error(kg, linker, tmp_path, name, make, field):
    pr = PathRetriever(kg, max_hops=2)
    pre = preprocess_dataset(EXAMPLES, kg, linker, pr, tmp_path, num_workers=1, progress=False)
    a = np.load(pre.path / "arrays" / f"{name}.npy")
    if make is None:
        (pre.path / "arrays" / f"{name}.npy").unlink()
    else:
        _corrupt(pre, name, make(a))
    # the manifest catches the changed file first...
    with pytest.raises(CacheFormatError, match=rf"arrays/{name}\.npy: (missing|\d+ bytes|content differs).*rebuild=True"):
        PreprocessedDataset.load(pre.path, graph=kg)
    # ...and the structural checks catch malformed arrays the manifest agrees with
    _rerecord_manifest(pre)
    with pytest.raises(CacheFormatError, match=rf"arrays/{field.split('/')[0]}\.npy: field '{field}'"):
        PreprocessedDataset.load(pre.path, graph=kg)
    # preprocess_dataset does not silently reuse it either
    with pytest.raises(CacheFormatError):
        preprocess_dataset(EXAMPLES, kg, linker, pr, tmp_path, num_workers=1, progress=False)
