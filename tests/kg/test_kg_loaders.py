"""Loaders: ConceptNet assertions, triples, networkx, WordNet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from kgfuse.kg import KnowledgeGraph
from kgfuse.kg.loaders import (
    INVERSE_PREFIX,
    MERGED17,
    LoadReport,
    from_conceptnet,
    from_triples,
    from_wordnet,
    load_relation_preset,
    normalize_conceptnet_uri,
)


def cn_line(rel: str, start: str, end: str, weight: float = 1.0, extra: str = "") -> str:
    info = ('{"dataset": "/d/conceptnet/4/en", "license": "cc:by/4.0", "sources": [{"contributor": '
            f'"/s/contributor/omcs/test"}}]{extra}, "weight": {weight}}}')
    return "\t".join((f"/a/[/r/{rel}/,{start}/,{end}/]", f"/r/{rel}", start, end, info))


GOOD = [
    cn_line("AtLocation", "/c/en/plate/n/wn/artifact", "/c/en/cupboard", 2.0),
    cn_line("HasA", "/c/en/car", "/c/en/wheel/n", 1.5),  # merged17: *partof -> wheel partof car
    cn_line("MotivatedByGoal", "/c/en/sleep/v", "/c/en/tired", 1.0),  # *causes -> tired causes sleep
    cn_line("LocatedNear", "/c/en/Cupboard", "/c/en/kitchen", 1.0),  # case folded to "cupboard"
    cn_line("FormOf", "/c/en/plates", "/c/en/plate/n", 1.0),  # not in merged17
    cn_line("IsA", "/c/en/ice_cream", "/c/en/dessert", 3.0, extra=', "surfaceText": "[[ice cream]] is a dessert"'),
]
OTHER_LANG = [
    cn_line("AtLocation", "/c/de/teller", "/c/de/schrank"),
    cn_line("Synonym", "/c/en/plate/n", "/c/fr/assiette"),
    cn_line("IsA", "/c/ja/犬", "/c/ja/動物"),
]


def write(tmp_path: Path, lines: list[str], name: str = "assertions.csv", gz: bool = False) -> Path:
    p = tmp_path / name
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if gz:
        p.write_bytes(gzip.compress(data))
    else:
        p.write_bytes(data)
    return p


def edges_of(kg: KnowledgeGraph) -> set[tuple[str, str, str]]:
    return {(kg.concept_name(h), kg.relation_name(r), kg.concept_name(t))
            for h, r, t in zip(kg.head.tolist(), kg.relation.tolist(), kg.tail.tolist())}


# ---------------------------------------------------------------- ConceptNet
def test_normalize_uri():
    assert normalize_conceptnet_uri("/c/en/Ice_Cream/n/wn/food") == "ice_cream"
    assert normalize_conceptnet_uri("/c/en/plate") == "plate"
    assert normalize_conceptnet_uri("/c/en/new york/n") == "new_york"
    with pytest.raises(ValueError):
        normalize_conceptnet_uri("http://dbpedia.org/resource/Cat")


def test_merged17_preset_matches_the_published_merge():
    preset = load_relation_preset("merged17")
    assert len(preset["relations"]) == 17
    assert set(preset["relations"]) == {v.lstrip("*") for v in preset["mapping"].values()}
    assert MERGED17["hasa"] == "*partof" and MERGED17["motivatedbygoal"] == "*causes"
    assert MERGED17["distinctfrom"] == "antonym" and MERGED17["definedas"] == "isa"
    assert "formof" not in MERGED17 and "derivedfrom" not in MERGED17
    with pytest.raises(ValueError, match="unknown relation preset"):
        load_relation_preset("nope")


def test_conceptnet_merge_reverse_marker_and_inverse(tmp_path):
    kg = from_conceptnet(write(tmp_path, GOOD + OTHER_LANG))
    rels = kg.relations
    assert len(rels) == 34 and rels[:17] == tuple(load_relation_preset("merged17")["relations"])
    assert rels[17:] == tuple(INVERSE_PREFIX + r for r in rels[:17])
    e = edges_of(kg)
    forward = {x for x in e if not x[1].startswith(INVERSE_PREFIX)}
    assert forward == {
        ("plate", "atlocation", "cupboard"),
        ("wheel", "partof", "car"),  # HasA reversed
        ("tired", "causes", "sleep"),  # MotivatedByGoal reversed
        ("cupboard", "atlocation", "kitchen"),
        ("ice_cream", "isa", "dessert"),
    }
    # every edge has its inverse, nothing else
    assert e - forward == {(t, INVERSE_PREFIX + r, h) for h, r, t in forward}
    assert kg.num_edges == 10
    assert sorted(kg.concepts) == list(kg.concepts)  # concept ids follow sorted names
    w = {(kg.concept_name(h), kg.concept_name(t)): wt for h, t, wt in zip(kg.head, kg.tail, kg.weight)}
    assert w[("plate", "cupboard")] == 2.0 and w[("cupboard", "plate")] == 2.0 and w[("wheel", "car")] == 1.5
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.lines == 9 and rep.kept == 5 and rep.skipped_language == 3
    assert rep.skipped["relation"] == 1 and rep.skipped_relations == {"FormOf": 1}
    assert rep.num_malformed == 0 and rep.edges == 10 and rep.concepts == 9
    assert kg.meta["loader"] == "conceptnet" and kg.meta["params"]["relations"] == "merged17"


def test_conceptnet_raw_without_inverse(tmp_path):
    kg = from_conceptnet(write(tmp_path, GOOD + OTHER_LANG), relations="raw", add_inverse=False)
    assert kg.relations == ("AtLocation", "FormOf", "HasA", "IsA", "LocatedNear", "MotivatedByGoal")
    assert ("car", "HasA", "wheel") in edges_of(kg) and ("plates", "FormOf", "plate") in edges_of(kg)
    assert kg.num_edges == 6


def test_conceptnet_custom_mapping(tmp_path):
    kg = from_conceptnet(write(tmp_path, GOOD), relations={"/r/AtLocation": "at", "HasA": "*part_of"},
                         add_inverse=False)
    assert kg.relations == ("at", "part_of")
    assert edges_of(kg) == {("plate", "at", "cupboard"), ("wheel", "part_of", "car")}
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.skipped_relations == {"FormOf": 1, "IsA": 1, "LocatedNear": 1, "MotivatedByGoal": 1}


def test_conceptnet_gzip_equals_plain(tmp_path):
    plain = from_conceptnet(write(tmp_path, GOOD + OTHER_LANG))
    gz = from_conceptnet(write(tmp_path, GOOD + OTHER_LANG, name="a.csv.gz", gz=True))
    assert plain.hash == gz.hash and gz.num_edges == 10


def test_conceptnet_line_order_does_not_change_hash(tmp_path):
    a = from_conceptnet(write(tmp_path, GOOD + OTHER_LANG, name="a.csv"))
    b = from_conceptnet(write(tmp_path, list(reversed(GOOD + OTHER_LANG)), name="b.csv"))
    assert a.hash == b.hash


BAD = [
    "only\ttwo",  # line 2: columns
    cn_line("AtLocation", "/c/en/x", "/c/en/y").replace("/r/AtLocation\t", "AtLocation\t"),  # 3: relation URI
    "\t".join(("/a/x", "/r/IsA", "c/en/x", "/c/en/y", '{"weight": 1.0}')),  # 4: start URI
    "\t".join(("/a/x", "/r/IsA", "/c/en/x", "/c/en/y", '{"weight": 1.0')),  # 5: JSON
    "\t".join(("/a/x", "/r/IsA", "/c/en/x", "/c/en/y", '{"dataset": "/d/x"}')),  # 6: no weight
    "\t".join(("/a/x", "/r/IsA", "/c/en/x", "/c/en/y", '{"weight": "heavy"}')),  # 7: weight not a number
    "\t".join(("/a/x", "/r/IsA", "/c/en/x", "/c/en/y", '{"weight": NaN}')),  # 8: weight not finite
]


def test_conceptnet_malformed_lines_are_counted_with_line_numbers(tmp_path, caplog):
    lines = [GOOD[0]] + BAD + [GOOD[3]]
    got = []
    kg = from_conceptnet(write(tmp_path, lines), report=got.append)
    rep = LoadReport.from_dict(kg.meta["report"])
    assert len(got) == 1 and got[0] == rep  # the report given to the callback is the recorded one
    assert rep.num_malformed == 7 and rep.kept == 2
    assert rep.malformed == {"columns": 1, "relation_uri": 1, "start_uri": 1, "json": 1, "weight": 3}
    assert [ex["line"] for ex in rep.examples] == [2, 3, 4, 5, 6, 7, 8]
    assert rep.examples[0]["text"] == "only\ttwo"
    assert "malformed" in caplog.text  # logged summary
    assert edges_of(kg) >= {("plate", "atlocation", "cupboard"), ("cupboard", "atlocation", "kitchen")}


@pytest.mark.parametrize("k, field", [(0, "columns"), (1, "relation"), (2, "start"), (3, "info"), (4, "weight")])
def test_conceptnet_strict_names_file_line_and_field(tmp_path, k, field):
    path = write(tmp_path, [GOOD[0], OTHER_LANG[0], BAD[k], GOOD[1]])
    with pytest.raises(ValueError) as ei:
        from_conceptnet(path, strict=True)
    msg = str(ei.value)
    assert str(path) in msg and "line 3" in msg and f"field '{field}'" in msg


def test_conceptnet_strict_accepts_clean_file(tmp_path):
    kg = from_conceptnet(write(tmp_path, GOOD + OTHER_LANG), strict=True)
    assert kg.num_edges == 10


def test_conceptnet_non_concept_and_blank_lines_are_skipped_not_malformed(tmp_path):
    url = "\t".join(("/a/[/r/ExternalURL/,/c/en/cat/,http://dbpedia.org/resource/Cat/]", "/r/ExternalURL",
                     "/c/en/cat", "http://dbpedia.org/resource/Cat", '{"weight": 1.0}'))
    kg = from_conceptnet(write(tmp_path, [GOOD[0], url, "", GOOD[1]]), strict=True)
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.skipped == {"non_concept": 1, "blank": 1} and rep.kept == 2


def test_conceptnet_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        from_conceptnet(tmp_path / "nope.csv")


def test_conceptnet_odd_but_valid_json_uses_the_json_fallback(tmp_path):
    # weight not the last key, and a surface text containing the string "weight": parsed with json
    line = "\t".join(("/a/x", "/r/IsA", "/c/en/x", "/c/en/y",
                      '{"weight": 4.0, "surfaceText": "\\"weight\\": 9}"}'))
    kg = from_conceptnet(write(tmp_path, [line]), relations="raw", add_inverse=False)
    assert kg.weight.tolist() == [4.0]


def test_conceptnet_real_sample(shared_data):
    path = shared_data / "conceptnet" / "assertions-sample.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    # independent count of rows whose both ends are English
    rows = [ln.rstrip("\n").split("\t") for ln in path.read_text(encoding="utf-8").splitlines() if ln]
    english = [r for r in rows if r[2].startswith("/c/en/") and r[3].startswith("/c/en/")]
    assert len(rows) == 764 and len(english) == 96
    expected = {(r[2].split("/")[3].lower(), r[1][3:], r[3].split("/")[3].lower()) for r in english}
    kg = from_conceptnet(path, relations="raw", add_inverse=False, strict=True)
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.kept == 96 and rep.lines == 764 and rep.num_malformed == 0
    assert rep.skipped_language + rep.skipped.get("non_concept", 0) == 764 - 96
    assert edges_of(kg) == expected and kg.num_edges == len(expected)
    merged = from_conceptnet(path)
    mrep = LoadReport.from_dict(merged.meta["report"])
    assert mrep.kept + mrep.skipped["relation"] == 96
    assert merged.num_edges == 2 * len({(h, MERGED17[r.lower()], t) for h, r, t in expected
                                        if r.lower() in MERGED17})


def test_sample_kg_loads_and_links_questions(sample_kg, repo_root):
    kg = sample_kg
    assert kg.meta["report"]["malformed"] == {}
    assert kg.meta["report"]["skipped"] == {"language": 7, "relation": 8, "non_concept": 1}
    assert (kg.num_concepts, kg.num_relations, kg.num_edges) == (286, 34, 644)
    for split in ("train", "dev"):
        for line in (repo_root / "data" / "sample_csqa" / f"{split}.jsonl").read_text().splitlines():
            q = json.loads(line)["question"]
            assert kg.has_concept(q["question_concept"].replace(" ", "_"))
            for c in q["choices"]:
                assert kg.has_concept(c["text"].replace(" ", "_")), c["text"]


# ---------------------------------------------------------------- triples
def test_triples_header_weights_and_malformed(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("head\trelation\ttail\tweight\n"
                 "plate\tat\tcupboard\t2.5\n"
                 "\n"
                 "# a comment\n"
                 "cup\tat\tcupboard\n"
                 "bad line\n"
                 "cup\tat\t\n"
                 "cup\tat\tsink\theavy\n"
                 "wheel\tpart of\tcar\t1\n", encoding="utf-8")
    kg = from_triples(p, add_inverse=False)
    assert edges_of(kg) == {("plate", "at", "cupboard"), ("cup", "at", "cupboard"), ("wheel", "part of", "car")}
    assert kg.weight[kg.relation == kg.relation_id("part of")].tolist() == [1.0]
    rep = LoadReport.from_dict(kg.meta["report"])
    assert kg.meta["params"]["header"] is True and rep.skipped["header"] == 1
    assert rep.malformed == {"columns": 1, "tail": 1, "weight": 1}
    assert [e["line"] for e in rep.examples] == [6, 7, 8]
    with pytest.raises(ValueError, match=r"t\.tsv, line 6, field 'columns'"):
        from_triples(p, strict=True)


def test_triples_without_header_and_csv_delimiter(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("subject,predicate,object\na,r,b\nb,r,c\n")
    assert from_triples(p, delimiter=",", add_inverse=False).num_edges == 2  # header detected by names
    q = tmp_path / "u.csv"
    q.write_text("a,r,b\nb,r,c\n")
    kg = from_triples(q, delimiter=",", add_inverse=True)
    assert kg.meta["params"]["header"] is False and kg.num_edges == 4
    assert set(kg.relations) == {"r", INVERSE_PREFIX + "r"}


# ---------------------------------------------------------------- networkx
def test_networkx_round_trip(sample_kg):
    G = sample_kg.to_networkx()
    back = KnowledgeGraph.from_networkx(G)
    assert back.hash == sample_kg.hash


def test_networkx_digraph_and_errors():
    nx = pytest.importorskip("networkx")
    G = nx.DiGraph()
    G.add_edge("plate", "cupboard", relation="atlocation", weight=2.0)
    G.add_edge("cupboard", "kitchen", relation="atlocation")
    G.add_node("lonely")
    kg = KnowledgeGraph.from_networkx(G)
    assert kg.num_concepts == 4 and kg.num_edges == 2 and kg.has_concept("lonely")
    assert kg.concepts[:] == ["plate", "cupboard", "kitchen", "lonely"]  # G.nodes order
    assert kg.weight.tolist() == [2.0, 1.0]
    G.add_edge("kitchen", "house")
    with pytest.raises(ValueError, match=r"'kitchen' -> 'house'.*no attribute 'relation'"):
        KnowledgeGraph.from_networkx(G)
    assert KnowledgeGraph.from_networkx(G, default_relation="related").num_edges == 3
    with pytest.raises(ValueError, match="undirected"):
        KnowledgeGraph.from_networkx(nx.Graph([(1, 2)]))
    M = nx.MultiDiGraph()
    M.add_edge(1, 2, key="x", rel="a")
    M.add_edge(1, 2, key="y", rel="b")
    kg = KnowledgeGraph.from_networkx(M, relation="rel")
    assert kg.num_edges == 2 and kg.concepts[:] == ["1", "2"]
    M.add_edge(2, 1, key="z")
    with pytest.raises(ValueError, match="key='z'"):
        KnowledgeGraph.from_networkx(M, relation="rel")


# ---------------------------------------------------------------- WordNet
WORDNET = Path("/usr/share/wordnet")


@pytest.fixture(scope="module")
def wordnet_dir():
    if not (WORDNET / "data.noun").is_file():
        pytest.skip("WordNet database files absent: /usr/share/wordnet/data.noun (install Debian's wordnet-base)")
    return WORDNET


@pytest.fixture(scope="module")
def wn_lemmas(wordnet_dir):
    return from_wordnet(wordnet_dir, concepts="lemmas")


def test_wordnet_lemmas(wn_lemmas):
    kg = wn_lemmas
    assert kg.num_concepts > 140_000 and kg.meta["report"]["malformed"] == {}
    dog = kg.concept_id("dog")
    out = {(kg.relation_name(r), kg.concept_name(n)) for n, r in kg.neighbors(dog)}
    assert ("hypernym", "canine") in out and ("hypernym", "domestic_animal") in out
    assert ("hyponym", "poodle") in out
    assert ("synonym", "domestic_dog") in out
    # lexical pointer (specific words): good <-antonym-> bad, not synonyms of "good" to "bad"
    good = {(kg.relation_name(r), kg.concept_name(n)) for n, r in kg.neighbors(kg.concept_id("good"))}
    assert ("antonym", "bad") in good and ("antonym", "evil") in good
    assert kg.has_concept("ice_cream") and kg.has_concept("galore")  # galore(ip) marker dropped
    assert "hypernym" in kg.relations and "entailment" in kg.relations and "similar_to" in kg.relations
    assert kg.meta["params"]["concepts"] == "lemmas"


def test_wordnet_synsets_use_nltk_names(wordnet_dir):
    kg = from_wordnet(wordnet_dir, concepts="synsets", pos=("n", "v"))
    assert kg.num_concepts == 82_115 + 13_767  # WordNet 3.0 noun + verb synsets
    out = {(kg.relation_name(r), kg.concept_name(n)) for n, r in kg.neighbors(kg.concept_id("dog.n.01"))}
    assert {("hypernym", "canine.n.02"), ("hypernym", "domestic_animal.n.01"), ("member_holonym", "canis.n.01")} <= out
    breathe = {(kg.relation_name(r), kg.concept_name(n)) for n, r in kg.neighbors(kg.concept_id("breathe.v.01"))}
    assert ("entailment", "exhale.v.01") in breathe
    # pointers to adjectives/adverbs are dropped and counted, not malformed
    assert kg.meta["report"]["skipped"]["pointer_outside_pos"] > 0


def test_wordnet_on_a_handmade_database(tmp_path):
    header = "  1 This is a license line\n"
    (tmp_path / "data.noun").write_text(
        header
        + "00000010 03 n 02 dog 0 domestic_dog 0 002 @ 00000020 n 0000 ! 00000030 n 0101 | a dog\n"
        + "00000020 03 n 01 canine 0 001 ~ 00000010 n 0000 | a canine\n"
        + "00000030 03 n 01 cat 0 001 ! 00000010 n 0101 | a cat\n"
        + "garbage line\n")
    for f in ("data.verb", "data.adj", "data.adv"):
        (tmp_path / f).write_text(header)
    kg = from_wordnet(tmp_path)
    assert edges_of(kg) == {
        ("dog", "synonym", "domestic_dog"), ("domestic_dog", "synonym", "dog"),
        ("dog", "hypernym", "canine"), ("domestic_dog", "hypernym", "canine"),
        ("canine", "hyponym", "dog"), ("canine", "hyponym", "domestic_dog"),
        ("dog", "antonym", "cat"), ("cat", "antonym", "dog"),  # lexical: word 1 only
    }
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.malformed == {"synset": 1} and rep.examples[0]["line"] == 5
    with pytest.raises(ValueError, match=r"data\.noun, line 5"):
        from_wordnet(tmp_path, strict=True)


def test_wordnet_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        from_wordnet(tmp_path)


# ---------------------------------------------------------------- benchmark generator
def test_generated_conceptnet_file_is_valid_and_deterministic(tmp_path, repo_root):
    """Deterministic means the same file from two processes with different string hashing."""
    import os
    import subprocess
    import sys

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("parking lot\nrevolving_door\nplate\n")
    paths = []
    for name, hash_seed in (("a.csv", "1"), ("b.csv", "2")):
        subprocess.run([sys.executable, str(repo_root / "benchmarks" / "gen_conceptnet.py"), str(tmp_path / name),
                        "--concepts", "3000", "--english-rows", "6000", "--vocab-file", str(vocab)],
                       check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=300)
        paths.append(tmp_path / name)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    kg = from_conceptnet(paths[0], strict=True)
    rep = LoadReport.from_dict(kg.meta["report"])
    assert rep.lines == 50_000 and rep.num_malformed == 0
    english = rep.kept + rep.skipped["relation"]
    assert english == 6000
    assert kg.num_concepts == 3000  # every concept is used by a merged relation
    for w in ("parking_lot", "revolving_door", "plate"):
        assert kg.has_concept(w)
    deg = np.sort(kg.degree())[::-1]
    assert deg[0] > 20 * np.median(deg)  # heavy-tailed
