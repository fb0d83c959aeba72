"""Compiled graph format: round trips, hash checks, corrupt and truncated files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgfuse.kg import KGFormatError, KnowledgeGraph
from kgfuse.kg.store import FORMAT_VERSION, load_graph, save_graph


def test_round_trip_keeps_everything(sample_kg, tmp_path):
    d = tmp_path / "g"
    sample_kg.save(d)
    for mmap in (True, False):
        back = KnowledgeGraph.load(d, mmap=mmap)
        assert back.hash == sample_kg.hash and back == sample_kg
        assert list(back.concepts) == list(sample_kg.concepts)
        assert back.relations == sample_kg.relations
        for name in ("head", "relation", "tail", "weight", "out_ptr", "in_ptr", "in_order"):
            assert np.array_equal(getattr(back, name), getattr(sample_kg, name)), name
        assert back.meta == json.loads(json.dumps(sample_kg.meta))
        assert back.meta["report"]["kept"] == sample_kg.meta["report"]["kept"]
        plate = back.concept_id("plate")
        assert back.neighbors(plate, "in").nodes.tolist() == sample_kg.neighbors(plate, "in").nodes.tolist()
    # memory-mapped arrays are read-only
    back = KnowledgeGraph.load(d)
    with pytest.raises(ValueError):
        back.head[0] = 1
    # a hash read without verification is the recorded one
    assert KnowledgeGraph.load(d, verify=False).hash == sample_kg.hash


def test_save_overwrites_atomically_and_refuses_foreign_dirs(tiny_kg, sample_kg, tmp_path):
    d = tmp_path / "g"
    save_graph(tiny_kg, d)
    save_graph(sample_kg, d)  # replace an existing compiled graph
    assert load_graph(d).hash == sample_kg.hash
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]  # no temp dirs left behind
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a compiled graph"):
        save_graph(tiny_kg, other)
    assert (other / "notes.txt").read_text() == "mine"


def test_empty_and_single_concept_graphs(tmp_path):
    for kg in (KnowledgeGraph([], [], [], [], []), KnowledgeGraph(["x"], ["r"], [], [], []),
               KnowledgeGraph(["", "a"], ["r"], [0], [0], [1])):
        save_graph(kg, tmp_path / "g")
        back = load_graph(tmp_path / "g")
        assert back.hash == kg.hash and list(back.concepts) == list(kg.concepts)


def test_unserialisable_meta_and_newline_names_are_refused(tmp_path):
    kg = KnowledgeGraph(["a", "b"], ["r"], [0], [0], [1], meta={"bad": object()})
    with pytest.raises(TypeError, match="JSON"):
        save_graph(kg, tmp_path / "g")
    kg = KnowledgeGraph(["a\nb", "c"], ["r"], [0], [0], [1])
    with pytest.raises(ValueError, match="newline"):
        save_graph(kg, tmp_path / "h")
    assert not (tmp_path / "g").exists() and not (tmp_path / "h").exists()


@pytest.fixture()
def compiled(sample_kg, tmp_path):
    d = tmp_path / "g"
    save_graph(sample_kg, d)
    return d


def test_missing_directory_and_files(compiled, tmp_path):
    with pytest.raises(KGFormatError, match="no such directory"):
        load_graph(tmp_path / "nope")
    (compiled / "tail.npy").unlink()
    with pytest.raises(KGFormatError, match=r"tail\.npy: missing"):
        load_graph(compiled)
    (compiled / "graph.json").unlink()
    with pytest.raises(KGFormatError, match=r"graph\.json: missing"):
        load_graph(compiled)


def test_truncated_array_file(compiled):
    p = compiled / "in_order.npy"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(KGFormatError, match=r"in_order\.npy: size is .*truncated"):
        load_graph(compiled)


def test_truncated_or_foreign_header(compiled):
    hp = compiled / "graph.json"
    text = hp.read_text()
    hp.write_text(text[: len(text) // 2])
    with pytest.raises(KGFormatError, match=r"graph\.json: corrupt or truncated JSON"):
        load_graph(compiled)
    header = json.loads(text)
    header["version"] = FORMAT_VERSION + 1
    hp.write_text(json.dumps(header))
    with pytest.raises(KGFormatError, match="version"):
        load_graph(compiled)
    header["version"] = FORMAT_VERSION
    header["format"] = "something-else"
    hp.write_text(json.dumps(header))
    with pytest.raises(KGFormatError, match="not a compiled kgfuse graph"):
        load_graph(compiled)


def _flip_last_weight(d):
    p = d / "weight.npy"
    arr = np.load(p)
    arr[-1] += 1.0
    np.save(p, arr)  # same size: only the hash can tell


def test_changed_weight_fails_the_hash_check(compiled, sample_kg):
    _flip_last_weight(compiled)
    with pytest.raises(KGFormatError, match="content hash"):
        load_graph(compiled)
    # without verification it loads the file as it is, and the caller gets the recorded hash
    back = load_graph(compiled, verify=False)
    assert back.num_edges == sample_kg.num_edges and back.hash == sample_kg.hash
    assert back.weight[-1] == sample_kg.weight[-1] + 1.0 and np.array_equal(back.weight[:-1], sample_kg.weight[:-1])


def test_corrupt_npy_header_and_edge_arrays(compiled):
    p = compiled / "head.npy"
    data = bytearray(p.read_bytes())
    data[:6] = b"XXXXXX"  # break the .npy magic, same size
    p.write_bytes(bytes(data))
    with pytest.raises(KGFormatError, match=r"head\.npy: unreadable \.npy"):
        load_graph(compiled)


def test_out_of_range_and_unsorted_edges(compiled):
    p = compiled / "tail.npy"
    tail = np.load(p)
    orig = tail.copy()
    tail[0] = 10**9
    np.save(p, tail)
    with pytest.raises(KGFormatError, match=r"tail\.npy: id 1000000000 outside"):
        load_graph(compiled)
    head = np.load(compiled / "head.npy")
    tail = orig.copy()
    i = int(np.flatnonzero(head[1:] == head[:-1])[0])  # two edges of the same head: swap tails
    tail[i], tail[i + 1] = tail[i + 1], tail[i]
    np.save(p, tail)
    with pytest.raises(KGFormatError, match="canonical"):
        load_graph(compiled)


def test_corrupt_in_csr(compiled):
    p = compiled / "in_order.npy"
    order = np.load(p)
    order[[0, -1]] = order[[-1, 0]]
    np.save(p, order)
    with pytest.raises(KGFormatError, match=r"in_order\.npy"):
        load_graph(compiled)


def test_wrong_number_of_names(compiled):
    p = compiled / "concepts.npy"
    blob = np.load(p)
    blob = np.concatenate((blob, np.frombuffer(b"\nextra", dtype=np.uint8)))
    np.save(p, blob)
    header = json.loads((compiled / "graph.json").read_text())
    header["files"]["concepts.npy"]["bytes"] = p.stat().st_size
    header["files"]["concepts.npy"]["shape"] = list(blob.shape)
    (compiled / "graph.json").write_text(json.dumps(header))
    with pytest.raises(KGFormatError, match=r"concepts\.npy: holds 287 concept names, graph.json records 286"):
        load_graph(compiled)
