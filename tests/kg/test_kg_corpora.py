"""Streamed corpora: text, jsonl, WordNet glosses (hand-written wndb files), OpenBookQA facts."""

from __future__ import annotations

import gzip
import json

import pytest

from kgfuse.kg.corpora import (
    CorpusReport,
    iter_corpora,
    open_corpus,
    openbook_facts,
    read_jsonl,
    read_text,
    split_gloss,
    wordnet_glosses,
)

# Two synsets in the wndb(5WN) layout: offset lex_filenum ss_type w_cnt (word lex_id)+ p_cnt ptrs | gloss
_NOUN = (
    "  1 This software and database is being provided to you, the LICENSEE, by  \n"
    "00001740 03 n 02 dog 0 domestic_dog 0 001 @ 00001930 n 0000 | a member of the genus Canis; "
    '"the dog barked all night"  \n'
    "00001930 03 n 01 animal 0 000 | a living organism; a beast; \"an animal ran\" - Anon  \n"
    "garbage line without fields\n"
    "00002000 03 n 01 cat 0 000 |   \n"
)
_VERB = '00003000 29 v 01 bark 0 000 | make barking sounds; "the dogs barked at the stranger"; "she barks"  \n'


@pytest.fixture()
def wn_dir(tmp_path):
    d = tmp_path / "wn"
    d.mkdir()
    (d / "data.noun").write_text(_NOUN)
    (d / "data.verb").write_text(_VERB)
    return d


def test_split_gloss_definitions_examples_and_attribution():
    assert split_gloss('make barking sounds; "the dogs barked"; "she barks"') == (
        ["make barking sounds"], ["the dogs barked", "she barks"])
    assert split_gloss('a living organism; "one; two" - Anon; a beast') == (["a living organism", "a beast"], ["one; two"])
    assert split_gloss("no examples here") == (["no examples here"], [])


def test_wordnet_glosses_records_meta_and_skips(wn_dir):
    rep = CorpusReport()
    recs = list(wordnet_glosses(wn_dir, pos=("n", "v"), report=rep))
    texts = [r.text for r in recs]
    assert texts == [
        "dog: a member of the genus Canis",
        "the dog barked all night",
        "animal: a living organism",
        "animal: a beast",
        "an animal ran",
        "bark: make barking sounds",
        "the dogs barked at the stranger",
        "she barks",
    ]
    assert recs[0].meta == {"synset": "n:00001740", "lemmas": ["dog", "domestic_dog"], "kind": "definition"}
    assert recs[1].meta["kind"] == "example"
    assert len({r.id for r in recs}) == len(recs)
    assert rep.kept == 8
    assert rep.skipped == {"malformed_synset": 1, "no_gloss": 1}
    only_ex = [r.text for r in wordnet_glosses(wn_dir, pos=("n",), parts=("examples",))]
    assert only_ex == ["the dog barked all night", "an animal ran"]
    no_head = next(iter(wordnet_glosses(wn_dir, pos=("n",), headword=False)))
    assert no_head.text == "a member of the genus Canis"


def test_wordnet_strict_names_file_line_field(wn_dir):
    with pytest.raises(ValueError, match=r"data\.noun, line 4, field 'synset'"):
        list(wordnet_glosses(wn_dir, pos=("n",), strict=True))


def test_wordnet_missing_files_and_bad_args(tmp_path, wn_dir):
    with pytest.raises(FileNotFoundError, match="data.adj"):
        next(iter(wordnet_glosses(wn_dir, pos=("a",))))
    with pytest.raises(ValueError, match="part of speech"):
        next(iter(wordnet_glosses(wn_dir, pos=("x",))))
    with pytest.raises(ValueError, match="parts"):
        next(iter(wordnet_glosses(wn_dir, parts=("glosses",))))


