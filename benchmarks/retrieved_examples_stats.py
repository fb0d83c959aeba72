"""What the retrieved training examples of ``knowledge_text.examples`` offer an evaluation set.

For every evaluation question, the ``k`` training questions BM25 retrieves (never the question
itself), and how their answers relate to the question's choices: how often one of them is the
correct choice, a wrong choice, or no choice at all; with CommonsenseQA's ``question_concept``,
how often a retrieved question was written from the same ConceptNet concept (CommonsenseQA's
crowd workers wrote several questions per source concept, whose answer sets overlap). Also
the tokens the examples add after each (question, choice) pair (``--tokenizer``, the examples
plus one separator, before any cut to ``train.max_length``), the index build time and the
retrieval time per question, on this machine.

    python benchmarks/retrieved_examples_stats.py --train ../shared/data/csqa/train_ih.jsonl \\
        --eval ../shared/data/csqa/dev_rand_split.jsonl --k 3

``--per-question FILE`` also writes one JSON line per evaluation question (``data``: the
evaluation file's name, ``id``, and ``example_pattern``: whether the retrieved answers include
the correct choice, a wrong one, both or no choice), which ``compare_predictions.py --by FILE
--field example_pattern`` uses to split a paired comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", required=True, help="training file (any format kgfuse reads)")
    ap.add_argument("--eval", required=True, help="evaluation file, labelled")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--tokenizer", default="all-MiniLM-L6-v2", help="counts the tokens added")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--per-question", help="also write one JSON line per evaluation question here")
    a = ap.parse_args(argv)

    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.retrieved_examples import ExampleRetriever

    train, _ = load_examples(a.train)
    ev, _ = load_examples(a.eval)
    ev = [e for e in ev if e.label is not None]
    t = time.perf_counter()
    r = ExampleRetriever(train, k=a.k)
    build = time.perf_counter() - t
    concept = {x.id: (x.meta or {}).get("question_concept") for x in train}
    n = len(ev)
    counts = {"none": 0, "some_answer_is_a_choice": 0, "correct": 0, "wrong": 0, "same_concept": 0}
    retrieved = 0
    rows = []
    t = time.perf_counter()
    for e in ev:
        idx = r.retrieve(e.question, e.id)
        retrieved += len(idx)
        answers = [r.records[i][2].lower().strip() for i in idx]
        choices = [c.lower().strip() for c in e.choices]
        gold = choices[e.label]
        if not idx:
            counts["none"] += 1
        if any(x in choices for x in answers):
            counts["some_answer_is_a_choice"] += 1
        if gold in answers:
            counts["correct"] += 1
        wrong = any(x in choices and x != gold for x in answers)
        if wrong:
            counts["wrong"] += 1
        rows.append((e.id, gold in answers, wrong))
        qc = (e.meta or {}).get("question_concept")
        if qc and any(concept.get(r.records[i][0]) == qc for i in idx):
            counts["same_concept"] += 1
    per_query = (time.perf_counter() - t) / max(n, 1)
    from kgfuse.encoders.text import load_tokenizer

    tok = load_tokenizer(a.tokenizer)
    texts = [" ".join(r.units(e.question, e.id)) for e in ev]
    added = sorted(len(x) + 1 if x else 0 for x in tok(texts, add_special_tokens=False)["input_ids"])
    has_concepts = any(concept.values())
    out = {
        "train": a.train, "eval": a.eval, "k": a.k, "indexed": len(r), "eval_questions": n,
        "index_build_s": round(build, 3), "retrieval_ms_per_question": round(per_query * 1000, 2),
        "mean_retrieved": round(retrieved / max(n, 1), 3),
        "tokens_added": {"tokenizer": a.tokenizer, "mean": round(sum(added) / max(n, 1), 2),
                         "median": added[n // 2] if n else 0, "p90": added[int(0.9 * (n - 1))] if n else 0},
        "share_no_example": round(counts["none"] / n, 4),
        "share_a_retrieved_answer_is_a_choice": round(counts["some_answer_is_a_choice"] / n, 4),
        "share_correct_answer_retrieved": round(counts["correct"] / n, 4),
        "share_a_wrong_choice_retrieved": round(counts["wrong"] / n, 4),
        "share_same_question_concept": round(counts["same_concept"] / n, 4) if has_concepts else None,
    }
    print(json.dumps(out, indent=1))
    if a.per_question:
        name = os.path.basename(a.eval)
        with open(a.per_question, "w") as f:
            for qid, correct, wrong in rows:
                pattern = {(True, True): "correct and wrong", (True, False): "correct only",
                           (False, True): "wrong only", (False, False): "no choice"}[correct, wrong]
                f.write(json.dumps({"data": name, "id": qid, "example_pattern": pattern}) + "\n")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
