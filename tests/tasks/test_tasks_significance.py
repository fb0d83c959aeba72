"""Paired comparisons of prediction files: exact McNemar, paired bootstrap, file reading."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kgfuse.tasks.significance import align, compare_runs, mcnemar, paired_bootstrap, read_correct, read_groups


def test_mcnemar_is_the_exact_binomial_test():
    a = [1, 1, 1, 1, 1, 0, 1, 0]
    b = [0, 0, 0, 0, 0, 1, 1, 0]
    a_only, b_only, p = mcnemar(a, b)
    assert (a_only, b_only) == (5, 1)
    assert p == pytest.approx(2 * (1 + 6) / 64)  # 2 P(X <= 1), X ~ Bin(6, 1/2)
    assert mcnemar(b, a)[2] == pytest.approx(p)  # symmetric
    assert mcnemar([1, 0, 1], [1, 0, 1]) == (0, 0, 1.0)
    assert mcnemar([1, 0], [0, 1])[2] == 1.0  # capped at 1
    # 20 against 0: 2 / 2**20
    assert mcnemar([1] * 20, [0] * 20)[2] == pytest.approx(2 / 2**20)
    # a large disagreement stays finite (no float overflow in the binomial sum)
    p_big = mcnemar([1] * 700 + [0] * 600, [0] * 700 + [1] * 600)[2]
    assert 0 < p_big < 0.01 and math.isfinite(p_big)
    with pytest.raises(ValueError, match="same questions"):
        mcnemar([1, 0], [1])


def test_paired_bootstrap_interval():
    rng = np.random.default_rng(1)
    b = rng.random(400) < 0.5
    a = b.copy()
    a[:40] = True  # a is right wherever b is, and on some more questions
    diff, lo, hi = paired_bootstrap(a, b, samples=2000, seed=3)
    assert diff == pytest.approx(a.mean() - b.mean()) and 0 < lo <= diff <= hi
    assert paired_bootstrap(a, b, samples=2000, seed=3) == (diff, lo, hi)  # seeded
    assert paired_bootstrap(b, b, samples=500) == (0.0, 0.0, 0.0)
    # the pairing: identical runs but for a few questions give a narrow interval, far narrower
    # than independent samples of the same accuracies would
    assert hi - lo < 0.06
    # several runs on one side are averaged per question
    two = np.stack([a, b])
    d2, _, _ = paired_bootstrap(two, b, samples=200)
    assert d2 == pytest.approx((a.mean() + b.mean()) / 2 - b.mean())
    with pytest.raises(ValueError, match="same questions"):
        paired_bootstrap(a, b[:10])


def _write(path, recs):
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def test_prediction_files_compared(tmp_path):
    ids = [f"q{i}" for i in range(30)]
    ref = _write(tmp_path / "ref.jsonl", [{"id": i, "correct": k % 2 == 0} for k, i in enumerate(ids)])
    better = _write(tmp_path / "b.jsonl", [{"id": f"q{i}", "correct": i % 2 == 0 or i < 10} for i in reversed(range(30))])
    # order in the file does not matter: questions are matched by id
    assert read_correct(better)["q29"] is False and read_correct(better)["q1"] is True
    (c,) = compare_runs({"ref": [ref], "better": [better]}, "ref", samples=500)
    assert c.name == "better" and c.reference == "ref"
    assert c.accuracy == pytest.approx(20 / 30) and c.reference_accuracy == pytest.approx(0.5)
    assert (c.a_only, c.b_only) == (5, 0) and c.p_mcnemar == pytest.approx(2 / 2**5)
    assert c.difference == pytest.approx(5 / 30) and 0 < c.low <= c.difference <= c.high
    assert "| better | ref |" in c.row() and "p = " in c.row()
    # seeds: no McNemar, accuracy averaged
    (c2,) = compare_runs({"ref": [ref], "both": [better, ref]}, "ref", samples=200)
    assert c2.p_mcnemar is None and c2.accuracy == pytest.approx((c.accuracy + 0.5) / 2)
    # restricted to a bucket of questions
    (c3,) = compare_runs({"ref": [ref], "better": [better]}, "ref", samples=200, questions=ids[:2])
    assert c3.reference_accuracy == pytest.approx(0.5)

    short = _write(tmp_path / "short.jsonl", [{"id": i, "correct": True} for i in ids[:-1]])
    with pytest.raises(ValueError, match="same questions.*q29"):
        compare_runs({"ref": [ref], "s": [short]}, "ref")
    with pytest.raises(ValueError, match="reference 'x'"):
        compare_runs({"ref": [ref]}, "x")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "correct": true}\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2, field 'correct': missing"):
        read_correct(bad)
    bad.write_text('{"id": "a", "correct": true}\n{"id": "a", "correct": false}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2, id 'a', field 'id': given twice"):
        read_correct(bad)
    bad.write_text('{"id": "a", "correct": null}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2: invalid JSON"):
        read_correct(bad)
    with pytest.raises(ValueError, match="no runs"):
        align({})


def test_questions_grouped_by_a_per_question_field(tmp_path):
    per_q = _write(tmp_path / "cov.jsonl", [
        {"data": "dev.jsonl", "id": "q1", "correct_edge": True},
        {"data": "train.jsonl", "id": "t1", "correct_edge": False},
        {"data": "dev.jsonl", "id": "q2", "correct_edge": False},
        {"data": "dev.jsonl", "id": 3, "correct_edge": True},
    ])
    assert read_groups(per_q, "correct_edge", data="dev.jsonl") == {"false": ["q2"], "true": ["q1", "3"]}
    assert read_groups(per_q, "correct_edge") == {"false": ["t1", "q2"], "true": ["q1", "3"]}
    # a path counts by its file name; a file name that no record has is an error, not no groups
    assert read_groups(per_q, "correct_edge", data="/data/csqa/dev.jsonl") == {"false": ["q2"], "true": ["q1", "3"]}
    with pytest.raises(ValueError, match=r"no record has data 'other.jsonl'; its records have data \['dev.jsonl', 'train.jsonl'\]"):
        read_groups(per_q, "correct_edge", data="other.jsonl")
    # the groups restrict a paired comparison to their questions
    ref = _write(tmp_path / "ref.jsonl", [{"id": i, "correct": i != "q2"} for i in ("q1", "q2", "3")])
    other = _write(tmp_path / "o.jsonl", [{"id": i, "correct": True} for i in ("q1", "q2", "3")])
    groups = read_groups(per_q, "correct_edge", data="dev.jsonl")
    (c,) = compare_runs({"ref": [ref], "o": [other]}, "ref", samples=100, questions=groups["false"])
    assert (c.reference_accuracy, c.accuracy) == (0.0, 1.0)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"data": "dev.jsonl", "id": "a", "hops": 1}\n{"data": "dev.jsonl", "id": "b"}\n'
                   '{"data": "train.jsonl", "id": "t", "hops": 2}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2, field 'hops': missing"):
        read_groups(bad, "hops")
    assert read_groups(bad, "hops", data="train.jsonl") == {"2": ["t"]}  # records of other files are not checked
    bad.write_text('{"id": "a", "hops": 1}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2: expected an object, got list"):
        read_groups(bad, "hops")
    bad.write_text('{"id": "a", "hops": 1}\n{not json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2: invalid JSON"):
        read_groups(bad, "hops")


def test_kept_predictions_compare_like_the_full_files(tmp_path):
    """benchmarks/keep_predictions.py keeps id, predicted and correct of each question; a
    comparison of the compact files gives the comparison of the full ones."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "kgfuse_keep_predictions", Path(__file__).resolve().parents[2] / "benchmarks" / "keep_predictions.py")
    keep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(keep)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 60)
    for run in ("a-s0", "b-s0"):
        (tmp_path / run).mkdir()
        for split in ("dev", "test"):
            scores = rng.normal(size=(60, 5))
            with (tmp_path / run / f"predictions-{split}.jsonl").open("w") as f:
                for i, (s, y) in enumerate(zip(scores, labels)):
                    pred = int(s.argmax())
                    f.write(json.dumps({"id": f"q{i}", "question": "?", "choices": list("abcde"), "label": int(y),
                                        "predicted": pred, "correct": bool(pred == y), "scores": s.tolist(),
                                        "explanation": ["x"]}) + "\n")
    kept = tmp_path / "kept"
    assert keep.main([str(tmp_path / "a-s0"), str(tmp_path / "b-s0"), "--to", str(kept)]) == 0
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*.jsonl")) == [
        "a-s0/dev.jsonl", "a-s0/test.jsonl", "b-s0/dev.jsonl", "b-s0/test.jsonl"]
    assert set(json.loads((kept / "a-s0" / "dev.jsonl").read_text().splitlines()[0])) == {"id", "predicted", "correct"}
    for split in ("dev", "test"):
        full = compare_runs({"a": [tmp_path / "a-s0" / f"predictions-{split}.jsonl"],
                             "b": [tmp_path / "b-s0" / f"predictions-{split}.jsonl"]}, "a", samples=500)
        small = compare_runs({"a": [kept / "a-s0" / f"{split}.jsonl"], "b": [kept / "b-s0" / f"{split}.jsonl"]}, "a",
                             samples=500)
        assert [c.row() for c in full] == [c.row() for c in small]
    with pytest.raises(SystemExit, match="no predictions"):
        keep.keep(tmp_path / "kept", tmp_path / "again")