def test_read_text_plain_and_gzip_streams(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("first line\n\n  second line  \nx\n")
    rep = CorpusReport()
    recs = list(read_text(p, min_chars=2, report=rep))
    assert [(r.id, r.text) for r in recs] == [("c.txt:1", "first line"), ("c.txt:3", "second line")]
    assert rep.skipped == {"too_short": 1} and rep.lines == 4
    g = tmp_path / "c.txt.gz"
    with gzip.open(g, "wt", encoding="utf-8") as f:
        f.write("alpha\nbeta\n")
    assert [r.text for r in read_text(g)] == ["alpha", "beta"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe broken\n")
    rep = CorpusReport()
    assert [r.text for r in read_text(bad, report=rep)] == ["ok"]
    assert rep.skipped == {"not_utf8": 1}
    with pytest.raises(ValueError, match=r"bad\.txt, line 2"):
        list(read_text(bad, strict=True))


def test_read_jsonl_fields_errors_and_nested(tmp_path):
    p = tmp_path / "c.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "hello world", "src": "x"}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps({"id": "b"}),
        json.dumps({"id": "c", "text": "   "}),
        json.dumps({"text": "no id"}),
    ]
    p.write_text("\n".join(lines) + "\n")
    rep = CorpusReport()
    recs = list(read_jsonl(p, report=rep))
    assert [(r.id, r.text) for r in recs] == [("a", "hello world"), ("c.jsonl:6", "no id")]
    assert recs[0].meta == {"src": "x"}
    assert rep.skipped == {"invalid_json": 1, "not_an_object": 1, "missing_text": 1, "empty_text": 1}
    with pytest.raises(ValueError, match=r"c\.jsonl, line 2, field '<json>'"):
        list(read_jsonl(p, strict=True))
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"id": "q1", "question": {"stem": "Where is the dog?"}}) + "\n")
    assert [r.text for r in read_jsonl(q, "question.stem")] == ["Where is the dog?"]
    with pytest.raises(ValueError, match=r"line 1, field 'question.choices'"):
        list(read_jsonl(q, "question.choices", strict=True))


def test_openbook_facts_strip_quotes(tmp_path):
    p = tmp_path / "openbook.txt"
    p.write_text('"A bee is a pollinating animal"\n\n"the sun is a star"\n')
    assert [r.text for r in openbook_facts(p)] == ["A bee is a pollinating animal", "the sun is a star"]


def test_open_corpus_specs_relative_paths_limit_and_errors(tmp_path, wn_dir):
    (tmp_path / "a.txt").write_text("one\ntwo\nthree\n")
    assert [r.text for r in open_corpus({"type": "text", "path": "a.txt", "limit": 2}, base_dir=tmp_path)] == ["one", "two"]
    assert [r.text for r in open_corpus(str(tmp_path / "a.txt"))] == ["one", "two", "three"]
    assert len(list(open_corpus({"type": "wordnet_glosses", "path": str(wn_dir), "pos": ["v"]}))) == 3
    with pytest.raises(ValueError, match="corpus type 'book' unknown"):
        open_corpus({"type": "book", "path": "x"})
    with pytest.raises(ValueError, match="unknown option 'field'"):
        open_corpus({"type": "jsonl", "path": "x.jsonl", "field": "t"}, base_dir=tmp_path)
    with pytest.raises(ValueError, match="relative"):
        open_corpus({"type": "text", "path": "a.txt"})
    with pytest.raises(ValueError, match="needs a 'path'"):
        open_corpus({"type": "openbook"})
    reps: list[CorpusReport] = []
    got = [r.text for r in iter_corpora([{"type": "text", "path": "a.txt", "limit": 1},
                                         {"type": "openbook", "path": "a.txt"}], base_dir=tmp_path, reports=reps)]
    assert got == ["one", "one", "two", "three"]
    assert [r.kept for r in reps] == [1, 3]


def test_real_openbook_when_present(shared_data):
    ob = shared_data / "obqa" / "openbook.txt"
    if not ob.is_file():
        pytest.skip("openbook.txt not in the shared data")
    facts = list(openbook_facts(ob))
    assert len(facts) == 1326 and not any(f.text.startswith('"') for f in facts)


def test_real_wordnet_when_installed():
    import itertools

    try:
        recs = list(itertools.islice(wordnet_glosses(pos=("v",)), 50))
    except FileNotFoundError:
        pytest.skip("WordNet database files not installed")
    assert len(recs) == 50 and all(r.text and r.meta["synset"].startswith("v:") for r in recs)
