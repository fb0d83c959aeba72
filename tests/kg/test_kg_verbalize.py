"""Knowledge as text: relation templates (data), fact ranking and de-duplication, definitions
(WordNet, a user's file, the registry), the token budget, on hand-made graphs with known
answers, the bundled sample graph, a ConceptNet 4 table and a WordNet database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgfuse.kg import GraphBuilder, KnowledgeGraph, PathRetriever, SubgraphRetriever
from kgfuse.kg.linking import Grounding
from kgfuse.kg.loaders import load_relation_preset
from kgfuse.kg.verbalize import (
    DEFINITION_SOURCES,
    DefinitionSource,
    FileDefinitions,
    RelationTemplates,
    Verbalizer,
    VerbalizerPart,
    WordNetDefinitions,
    concept_text,
    register_definition_source,
    relation_words,
    resolve_definition_source,
)

WORDNET = Path("/usr/share/wordnet")


def _g(kg: KnowledgeGraph, q: list[str], a: list[str]) -> Grounding:
    return Grounding([kg.concept_id(c) for c in q], [kg.concept_id(c) for c in a])


def kitchen(add_inverse: bool = False) -> KnowledgeGraph:
    """plate -> cupboard: one direct edge, two 2-hop paths of known weakest weights (2.0 via
    dish, 0.5 via kitchenware) and one path walking an edge backward (cupboard usedfor storage)."""
    b = GraphBuilder()
    b.add("plate", "atlocation", "cupboard", 1.0)
    b.add("plate", "relatedto", "dish", 3.0)
    b.add("dish", "atlocation", "cupboard", 2.0)
    b.add("plate", "isa", "kitchenware", 0.5)
    b.add("kitchenware", "atlocation", "cupboard", 4.0)
    b.add("plate", "relatedto", "storage", 1.5)
    b.add("cupboard", "usedfor", "storage", 1.0)
    kg = b.build()
    if not add_inverse:
        return kg
    R = kg.num_relations
    rels = list(kg.relations) + ["_" + r for r in kg.relations]
    return KnowledgeGraph(list(kg.concepts), rels,
                          head=list(kg.head) + list(kg.tail), relation=list(kg.relation) + [r + R for r in kg.relation],
                          tail=list(kg.tail) + list(kg.head), weight=list(kg.weight) * 2)


# ---------------------------------------------------------------- templates
def test_preset_covers_merged17_conceptnet4_extras_and_negations():
    t = RelationTemplates.load()
    explicit = t.templates
    names = set(load_relation_preset("merged17")["relations"]) | set(load_relation_preset("conceptnet4")["relations"])
    names |= {"haspaincharacter", "haspainintensity", "similarsize", "symbolof"}
    for r in sorted(names):
        assert r in explicit, r
        neg = r if r.startswith("not") else "not" + r
        assert neg in explicit, neg
        assert " not " in explicit[neg] or "cannot" in explicit[neg], neg
    assert t.render("plate", "atlocation", "cupboard") == "plate is found at cupboard"
    # the inverse edge cupboard --_atlocation--> plate states the same fact
    assert t.render("cupboard", "_atlocation", "plate") == "plate is found at cupboard"
    assert t.render("fish", "notcapableof", "fly") == "fish cannot fly"
    assert t.render("house", "notatlocation", "sea") == "house is not found at sea"
    assert t.render("dove", "symbolof", "peace") == "dove is a symbol of peace"
    assert t.render("ice_cream", "/r/AtLocation", "freezer") == "ice cream is found at freezer"


def test_other_relations_read_as_their_names():
    t = RelationTemplates.load()
    assert relation_words("part_of") == "part of" and relation_words("hasFavouriteColour") == "has favourite colour"
    assert t.render("wheel", "part_of", "car") == "wheel part of car"
    assert t.render("car", "_part_of", "wheel") == "wheel part of car"
    assert t.render("dog.n.01", "hypernym", "canine.n.02") == "dog hypernym canine"
    assert t.render("tree", "member_holonym", "forest") == "tree member holonym forest"
    assert concept_text("ice_cream") == "ice cream" and concept_text("plate.n.04") == "plate"


def test_templates_from_a_user_file(tmp_path):
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"templates": {"part_of": "{head} is a part of {tail}"}, "inverse_prefix": "_"}))
    t = RelationTemplates.load(str(f))
    assert t.render("car", "_part_of", "wheel") == "wheel is a part of car"
    assert t.render("plate", "atlocation", "cupboard") == "plate atlocation cupboard"  # only the file's templates
    (tmp_path / "bad.json").write_text(json.dumps({"part_of": "{head} of"}))
    with pytest.raises(ValueError, match="must contain"):
        RelationTemplates.load(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="presets: \\['relation_templates'\\]"):
        RelationTemplates.load("merged17")  # a relation preset, not templates
    with pytest.raises(ValueError, match="not a relation preset"):
        load_relation_preset("relation_templates")
    assert RelationTemplates.load(str(f)).config["sha256"] != RelationTemplates.load().config["sha256"]


# ---------------------------------------------------------------- facts: order and de-duplication
def test_direct_edges_first_then_shorter_then_heavier_paths():
    kg = kitchen()
    ret = PathRetriever(kg, max_hops=2, max_paths=20)
    v = Verbalizer(kg, triples=10, definitions="none", max_tokens=None)
    out = v(_g(kg, ["plate"], ["cupboard"]), ret(_g(kg, ["plate"], ["cupboard"])))
    assert out == [
        "plate is found at cupboard.",
        "plate is related to dish, dish is found at cupboard.",  # weakest edge 2.0
        "plate is related to storage, cupboard is used for storage.",  # 1.0; the edge walked backward
        "plate is a kitchenware, kitchenware is found at cupboard.",  # 0.5
    ]
    assert Verbalizer(kg, triples=2, definitions="none", max_tokens=None)(
        _g(kg, ["plate"], ["cupboard"]), ret(_g(kg, ["plate"], ["cupboard"]))) == out[:2]


def test_inverse_twins_and_both_retrievers_say_each_fact_once():
    kg = kitchen(add_inverse=True)
    g = _g(kg, ["plate"], ["cupboard"])
    v = Verbalizer(kg, triples=10, definitions="none", max_tokens=None)
    undirected = PathRetriever(kg, max_hops=2, max_paths=50, directed=False)  # finds every path twice
    data = undirected(g)
    assert len(undirected.explain(data)) == 14  # each connection, forward and through its inverse twin
    out = v(g, data)
    # each fact once, in a fixed order: direct edge, then 2-hop paths by weakest weight
    assert out == ["plate is found at cupboard.", "plate is related to dish, dish is found at cupboard.",
                   "plate is related to storage, cupboard is used for storage.",
                   "plate is a kitchenware, kitchenware is found at cupboard."]
    sub = v(g, SubgraphRetriever(kg, max_nodes=10)(g))
    assert sub[0] == "plate is found at cupboard." and len(sub) == len(set(sub))
    assert set(sub) == set(out)  # the bridging subgraph holds the same 1- and 2-hop connections


def test_sample_graph_plate_cupboard(sample_kg):
    g = _g(sample_kg, ["plate"], ["cupboard"])
    data = PathRetriever(sample_kg, max_hops=2, max_paths=10)(g)
    v = Verbalizer(sample_kg, triples=3, definitions="none", max_tokens=None)
    assert v(g, data)[0] == "plate is found at cupboard."
    assert v.text(g, data).startswith("plate is found at cupboard.")


def test_no_knowledge_gives_no_text(sample_kg):
    v = Verbalizer(sample_kg, triples=5, definitions="none", max_tokens=None)
    empty = PathRetriever(sample_kg, max_hops=2)(Grounding())
    assert v(Grounding(), empty) == [] and v.text(Grounding(), empty) == ""
    # concepts linked but no path between them
    g = _g(sample_kg, ["plate"], ["car"])
    assert v(g, PathRetriever(sample_kg, max_hops=1)(g)) == []


def test_conceptnet4_table_with_negations(tmp_path):
    from kgfuse.kg.formats import open_graph

    f = tmp_path / "cn4.tsv"
    f.write_text("head\trelation\ttail\tfreq\tscore\n"
                 "fish\tCapableOf\tfly\t-2\t1\n"
                 "house\tAtLocation\tsea\t-1\t1\n"
                 "dove\tSymbolOf\tpeace\t3\t2\n"
                 "migraine\tHasPainIntensity\tsevere\t2\t1\n")
    kg = open_graph(f, negated="keep")
    assert {"notcapableof", "notatlocation", "symbolof", "haspainintensity"} <= set(kg.relations)
    v = Verbalizer(kg, triples=3, definitions="none", max_tokens=None)
    ret = PathRetriever(kg, max_hops=1)
    said = {q: v(_g(kg, [q], [a]), ret(_g(kg, [q], [a]))) for q, a in
            (("fish", "fly"), ("house", "sea"), ("dove", "peace"), ("migraine", "severe"))}
    assert said == {"fish": ["fish cannot fly."], "house": ["house is not found at sea."],
                    "dove": ["dove is a symbol of peace."], "migraine": ["the pain of migraine is severe."]}


# ---------------------------------------------------------------- definitions
def _handmade_wordnet(root: Path) -> Path:
    """dry: 1 noun sense, 2 adjective senses (adjective wins: more senses); plate: 2 noun
    senses, sense 1 listed second in the data file (index order decides)."""
    lic = "  1 license line\n"
    (root / "data.noun").write_text(
        lic
        + "00000100 06 n 01 dry 0 000 | a reformer who opposes alcohol\n"
        + "00000200 06 n 01 plate 0 000 | a sheet of metal; \"a steel plate\"\n"
        + "00000300 06 n 01 plate 0 000 | dish on which food is served\n")
    (root / "data.adj").write_text(lic + "00000400 00 a 01 dry 0 000 | free from liquid or moisture\n"
                                   + "00000500 00 a 01 dry 0 000 | humorously sarcastic\n")
    (root / "data.verb").write_text(lic)
    (root / "data.adv").write_text(lic)
    (root / "index.noun").write_text(lic + "dry n 1 0 1 0 00000100  \nplate n 2 0 2 1 00000300 00000200  \n")
    (root / "index.adj").write_text(lic + "dry a 2 0 2 1 00000400 00000500  \n")
    (root / "index.verb").write_text(lic)
    (root / "index.adv").write_text(lic)
    return root


def test_wordnet_definitions_on_a_handmade_database(tmp_path):
    wn = WordNetDefinitions(_handmade_wordnet(tmp_path))
    assert wn("plate") == "dish on which food is served"  # sense 1 of the index, not file order
    assert wn("dry") == "free from liquid or moisture"  # the part of speech with more senses
    assert wn("plate.n.02") == "a sheet of metal" and wn("dry.s.02") == "humorously sarcastic"
    assert wn("teapot") is None and wn("plate.n.07") is None
    assert WordNetDefinitions(tmp_path, pos=("n",))("dry") == "a reformer who opposes alcohol"


@pytest.mark.skipif(not (WORDNET / "index.noun").is_file(), reason="WordNet database absent (Debian's wordnet-base)")
def test_wordnet_definitions_of_the_sample_graph(sample_kg):
    g = _g(sample_kg, ["plate"], ["cupboard"])
    data = PathRetriever(sample_kg, max_hops=2, max_paths=10)(g)
    out = Verbalizer(sample_kg, triples=1, definitions="answer", max_tokens=None)(g, data)
    assert out == ["cupboard: a small room (or recess) or cabinet used for storage space.", "plate is found at cupboard."]
    all_ = Verbalizer(sample_kg, triples=1, definitions="all", max_tokens=None)(g, data)
    assert all_[:2] == out and all_[2].startswith("plate: ")


def test_file_definitions_json_and_tsv(tmp_path, sample_kg):
    j = tmp_path / "defs.json"
    j.write_text(json.dumps({"Cupboard": "a closet with shelves", "plate": "a flat dish"}))
    t = tmp_path / "defs.tsv"
    t.write_text("# name\tdefinition\ncupboard\ta closet with shelves\nice cream\tfrozen dessert\n")
    assert FileDefinitions(j)("cupboard") == "a closet with shelves"
    assert FileDefinitions(t)("ice_cream") == "frozen dessert" and len(FileDefinitions(t)) == 2
    src = resolve_definition_source("defs.tsv", base_dir=tmp_path)
    assert isinstance(src, FileDefinitions) and src.config["sha256"] == FileDefinitions(t).config["sha256"]
    (tmp_path / "bad.tsv").write_text("cupboard with no tab\n")
    with pytest.raises(ValueError, match="line 1"):
        FileDefinitions(tmp_path / "bad.tsv")
    g = _g(sample_kg, ["plate"], ["cupboard"])
    data = PathRetriever(sample_kg, max_hops=1)(g)
    answer = Verbalizer(sample_kg, triples=1, definitions="answer", definition_source=str(j), max_tokens=None)
    everything = Verbalizer(sample_kg, triples=1, definitions="all", definition_source=str(j), max_tokens=None)
    none = Verbalizer(sample_kg, triples=1, definitions="none", definition_source=str(j), max_tokens=None)
    assert answer(g, data) == ["cupboard: a closet with shelves.", "plate is found at cupboard."]
    assert everything(g, data) == answer(g, data) + ["plate: a flat dish."]
    assert none(g, data) == ["plate is found at cupboard."]
    assert answer.config != everything.config != none.config


def test_definition_source_registry(sample_kg):
    @register_definition_source("test-upper")
    class Upper(DefinitionSource):
        def __call__(self, concept):
            return f"the word {concept.upper()}"

    try:
        assert isinstance(resolve_definition_source("test-upper"), Upper)
        v = Verbalizer(sample_kg, triples=0, definitions="answer", definition_source="test-upper", max_tokens=None)
        assert v(_g(sample_kg, ["plate"], ["cupboard"]), None) == ["cupboard: the word CUPBOARD."]
        assert v.config["definition_source"] == {"type": "test-upper"}
        with pytest.raises(ValueError, match="already registered"):
            register_definition_source("test-upper")(type("Other", (DefinitionSource,), {}))
    finally:
        DEFINITION_SOURCES.pop("test-upper")
    with pytest.raises(ValueError, match="valid: \\['wordnet'\\]"):
        resolve_definition_source("wikipedia")


# ---------------------------------------------------------------- budget
def test_budget_keeps_whole_sentences_in_order(tmp_path, sample_kg):
    j = tmp_path / "defs.json"
    j.write_text(json.dumps({"cupboard": " ".join(["word"] * 12)}))
    kg = kitchen()
    g = _g(kg, ["plate"], ["cupboard"])
    data = PathRetriever(kg, max_hops=2, max_paths=20)(g)
    free = Verbalizer(kg, triples=10, definitions="answer", definition_source=str(j), max_tokens=None)(g, data)
    assert [len(u.split()) for u in free] == [13, 5, 10, 10, 9]
    tight = Verbalizer(kg, triples=10, definitions="answer", definition_source=str(j), max_tokens=20)(g, data)
    # the 13-word definition fits, then the 5-word fact; no longer one does
    assert tight == [free[0], free[1]]
    skip = Verbalizer(kg, triples=10, definitions="answer", definition_source=str(j), max_tokens=12)(g, data)
    assert skip == [free[1]]  # the definition is skipped, the fact that fits is kept


def test_parts_are_the_sentences_of_one_kind_of_the_full_text(tmp_path):
    """A part keeps exactly its kind of the sentences the full verbaliser gives, in order: the
    budget the other kind used is not refilled."""
    j = tmp_path / "defs.json"
    j.write_text(json.dumps({"cupboard": " ".join(["word"] * 12), "plate": "a flat dish"}))
    kg = kitchen()
    g = _g(kg, ["plate"], ["cupboard"])
    data = PathRetriever(kg, max_hops=2, max_paths=20)(g)
    v = Verbalizer(kg, triples=10, definitions="all", definition_source=str(j), max_tokens=32)
    tagged = v.tagged_units(g, data)
    assert [s for _, s in tagged] == v(g, data)
    assert [k for k, _ in tagged] == ["definition", "fact", "fact", "definition"]
    facts, defs = VerbalizerPart(v, "fact")(g, data), VerbalizerPart(v, "definition")(g, data)
    assert facts == ["plate is found at cupboard.", "plate is related to dish, dish is found at cupboard."]
    assert defs == ["cupboard: " + " ".join(["word"] * 12) + ".", "plate: a flat dish."]
    # a verbaliser of facts alone fills the budget with more of them
    alone = Verbalizer(kg, triples=10, definitions="none", max_tokens=32)(g, data)
    assert alone[:2] == facts and len(alone) > len(facts)
    assert VerbalizerPart(v, "fact").text(g, data) == " ".join(facts)
    with pytest.raises(ValueError, match="kind must be one of"):
        VerbalizerPart(v, "triples")


def test_budget_counts_model_tokens():
    from kgfuse.encoders.text import load_tokenizer

    tok = load_tokenizer("all-MiniLM-L6-v2")
    kg = kitchen()
    g = _g(kg, ["plate"], ["cupboard"])
    data = PathRetriever(kg, max_hops=2, max_paths=20)(g)
    v = Verbalizer(kg, triples=10, definitions="none", max_tokens=16, tokenizer=tok)
    out = v(g, data)
    n = [len(tok(u, add_special_tokens=False)["input_ids"]) for u in out]
    # 6 tokens, and the next fact would pass 16 tokens; counted in words (5 + 10) it still fits
    assert out == ["plate is found at cupboard."] and n == [6]
    words = Verbalizer(kg, triples=10, definitions="none", max_tokens=16)(g, data)
    assert words == ["plate is found at cupboard.", "plate is related to dish, dish is found at cupboard."]
    assert v.config["counter"] == "tokenizer"
