"""Tests of kgfuse.kg.linking (EntityLinker, Mention, Grounding) and the spaCy component."""

from __future__ import annotations

import json

import pytest

spacy = pytest.importorskip("spacy")

from kgfuse.kg import GraphBuilder  # noqa: E402
from kgfuse.kg.linking import EntityLinker, Grounding, Mention  # noqa: E402

TRIPLES = [
    ("child", "AtLocation", "school"),
    ("running_shoe", "UsedFor", "run"),
    ("t-shirt", "IsA", "clothing"),
    ("revolving_door", "AtLocation", "bank"),
    ("door", "PartOf", "house"),
    ("bank", "IsA", "building"),
    ("security", "RelatedTo", "bank"),
    ("new_york", "IsA", "city"),
    ("my_house", "IsA", "house"),  # begins with a pronoun: filtered
    ("in_the_house", "RelatedTo", "house"),  # contains stopwords: filtered
    ("make", "RelatedTo", "create"),  # MHGRN blacklist
    ("one_two_three_four_five", "RelatedTo", "city"),  # 5 words: filtered
    ("mouse", "IsA", "animal"),
    ("mice", "RelatedTo", "mouse"),
    ("foot", "PartOf", "leg"),
]


@pytest.fixture(scope="module")
def kg():
    b = GraphBuilder()
    for h, r, t in TRIPLES:
        b.add(h, r, t)
    return b.build()


@pytest.fixture(scope="module")
def linker(kg):
    return EntityLinker(kg)


def names(kg, mentions):
    return [(m.text, kg.concept_name(m.concept)) for m in mentions]


def test_lemmatised_and_multiword(kg, linker):
    text = "Where do Children keep their running shoes?"
    ms = linker.link(text)
    assert names(kg, ms) == [("Children", "child"), ("running shoes", "running_shoe")]
    for m in ms:
        assert text[m.start : m.end] == m.text
        assert m.source == "question"


def test_longest_match_wins_and_offsets(kg, linker):
    text = "A revolving  door, a T-shirt and the feet of New York."
    ms = linker.link(text)
    got = names(kg, ms)
    # "revolving  door" has two spaces: a space token breaks the n-gram, so only "door" links
    assert ("door", "door") in got
    assert ("T-shirt", "t-shirt") in got
    assert ("feet", "foot") in got
    assert ("New York", "new_york") in got
    assert all(text[m.start : m.end] == m.text for m in ms)
    ms2 = linker.link("a revolving door")
    assert names(kg, ms2) == [("revolving door", "revolving_door")]  # not "door"
    starts = [m.start for m in ms]
    assert starts == sorted(starts)


def test_surface_preferred_over_lemma(kg):
    surface = EntityLinker(kg, prefer="surface")
    lemma = EntityLinker(kg, prefer="lemma")
    assert names(kg, surface.link("mice")) == [("mice", "mice")]
    assert names(kg, lemma.link("mice")) == [("mice", "mouse")]


def test_mhgrn_filters_and_blacklist(kg, linker):
    assert names(kg, linker.link("my house")) == [("house", "house")]
    assert names(kg, linker.link("in the house")) == [("house", "house")]
    assert linker.link("make") == []
    assert names(kg, linker.link("one two three four five city"))[-1] == ("city", "city")
    custom = EntityLinker(kg, blacklist=["house"])
    assert custom.link("my house") == []
    loose = EntityLinker(kg, mhgrn_filters=False, drop_stopword_concepts=False)
    assert names(kg, loose.link("my house")) == [("my house", "my_house")]
    assert names(kg, loose.link("make")) == [("make", "make")]


def test_no_concept_is_empty_not_error(linker):
    g = linker.ground("Is it?", "xyzzy qwerty")
    assert g.question_concepts == [] and g.answer_concepts == [] and g.mentions == []
    assert linker.link("") == []


def test_ground_question_minus_answer(kg, linker):
    q = "The revolving door of the bank offers security at a what?"
    g = linker.ground(q, "bank")
    assert [kg.concept_name(c) for c in g.answer_concepts] == ["bank"]
    assert [kg.concept_name(c) for c in g.question_concepts] == ["revolving_door", "security"]
    qm = [m for m in g.mentions if m.source == "question"]
    cm = [m for m in g.mentions if m.source == "choice"]
    assert g.mentions == qm + cm
    assert all(q[m.start : m.end] == m.text for m in qm)
    assert all("bank"[m.start : m.end] == m.text for m in cm)


def test_answer_fallback(kg):
    b = GraphBuilder()
    b.add("learn_from_each_other", "RelatedTo", "learn")  # 4 words, contains stopwords: no pattern
    b.add("learn", "RelatedTo", "study")
    b.add("other", "RelatedTo", "study")
    g2 = b.build()
    linker = EntityLinker(g2)
    g = linker.ground("What do people do?", "learned from each other")
    # stopword concepts are pruned: the word fallback finds "learn" (lemma of "learned")
    assert [g2.concept_name(c) for c in g.answer_concepts] == ["learn"]
    assert g.mentions[-1].text == "learned"
    off = EntityLinker(g2, answer_fallback=False, drop_stopword_concepts=False, mhgrn_filters=False)
    assert [g2.concept_name(c) for c in off.ground("?", "learn from each other").answer_concepts] == [
        "learn_from_each_other"
    ]


