"""Data loaders: official formats, labels-less files, errors naming file/line/field, lenient mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kgfuse.tasks.datasets import (
    DataFormatError,
    MCExample,
    examples_hash,
    load_csqa,
    load_csqa_inhouse,
    load_examples,
    load_mc,
    load_obqa,
    load_swag,
    save_mc,
    sniff_format,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _nested(i, answer="B", n=5, stem=None):
    letters = "ABCDE"[:n]
    return {
        "answerKey": answer,
        "id": f"q{i}",
        "question": {
            "question_concept": "dog",
            "choices": [{"label": l, "text": f"choice {l.lower()} {i}"} for l in letters],
            "stem": stem or f"Where does dog number {i} sleep?",
        },
    }


def _write_jsonl(path: Path, recs) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in recs))
    return path


def test_csqa_nested_form(tmp_path):
    p = _write_jsonl(tmp_path / "train.jsonl", [_nested(0, "A"), _nested(1, "E")])
    exs, rep = load_csqa(p)
    assert [e.label for e in exs] == [0, 4]
    assert exs[0].choices[0] == "choice a 0" and exs[0].question == "Where does dog number 0 sleep?"
    assert exs[0].meta["question_concept"] == "dog" and exs[0].meta["choice_labels"] == list("ABCDE")
    assert rep.loaded == 2 and rep.skipped == 0


def test_csqa_flat_hf_form_equals_nested(tmp_path):
    rec = _nested(3, "C")
    flat = {
        "id": rec["id"],
        "question": rec["question"]["stem"],
        "question_concept": "dog",
        "choices": {"label": [c["label"] for c in rec["question"]["choices"]], "text": [c["text"] for c in rec["question"]["choices"]]},
        "answerKey": "C",
    }
    a, _ = load_csqa(_write_jsonl(tmp_path / "a.jsonl", [rec]))
    b, _ = load_csqa(_write_jsonl(tmp_path / "b.jsonl", [flat]))
    assert a == b


def test_unlabeled_file_loads_for_prediction(tmp_path):
    rec = _nested(0)
    del rec["answerKey"]
    flat_empty = {"id": "x", "question": "q?", "choices": {"label": list("ABCDE"), "text": list("abcde")}, "answerKey": ""}
    exs, rep = load_csqa(_write_jsonl(tmp_path / "test.jsonl", [rec, flat_empty]))
    assert [e.label for e in exs] == [None, None] and rep.unlabeled == 2


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.pop("id"), "id"),
        (lambda r: r["question"].pop("stem"), "question.stem"),
        (lambda r: r["question"]["choices"][2].update(text=""), "question.choices[2].text"),
        (lambda r: r.update(answerKey="Z"), "answerKey"),
        (lambda r: r["question"].update(choices="abc"), "question.choices"),
    ],
)
def test_malformed_record_names_file_line_field(tmp_path, mutate, field):
    bad = _nested(1)
    mutate(bad)
    p = _write_jsonl(tmp_path / "bad.jsonl", [_nested(0), bad, _nested(2)])
    with pytest.raises(DataFormatError) as ei:
        load_csqa(p)
    err = ei.value
    assert err.path == str(p) and err.line == 2 and err.field == field
    assert str(p) in str(err) and "line 2" in str(err) and field in str(err)


def test_lenient_skips_and_reports(tmp_path):
    bad = _nested(1)
    bad["answerKey"] = "Q"
    p = _write_jsonl(tmp_path / "mixed.jsonl", [_nested(0), bad, "{not json", _nested(3), _nested(0)])
    with pytest.raises(DataFormatError, match="line 3"):
        load_csqa(_write_jsonl(tmp_path / "m2.jsonl", [_nested(0), _nested(1), "{not json"]))
    exs, rep = load_csqa(p, lenient=True)
    assert [e.id for e in exs] == ["q0", "q3"]
    assert rep.loaded == 2 and rep.skipped == 3
    assert any("line 2" in s and "answerKey" in s for s in rep.problems)
    assert any("line 3" in s and "invalid JSON" in s for s in rep.problems)
    assert any("line 5" in s and "duplicate id" in s for s in rep.problems)
    assert "3 skipped" in str(rep)


def test_inhouse_split(tmp_path):
    train = _write_jsonl(tmp_path / "train.jsonl", [_nested(i) for i in range(6)])
    dev = _write_jsonl(tmp_path / "dev.jsonl", [_nested(10 + i) for i in range(2)])
    qids = tmp_path / "inhouse_split_qids.txt"
    qids.write_text("q4\nq1\n\nq2\n")
    s = load_csqa_inhouse(train, dev, qids)
    assert [e.id for e in s["train"][0]] == ["q4", "q1", "q2"]
    assert [e.id for e in s["test"][0]] == ["q0", "q3", "q5"]
    assert [e.id for e in s["dev"][0]] == ["q10", "q11"]
    qids.write_text("q4\nq9\n")
    with pytest.raises(DataFormatError, match="line 2") as ei:
        load_csqa_inhouse(train, dev, qids)
    assert ei.value.path == str(qids)
    s = load_csqa_inhouse(train, dev, qids, lenient=True)
    assert [e.id for e in s["train"][0]] == ["q4"] and s["train"][1].skipped == 1


def test_obqa_requires_four_choices_and_keeps_fact(tmp_path):
    rec = _nested(0, "D", n=4)
    rec["fact1"] = "dogs sleep in beds"
    exs, _ = load_obqa(_write_jsonl(tmp_path / "obqa.jsonl", [rec]))
    assert exs[0].label == 3 and exs[0].meta["fact1"] == "dogs sleep in beds"
    assert sniff_format(tmp_path / "obqa.jsonl") == "obqa"
    with pytest.raises(DataFormatError, match="expected 4 choices"):
        load_obqa(_write_jsonl(tmp_path / "o5.jsonl", [_nested(0)]))


SWAG_CSV = """,video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label
0,vid_a,11,"He opens the door. He",He opens the door.,He,gold,"walks in, smiling.",eats the door.,flies away.,sings a door.,0
1,vid_b,12,The cat sits. It,The cat sits.,It,gold,purrs.,barks loudly.,drives a car.,melts.,1
"""


def test_swag_csv(tmp_path):
    p = tmp_path / "val.csv"
    p.write_text(SWAG_CSV)
    exs, rep = load_swag(p)
    assert exs[0].id == "vid_a-11" and exs[0].question == "He opens the door."
    assert exs[0].choices == ["He walks in, smiling.", "He eats the door.", "He flies away.", "He sings a door."]
    assert exs[0].label == 0 and exs[1].label == 1 and rep.unlabeled == 0
    assert exs[0].meta["startphrase"] == "He opens the door. He"
    bad = tmp_path / "bad.csv"
    bad.write_text(SWAG_CSV.replace(",0\n", ",7\n"))
    with pytest.raises(DataFormatError) as ei:
        load_swag(bad)
    assert ei.value.line == 2 and ei.value.field == "label"
    hdr = tmp_path / "hdr.csv"
    hdr.write_text("sent1,ending0\nx,y\n")
    with pytest.raises(DataFormatError, match="sent2"):
        load_swag(hdr)


def test_swag_hf_json_list_and_jsonl(tmp_path):
    recs = [{"sent1": "A man sits.", "sent2": "He", "ending0": "stands.", "ending1": "x.", "ending2": "y.", "ending3": "z.", "label": 2}]
    (tmp_path / "a.json").write_text(json.dumps(recs))
    _write_jsonl(tmp_path / "b.jsonl", recs)
    a, _ = load_examples(tmp_path / "a.json")
    b, _ = load_examples(tmp_path / "b.jsonl")
    assert a[0].choices == b[0].choices == ["He stands.", "He x.", "He y.", "He z."] and a[0].label == 2
    recs[0].pop("ending3")
    (tmp_path / "c.json").write_text(json.dumps(recs))
    with pytest.raises(DataFormatError, match="ending3"):
        load_swag(tmp_path / "c.json")


def test_generic_mc_roundtrip(tmp_path):
    exs = [MCExample("a", "Is it?", ["yes", "no", "maybe"], 1, {"k": 1}), MCExample("b", "Why?", ["x", "y", "z"], 0)]
    p = save_mc(exs, tmp_path / "d.jsonl")
    back, rep = load_mc(p)
    assert back == exs and rep.unlabeled == 0
    assert sniff_format(p) == "mc"
    assert examples_hash(back) == examples_hash(exs)
    assert examples_hash(back[:1]) != examples_hash(exs)
    _write_jsonl(tmp_path / "e.jsonl", [{"id": "a", "question": "q", "choices": ["x", "y"], "label": 2}])
    with pytest.raises(DataFormatError, match="out of range"):
        load_mc(tmp_path / "e.jsonl")


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_examples(tmp_path / "nope.jsonl")
    p = _write_jsonl(tmp_path / "x.jsonl", [_nested(0)])
    with pytest.raises(ValueError, match="valid"):
        load_examples(p, format="squad")


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "csqa").is_dir(), reason="../shared/data not present")
def test_real_csqa_obqa_swag():
    s = load_csqa_inhouse(SHARED / "csqa/train_ih.jsonl", SHARED / "csqa/dev_rand_split.jsonl", SHARED / "csqa/inhouse_split_qids.txt")
    assert len(s["train"][0]) == 8500 and len(s["dev"][0]) == 1221
    assert all(len(e.choices) == 5 and e.label is not None for e in s["dev"][0])
    test, rep = load_examples(SHARED / "csqa/test_rand_split_no_answers.jsonl")
    assert len(test) == 1140 and rep.unlabeled == 1140
    ob, _ = load_obqa(SHARED / "obqa/dev.jsonl")
    assert len(ob) == 500 and all(len(e.choices) == 4 for e in ob)
    sw, _ = load_examples(SHARED / "swag/val-sample.csv")
    assert len(sw) == 11 and all(e.label in range(4) for e in sw)
    hf, _ = load_examples(SHARED / "swag/train-sample.json")
    assert len(hf) == 10
