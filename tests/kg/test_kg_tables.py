"""Tabular graphs with other column layouts: ConceptNet 4 (``head relation tail freq score``,
negated rows), CN-100K (``relation head tail``), a user's CSV with extra columns; the one graph
resolver (``open_graph``) and ``kgfuse graph build`` give the same graph as the API."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest

from kgfuse.kg import KnowledgeGraph
from kgfuse.kg.formats import detect_graph_format, open_graph
from kgfuse.kg.loaders import LoadReport, from_triples, load_relation_preset

# the format of ../shared/data/conceptnet4/conceptnet4_en.tsv.gz, rows written here
CN4 = ("head\trelation\ttail\tfreq\tscore\n"
       "penguin\tCapableOf\tswim\t5\t2\n"
       "penguin\tCapableOf\tfly\t-5\t1\n"          # negated: "penguin NOT CapableOf fly"
       "dine room\tHasA\ttable\t5\t1\n"           # HasA -> *partof (swapped)
       "glass water\tAtLocation\tdine room\t5\t3\n"
       "pain\tHasPainIntensity\thigh\t5\t1\n"     # no merged17 counterpart: kept raw
       "cat\tDesires\tmilk\t-2\t1\n"               # negated Desires -> notdesires when kept
       "idea\tConceptuallyRelatedTo\tthought\t5\t1\n")
CN100K = "ReceivesAction\thockey\tplay on ice\nAtLocation\trestroom\trest area\nAtLocation\tcar\tstreet\n"


def edges(kg):
    return {(kg.concept_name(int(h)), kg.relation_name(int(r)), kg.concept_name(int(t)))
            for h, r, t in zip(kg.head, kg.relation, kg.tail)}


@pytest.fixture()
def cn4(tmp_path):
    p = tmp_path / "cn4.tsv.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(CN4)
    return p


def test_conceptnet4_columns_negation_and_preset(cn4):
    kg = from_triples(cn4, columns={"head": "head", "relation": "relation", "tail": "tail", "weight": "score",
                                    "negation": "freq"}, relations="conceptnet4", add_inverse=False)
    assert edges(kg) == {("penguin", "capableof", "swim"), ("table", "partof", "dine room"),
                         ("glass water", "atlocation", "dine room"), ("pain", "haspainintensity", "high"),
                         ("idea", "relatedto", "thought")}
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.skipped == {"header": 1, "negated": 2} and rep.kept == 5 and not rep.malformed
    # weight = score column
    assert float(kg.weight[kg.relation == kg.relation_id("atlocation")][0]) == 3.0
    # the merged17 relations keep their ids; unmapped ones follow, sorted
    assert list(kg.relations[:17]) == load_relation_preset("merged17")["relations"]
    assert list(kg.relations[17:]) == ["haspainintensity"]
    kept = from_triples(cn4, columns={"head": "head", "relation": "relation", "tail": "tail", "negation": "freq"},
                        relations="conceptnet4", negated="keep", add_inverse=False)
    assert {("penguin", "notcapableof", "fly"), ("cat", "notdesires", "milk")} <= edges(kept)
    assert LoadReport.from_dict(kept.meta["report"]).skipped == {"header": 1}
    raw = from_triples(cn4, columns={"head": 0, "relation": 1, "tail": 2, "negation": 3}, negated="keep",
                       add_inverse=False, header=True)
    assert ("penguin", "NotCapableOf", "fly") in edges(raw) and ("dine room", "HasA", "table") in edges(raw)


def test_conceptnet4_format_is_detected_and_same_everywhere(cn4, tmp_path):
    assert detect_graph_format(cn4) == "conceptnet4"
    auto = open_graph(cn4)
    explicit = from_triples(cn4, columns={"head": "head", "relation": "relation", "tail": "tail", "weight": "score",
                                          "negation": "freq"}, relations="conceptnet4")
    assert auto.hash == explicit.hash
    assert "_capableof" in auto.relations  # inverse edges by default, as every loader
    out = tmp_path / "compiled"
    r = subprocess.run([sys.executable, "-m", "kgfuse.tasks.cli", "graph", "build", str(cn4), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert KnowledgeGraph.load(out).hash == auto.hash
    assert detect_graph_format(out) == "compiled" and open_graph(out).hash == auto.hash


def test_cn100k_layout_by_position(tmp_path):
    p = tmp_path / "train.txt"
    p.write_text(CN100K, encoding="utf-8")
    assert detect_graph_format(p) == "table"
    kg = from_triples(p, columns=["relation", "head", "tail"], add_inverse=False)
    assert edges(kg) == {("hockey", "ReceivesAction", "play on ice"), ("restroom", "AtLocation", "rest area"),
                         ("car", "AtLocation", "street")}
    merged = open_graph(p, "table", columns=["relation", "head", "tail"], relations="merged17")
    assert {"receivesaction", "atlocation", "_atlocation"} <= set(merged.relations)
    out = tmp_path / "g"
    r = subprocess.run([sys.executable, "-m", "kgfuse.tasks.cli", "graph", "build", str(p), str(out),
                        "--columns", "relation,head,tail", "--relations", "merged17"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert KnowledgeGraph.load(out).hash == merged.hash


def test_user_csv_with_extra_columns_and_errors(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("id,source,kind,target,confidence,comment\n"
                 "1,plate,AtLocation,cupboard,0.9,seen\n"
                 "2,cup,AtLocation,,0.5,empty tail\n"
                 "3,cup,UsedFor,drink,lots,bad weight\n", encoding="utf-8")
    cols = {"head": "source", "relation": "kind", "tail": "target", "weight": "confidence"}
    kg = from_triples(p, delimiter=",", columns=cols, add_inverse=False)
    assert edges(kg) == {("plate", "AtLocation", "cupboard")}
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.malformed == {"tail": 1, "weight": 1} and [e["line"] for e in rep.examples] == [3, 4]
    with pytest.raises(ValueError, match=r"mine\.csv, line 3, field 'tail'"):
        from_triples(p, delimiter=",", columns=cols, strict=True)
    with pytest.raises(ValueError, match=r"no column named 'conf'"):
        from_triples(p, delimiter=",", columns=dict(cols, weight="conf"))
    with pytest.raises(ValueError, match=r"unknown column role 'score'"):
        from_triples(p, delimiter=",", columns=dict(cols, score="confidence"))
    with pytest.raises(ValueError, match="negated must be"):
        from_triples(p, negated="maybe")


def test_open_graph_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="graph not found"):
        open_graph(tmp_path / "nope.tsv")
    (tmp_path / "x.bin").write_bytes(b"\0")
    with pytest.raises(ValueError, match="cannot tell the graph format"):
        open_graph(tmp_path / "x.bin")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a compiled graph"):
        open_graph(tmp_path / "empty")
    (tmp_path / "t.tsv").write_text("a\tr\tb\n")
    with pytest.raises(ValueError, match="unknown graph format 'turtle'"):
        open_graph(tmp_path / "t.tsv", "turtle")