def test_grounding_json_roundtrip(kg, linker):
    g = linker.ground("Where do children keep running shoes?", "school")
    assert [(m.text, kg.concept_name(m.concept), m.source, m.start, m.end) for m in g.mentions] == [
        ("children", "child", "question", 9, 17), ("running shoes", "running_shoe", "question", 23, 36),
        ("school", "school", "choice", 0, 6)]
    d = json.loads(json.dumps(g.to_dict()))
    back = Grounding.from_dict(d)
    assert back == g and all(type(m) is Mention for m in back.mentions)
    assert (back.question_concepts, back.answer_concepts) == ([kg.concept_id("child"), kg.concept_id("running_shoe")],
                                                              [kg.concept_id("school")])
    with pytest.raises(ValueError, match="mentions"):
        Grounding.from_dict({"question_concepts": [], "answer_concepts": []})


def test_config_is_json(linker):
    cfg = linker.config
    assert json.loads(json.dumps(cfg)) == cfg
    assert EntityLinker(linker.graph, max_words=3).config != cfg


def test_user_pipeline_and_bad_args(kg):
    nlp = spacy.blank("en")
    linker = EntityLinker(kg, nlp)
    assert names(kg, linker.link("Children run")) == [("Children", "child"), ("run", "run")]
    with pytest.raises(ValueError, match="source"):
        linker.link("x", source="answer")
    with pytest.raises(ValueError, match="prefer"):
        EntityLinker(kg, prefer="both")


def test_spacy_component(kg):
    import kgfuse.kg.spacy_component  # noqa: F401  registers the factory

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    comp = nlp.add_pipe("kgfuse_linker", config={"blacklist": ["school"]})
    nlp.initialize()
    with pytest.raises(RuntimeError, match="set_graph"):
        nlp("child")
    comp.set_graph(kg)
    doc = nlp("Children wear running shoes at school. New York!")
    spans = doc.spans["kgfuse_concepts"]
    assert [(s.text, s.label_) for s in spans] == [
        ("Children", "child"),
        ("running shoes", "running_shoe"),
        ("New York", "new_york"),
    ]
    assert [s._.kg_concept for s in spans] == [kg.concept_id(s.label_) for s in spans]
    assert [s.kb_id_ for s in spans] == [str(kg.concept_id(s.label_)) for s in spans]
    # the config round-trips through spaCy's config system
    cfg = nlp.config["components"]["kgfuse_linker"]
    assert cfg["blacklist"] == ["school"] and cfg["graph_path"] is None


def test_spacy_component_from_compiled_graph(kg, tmp_path):
    pytest.importorskip("kgfuse.kg.store")
    import kgfuse.kg.spacy_component  # noqa: F401

    kg.save(tmp_path / "g")
    nlp = spacy.blank("en")
    nlp.add_pipe("kgfuse_linker", config={"graph_path": str(tmp_path / "g")})
    doc = nlp("a revolving door")
    assert [s.label_ for s in doc.spans["kgfuse_concepts"]] == ["revolving_door"]


# ---------------------------------------------------------------- normalisation policies
def _cn4_style_graph():
    from kgfuse.kg import KnowledgeGraph

    names = ["dine room", "glass water", "glass", "water", "put", "kitchen cupboard", "fly", "top shelf", "shelf"]
    return KnowledgeGraph(names, ["atlocation"], head=[1, 5], relation=[0, 0], tail=[0, 0])


def test_conceptnet4_normalisation_drops_stopwords_in_text_only_between_content_words():
    from kgfuse.kg import EntityLinker

    kg = _cn4_style_graph()
    cn4 = EntityLinker(kg, normalize="conceptnet4")
    text = "Where is a glass of water in the dining room?"
    got = {(m.text, kg.concept_name(m.concept)) for m in cn4.link(text)}
    assert got == {("glass of water", "glass water"), ("dining room", "dine room")}
    for m in cn4.link(text):
        assert text[m.start:m.end] == m.text and m.text.split()[0] not in ("a", "the")
    # the default policy keeps every token: no "glass of water" -> glass water
    lemma = EntityLinker(kg)
    assert {kg.concept_name(m.concept) for m in lemma.link(text)} == {"glass", "water", "dine room"}
    # a stopword never starts or ends a mention, and at most two of them are bridged
    assert [m.text for m in cn4.link("on the top of the shelf")] == ["top of the shelf"]
    assert [m.text for m in cn4.link("the top of all of the shelf")] == ["shelf"]
    assert [m.text for m in cn4.link("the top shelf")] == ["top shelf"]
    # choices: the whole choice, stopwords dropped, is tried as one concept
    g = cn4.ground("Where do you put it?", "the kitchen cupboard")
    assert [kg.concept_name(c) for c in g.answer_concepts] == ["kitchen cupboard"]


def test_normalisation_is_in_the_config_and_checked():
    from kgfuse.kg import EntityLinker

    kg = _cn4_style_graph()
    assert EntityLinker(kg).config["normalize"] == "lemma"
    assert EntityLinker(kg, normalize="conceptnet4").config["normalize"] == "conceptnet4"
    with pytest.raises(ValueError, match="normalize must be one of"):
        EntityLinker(kg, normalize="stem")


def test_blacklist_string_is_refused():
    from kgfuse.kg import EntityLinker

    with pytest.raises(TypeError, match="not the string 'plate'"):
        EntityLinker(_cn4_style_graph(), blacklist="plate")
    assert "plate" in EntityLinker(_cn4_style_graph(), blacklist=["plate"]).blacklist
