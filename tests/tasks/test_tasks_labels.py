"""Labels and choices: a labelled file with a missing or unknown label, or a question with
another number of choices, is an error naming file, line, id and field (a counted skip in
lenient mode, reported in metrics.json); unlabelled rows never change another row's loss or
accuracy. Real loaders, tokenizer, collator, model and training loop on small files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from kgfuse.tasks.cli import data_dir
from kgfuse.tasks.config import TrainConfig
from kgfuse.tasks.datasets import DataFormatError, load_csqa, load_examples, load_swag
from kgfuse.tasks.features import IGNORE_INDEX
from kgfuse.tasks.pipeline import load_splits

MISSING = "missing (the other records of this file are labelled)"


def _sample_dev() -> list[dict]:
    return [json.loads(l) for l in (data_dir() / "sample_csqa/dev.jsonl").read_text().splitlines() if l.strip()]


def _write(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _dev_with_problems(path: Path) -> Path:
    """The 12 sample dev questions; line 3 lacks its answerKey, line 5 has 3 of 5 choices."""
    recs = _sample_dev()
    del recs[2]["answerKey"]
    recs[4]["question"]["choices"] = recs[4]["question"]["choices"][:3]
    recs[4]["answerKey"] = "A"
    return _write(path, recs)


def _data_config(tmp_path: Path, **data) -> TrainConfig:
    return TrainConfig.from_dict({"data": data, "output_dir": str(tmp_path / "run")})


# --------------------------------------------------------------------------------------
# loading


def test_missing_answer_key_names_file_line_id_field(tmp_path):
    recs = _sample_dev()[:4]
    del recs[2]["answerKey"]
    p = _write(tmp_path / "dev.jsonl", recs)
    with pytest.raises(DataFormatError) as ei:
        load_csqa(p)
    e = ei.value
    assert str(e) == f"{p}, line 3, id 'kgfuse-sample-dev-002', field 'answerKey': {MISSING}"
    assert (e.path, e.line, e.id, e.field, e.reason) == (str(p), 3, "kgfuse-sample-dev-002", "answerKey", "missing_label")
    recs[2]["answerKey"] = ""  # an empty answerKey is no answer either
    with pytest.raises(DataFormatError, match="line 3, id 'kgfuse-sample-dev-002', field 'answerKey': missing"):
        load_csqa(_write(p, recs))


def test_unknown_answer_key_is_an_error_with_the_id(tmp_path):
    recs = _sample_dev()[:3]
    recs[1]["answerKey"] = "F"
    p = _write(tmp_path / "dev.jsonl", recs)
    with pytest.raises(DataFormatError) as ei:
        load_csqa(p)
    assert str(ei.value) == (f"{p}, line 2, id 'kgfuse-sample-dev-001', field 'answerKey': "
                             "answer 'F' is not one of the choice labels ['A', 'B', 'C', 'D', 'E']")
    _, rep = load_csqa(p, lenient=True)
    assert rep.reasons == {"unknown_label": 1} and rep.loaded == 2


def test_wholly_unlabelled_file_loads_for_prediction_but_not_for_training(tmp_path):
    recs = _sample_dev()
    for r in recs:
        del r["answerKey"]
    p = _write(tmp_path / "test.jsonl", recs)
    exs, rep = load_csqa(p)
    assert len(exs) == 12 and all(e.label is None for e in exs)
    assert rep.labelled is False and rep.unlabeled == 12 and rep.skipped == 0
    with pytest.raises(DataFormatError) as ei:
        load_csqa(p, labels="required", lenient=True)
    assert str(ei.value) == f"{p}, field 'answerKey': no record has a label, but this split must be labelled"
    with pytest.raises(DataFormatError, match="this split must be labelled"):
        load_splits(_data_config(tmp_path, format="csqa", train=str(p)))
    splits, reports = load_splits(_data_config(tmp_path, format="csqa", train=str(data_dir() / "sample_csqa/train.jsonl"),
                                               test=str(p)))
    assert len(splits["test"]) == 12 and reports["test"].labelled is False and reports["test"].used == 12


def test_wrong_choice_count_is_an_error_at_load(tmp_path):
    recs = _sample_dev()[:6]
    recs[3]["question"]["choices"] = recs[3]["question"]["choices"][:3]
    recs[3]["answerKey"] = "C"
    p = _write(tmp_path / "dev.jsonl", recs)
    with pytest.raises(DataFormatError) as ei:
        load_csqa(p)
    assert str(ei.value) == (f"{p}, line 4, id 'kgfuse-sample-dev-003', field 'choices': "
                             "3 choices, but the other 5 record(s) of this file have 5")
    assert ei.value.reason == "choice_count"
    exs, rep = load_csqa(p, lenient=True)
    assert [len(e.choices) for e in exs] == [5] * 5 and rep.reasons == {"choice_count": 1} and rep.num_choices == 5
    mc = _write(tmp_path / "mc.jsonl", [{"id": "a", "question": "q?", "choices": ["x", "y", "z"], "label": 0},
                                        {"id": "b", "question": "r?", "choices": ["x", "y"], "label": 1}])
    with pytest.raises(DataFormatError, match=r"line 2, id 'b', field 'choices': 2 choices, but the other 1 record\(s\) "
                                              r"of this file have 3"):
        load_examples(mc)


SWAG_HEADER = ",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3"
SWAG_ROWS = [
    '0,vid_a,11,"He opens the door. He",He opens the door.,He,gold,"walks in, smiling.",eats the door.,flies away.,sings a door.',
    "1,vid_b,12,The cat sits. It,The cat sits.,It,gold,purrs.,barks loudly.,drives a car.,melts.",
]


def test_swag_csv_without_label_column_is_not_silently_unlabelled(tmp_path):
    p = tmp_path / "val.csv"
    p.write_text("\n".join([SWAG_HEADER, *SWAG_ROWS]) + "\n")
    msg = (f"{p}, line 1, field 'label': csv header has no 'label' column, but SWAG train and val files are labelled; "
           "load an unlabelled file as data.test or with labels='optional'")
    for policy in ("auto", "required"):
        with pytest.raises(DataFormatError) as ei:
            load_examples(p, labels=policy, lenient=True)
        assert str(ei.value) == msg
    exs, rep = load_swag(p, labels="optional")
    assert [e.label for e in exs] == [None, None] and rep.labelled is False and rep.unlabeled == 2
    train = tmp_path / "train.csv"
    train.write_text("\n".join([SWAG_HEADER + ",label", SWAG_ROWS[0] + ",0", SWAG_ROWS[1] + ",1"]) + "\n")
    with pytest.raises(DataFormatError, match="no 'label' column"):
        load_splits(_data_config(tmp_path, format="swag", train=str(train), dev=str(p)))
    splits, reports = load_splits(_data_config(tmp_path, format="swag", train=str(train), test=str(p)))
    assert [e.label for e in splits["train"]] == [0, 1] and [e.label for e in splits["test"]] == [None, None]
    # with the column, an empty cell in a labelled file is a missing label
    train.write_text("\n".join([SWAG_HEADER + ",label", SWAG_ROWS[0] + ",0", SWAG_ROWS[1] + ","]) + "\n")
    with pytest.raises(DataFormatError) as ei:
        load_swag(train)
    assert str(ei.value) == f"{train}, line 3, id 'vid_b-12', field 'label': {MISSING}"


def test_swag_json_minus_one_is_no_label(tmp_path):
    rec = {"sent1": "A man sits.", "sent2": "He", "ending0": "stands.", "ending1": "x.", "ending2": "y.", "ending3": "z."}
    p = tmp_path / "test.json"
    p.write_text(json.dumps([dict(rec, id="a", label=-1), dict(rec, id="b", label=-1)]))
    exs, rep = load_swag(p)
    assert [e.label for e in exs] == [None, None] and rep.labelled is False
    p.write_text(json.dumps([dict(rec, id="a", label=2), dict(rec, id="b", label=-1)]))
    with pytest.raises(DataFormatError, match=re.escape(f"line 2, id 'b', field 'label': {MISSING}")):
        load_swag(p)


def test_load_splits_strict_and_lenient_reports(tmp_path):
    dev = _dev_with_problems(tmp_path / "dev.jsonl")
    train = str(data_dir() / "sample_csqa/train.jsonl")
    with pytest.raises(DataFormatError) as ei:
        load_splits(_data_config(tmp_path, format="csqa", train=train, dev=str(dev)))
    assert str(ei.value) == f"{dev}, line 3, id 'kgfuse-sample-dev-002', field 'answerKey': {MISSING}"
    splits, reports = load_splits(_data_config(tmp_path, format="csqa", train=train, dev=str(dev), lenient=True, max_eval=4))
    r = reports["dev"]
    assert (r.read, r.loaded, r.used, r.skipped) == (12, 10, 4, 2)
    assert r.reasons == {"missing_label": 1, "choice_count": 1}
    assert len(splits["dev"]) == 4 and "kgfuse-sample-dev-002" not in {e.id for e in splits["dev"]}
    assert "2 skipped (choice_count: 1, missing_label: 1), 4 used" in str(r)


# --------------------------------------------------------------------------------------
# collation, loss and evaluation with unlabelled rows


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, tiny_config):
    """A tiny LM-only run built by build_run (real tokenizer, collator and model)."""
    from kgfuse.tasks.pipeline import build_run

    root = tmp_path_factory.mktemp("labels_run")
    cfg = tiny_config(root / "run", root / "cache")
    cfg.model.lm_only = True
    return build_run(cfg, progress=False)


def _mixed_examples(labelled: list[int]):
    exs, _ = load_examples(data_dir() / "sample_csqa/dev.jsonl")
    for i, ex in enumerate(exs):
        if i not in labelled:
            ex.label = None
    return exs


def test_collator_keeps_labels_of_a_mixed_batch(lm_run):
    from kgfuse.tasks.pipeline import TextOnlyDataset

    exs = _mixed_examples([0, 2])[:3]
    ds = TextOnlyDataset(exs, lm_run.tokenizer, max_length=40)
    batch = lm_run.collator([ds[0], ds[1], ds[2]])
    assert batch["labels"].tolist() == [exs[0].label, IGNORE_INDEX, exs[2].label]
    assert batch["input_ids"].shape[:2] == (3, 5)
    assert "labels" not in lm_run.collator([ds[1]])
    # the loss is the loss of the labelled rows alone
    model = lm_run.model.eval()
    with torch.no_grad():
        out = model(**batch)
        keep = torch.tensor([0, 2])
        expected = torch.nn.functional.cross_entropy(out.logits[keep], batch["labels"][keep])
    assert torch.isfinite(out.loss) and out.loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_evaluation_counts_each_labelled_question_once(lm_run):
    from torch.utils.data import DataLoader

    from kgfuse.tasks.pipeline import TextOnlyDataset
    from kgfuse.tasks.train import accuracy, make_accelerator, predict_scores

    labelled = [0, 2, 3, 6]
    exs = _mixed_examples(labelled)[:7]
    ds = TextOnlyDataset(exs, lm_run.tokenizer, max_length=40)
    acc = make_accelerator(lm_run.config.train, cpu=True)
    model = acc.prepare(lm_run.model)
    # batches [0 1 2] [3 4 5] [6]: every batch but the last mixes labelled and unlabelled rows
    loader = acc.prepare(DataLoader(ds, batch_size=3, shuffle=False, collate_fn=lm_run.collator))
    scores, labels = predict_scores(model, loader, acc)
    assert labels.tolist() == [exs[0].label, IGNORE_INDEX, exs[2].label, exs[3].label, IGNORE_INDEX, IGNORE_INDEX, exs[6].label]
    m = accuracy(scores, labels)
    correct = sum(int(scores[i].argmax() == exs[i].label) for i in labelled)
    assert (m["count"], m["total"], m["correct"]) == (4, 7, correct)


# --------------------------------------------------------------------------------------
# a whole run: skips reported in metrics.json, the denominator is the labelled questions


@pytest.fixture(scope="module")
def lenient_run(tmp_path_factory, tiny_config):
    from kgfuse.tasks.train import train

    root = tmp_path_factory.mktemp("lenient_run")
    dev = _dev_with_problems(root / "dev.jsonl")
    test = _sample_dev()
    for r in test:
        del r["answerKey"]
    test = _write(root / "test.jsonl", test)
    cfg = tiny_config(root / "run", root / "cache", epochs=1)
    cfg.model.lm_only = True
    cfg.data.dev, cfg.data.test, cfg.data.lenient = str(dev), str(test), True
    res = train(cfg, progress=False)
    return dev, test, res


def test_lenient_skips_are_in_metrics_json(lenient_run):
    dev, test, res = lenient_run
    m = json.loads((res.output_dir / "metrics.json").read_text())
    assert m["data"]["dev"] == {
        "path": str(dev), "format": "csqa", "read": 12, "loaded": 10, "used": 10, "skipped": 2,
        "skipped_by_reason": {"missing_label": 1, "choice_count": 1}, "unlabeled": 0, "labelled": True, "num_choices": 5,
        "problems": [f"{dev}, line 3, id 'kgfuse-sample-dev-002', field 'answerKey': {MISSING}",
                     f"{dev}, line 5, id 'kgfuse-sample-dev-004', field 'choices': 3 choices, but the other 11 record(s) "
                     "of this file have 5"],
    }
    assert m["data"]["train"]["read"] == m["data"]["train"]["used"] == 26 and m["data"]["train"]["skipped"] == 0
    assert m["data"]["test"]["labelled"] is False and m["data"]["test"]["unlabeled"] == 12
    assert (m["splits"]["dev"]["count"], m["splits"]["dev"]["total"]) == (10, 10)
    assert m["splits"]["train"]["count"] == 26
    assert m["splits"]["test"] == {"accuracy": None, "correct": 0, "count": 0, "total": 12}
    assert m["history"][0]["dev_count"] == 10
    report = (res.output_dir / "report.md").read_text()
    assert "| dev | `dev.jsonl` | 12 | 10 | 2 (choice_count: 1, missing_label: 1) | 0 |" in report
    preds = [json.loads(l) for l in (res.output_dir / "predictions-dev.jsonl").read_text().splitlines()]
    assert len(preds) == 10 and sum(r["correct"] for r in preds) == m["splits"]["dev"]["correct"]
