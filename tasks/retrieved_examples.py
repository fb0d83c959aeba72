"""Retrieved training examples as knowledge text (KEAR, Xu et al., 2022).

KEAR appends to each (question, choice) pair, besides graph facts and dictionary
definitions, the training questions most similar to the question, each with its correct
answer. :class:`ExampleRetriever` does that retrieval: Okapi BM25 over the training
questions' words (lower-cased, stop words dropped), best first, ties broken by file order::

    r = ExampleRetriever(train_examples, k=3)
    r.units("Where would you put a dirty plate?", exclude_id="q17")
    # ['Where do you put a plate after dinner? sink.', ...]

A question never retrieves itself: a record with the same id or with the same question text
(lower-cased, whitespace collapsed) is skipped, in training, evaluation and inference alike,
so a training question cannot read its own answer. Only labelled examples are indexed.

With ``knowledge_text.examples: K`` the units follow the graph knowledge of every choice
(the same K units for all choices of a question), and :func:`kgfuse.tasks.features.append_knowledge`
cuts whole units from the end when ``train.max_length`` is reached. The examples are saved
next to a trained model (:data:`EXAMPLES_FILE`), so inference on raw text retrieves from the
same set; :attr:`ExampleRetriever.config` records their content hash. Importing this module
loads neither torch nor spaCy.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

__all__ = ["ExampleRetriever", "EXAMPLES_FILE", "example_terms"]

#: The file of a saved model folder that holds the retrievable examples (JSON lines of
#: ``{"id", "question", "answer"}``).
EXAMPLES_FILE = "knowledge_examples.jsonl"

_WORD = re.compile(r"[a-z0-9]+")


def example_terms(text: str) -> list[str]:
    """The BM25 terms of a text: lower-cased words and numbers, stop words dropped."""
    from kgfuse.kg.linking import NLTK_STOPWORDS

    return [w for w in _WORD.findall(text.lower()) if w not in NLTK_STOPWORDS]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


class ExampleRetriever:
    """The ``k`` labelled examples whose questions are most similar to a question (BM25).

    Args:
        records: :class:`~kgfuse.tasks.data_types.MCExample` objects (unlabelled ones are not
            indexed) or ``(id, question, answer)`` triples.
        k: examples per question.
        k1, b: the BM25 parameters (term-frequency saturation, length normalisation).
    """

    def __init__(self, records: Iterable[Any], *, k: int = 3, k1: float = 1.2, b: float = 0.75) -> None:
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k, self.k1, self.b = int(k), float(k1), float(b)
        rows: list[tuple[str, str, str]] = []
        for r in records:
            if isinstance(r, tuple):
                rows.append((str(r[0]), str(r[1]), str(r[2])))
            elif getattr(r, "label", None) is not None:
                rows.append((str(r.id), str(r.question), str(r.choices[r.label])))
        self.records = rows
        self._norms = [_norm(q) for _, q, _ in rows]
        self._postings: dict[str, list[tuple[int, int]]] = {}
        lengths = []
        for i, (_, q, _) in enumerate(rows):
            tf = Counter(example_terms(q))
            lengths.append(sum(tf.values()))
            for t, n in tf.items():
                self._postings.setdefault(t, []).append((i, n))
        avg = (sum(lengths) / len(lengths)) if lengths else 1.0
        # BM25's length term of each record, computed once: k1 * (1 - b + b * |d| / avgdl)
        self._length_norm = [self.k1 * (1.0 - self.b + self.b * n / (avg or 1.0)) for n in lengths]
        n = len(rows)
        self._idf = {t: math.log(1.0 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self._postings.items()}
        #: sha256 (first 16 hex digits) of the indexed ``(id, question, answer)`` records
        self.content_hash = hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]
        self._memo: dict[tuple[str, str | None], tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able description of everything that decides the retrieved units."""
        return {"type": "bm25", "k": self.k, "k1": self.k1, "b": self.b, "examples": len(self.records),
                "hash": self.content_hash}

    def scores(self, question: str) -> dict[int, float]:
        """BM25 score of every record sharing a term with ``question`` (record index -> score)."""
        out: dict[int, float] = {}
        k1, norm = self.k1, self._length_norm
        for t, qn in Counter(example_terms(question)).items():
            idf = self._idf.get(t)
            if idf is None:
                continue
            for i, n in self._postings[t]:
                out[i] = out.get(i, 0.0) + qn * idf * n * (k1 + 1.0) / (n + norm[i])
        return out

    def retrieve(self, question: str, exclude_id: str | None = None) -> tuple[int, ...]:
        """Indices of the ``k`` best records for ``question``, best first (ties: file order),
        never one with id ``exclude_id`` or with the same question text; nor two with the same
        question text. Remembered per (question, id): every epoch asks again."""
        key = (question, exclude_id)
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = self._retrieve(question, exclude_id)
        return got

    def _retrieve(self, question: str, exclude_id: str | None) -> tuple[int, ...]:
        own = _norm(question)
        ranked = sorted(self.scores(question).items(), key=lambda kv: (-kv[1], kv[0]))
        out: list[int] = []
        seen = {own}
        for i, s in ranked:
            if s <= 0:
                break
            if (exclude_id is not None and self.records[i][0] == exclude_id) or self._norms[i] in seen:
                continue
            seen.add(self._norms[i])
            out.append(i)
            if len(out) == self.k:
                break
        return tuple(out)

    def render(self, i: int) -> str:
        """Record ``i`` as one knowledge unit: ``"<question> <answer>."``."""
        _, q, a = self.records[i]
        return f"{' '.join(q.split())} {' '.join(a.split()).rstrip('.')}."

    def units(self, question: str, exclude_id: str | None = None) -> list[str]:
        """The retrieved examples of ``question`` as knowledge units, best first."""
        return [self.render(i) for i in self.retrieve(question, None if exclude_id is None else str(exclude_id))]

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write the records as JSON lines (``{"id", "question", "answer"}``)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for i, q, a in self.records:
                f.write(json.dumps({"id": i, "question": q, "answer": a}, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> "ExampleRetriever":
        """Read a file written by :meth:`save`; a malformed line is an error naming file,
        line and field."""
        from .data_readers import _get, _iter_json_records, _record_id
        from .data_types import DataFormatError

        path = Path(path)
        rows: list[tuple[str, str, str]] = []
        for n, rec in _iter_json_records(path):
            if isinstance(rec, DataFormatError):
                raise rec
            try:
                rows.append(tuple(_get(rec, path, n, key, str) for key in ("id", "question", "answer")))  # type: ignore[arg-type]
            except DataFormatError as e:
                raise e.with_id(_record_id(rec)) from None
        return cls(rows, **kwargs)

    def __repr__(self) -> str:
        return f"ExampleRetriever(k={self.k}, examples={len(self.records)}, bm25 k1={self.k1} b={self.b})"


def build_example_retriever(examples: Sequence[Any], k: int) -> ExampleRetriever | None:
    """The retriever of ``knowledge_text.examples: k`` over a training split (None for k 0)."""
    if not k:
        return None
    r = ExampleRetriever(examples, k=k)
    if not len(r):
        raise ValueError("knowledge_text.examples needs labelled training examples; the training split has none")
    return r
