"""Multiple-choice QA data sets in their official formats.

Every loader returns ``(examples, report)``: a list of :class:`MCExample` and a
:class:`LoadReport` with counts, skip reasons and the first few problems. Malformed records
raise :class:`DataFormatError` naming the file, the line, the id and the field; with
``lenient=True`` they are skipped, counted by reason and listed in the report instead.

Labels (``labels=`` of every loader, one of :data:`LABEL_POLICIES`):

``"auto"`` (default)
    A file is labelled when any of its records has a label; then every record must have a
    valid one (a record without is an error: ``missing (the other records of this file are
    labelled)``). A file without any label (an official test set) loads with
    ``label=None`` for prediction. A SWAG csv must have its ``label`` column (SWAG's train
    and val files are labelled).
``"required"``
    Every record must have a valid label, and a file without any label is an error
    (training splits).
``"optional"``
    As ``"auto"``, but the caller says the split may be unlabelled: a SWAG csv without its
    ``label`` column (the official ``test.csv``) loads for prediction.

A label that is present but not one of the choices (an ``answerKey`` that is not a choice
letter, an index out of range) is always an error. All questions of a file must have the
same number of choices; a question with another count is an error (field ``choices``).

Supported formats (``load_examples(path, format=...)``):

``csqa``
    CommonsenseQA jsonl (Talmor et al., 2019), either the official nested form
    ``{"id", "question": {"stem", "choices": [{"label", "text"}]}, "answerKey"}`` or the flat
    Hugging Face form ``{"id", "question", "choices": {"label": [...], "text": [...]},
    "answerKey"}``. :func:`load_csqa_inhouse` applies the in-house split of KagNet/QA-GNN
    (``inhouse_split_qids.txt``: listed ids = in-house train, the rest of the official train
    = in-house test, the official dev = in-house dev).
``obqa``
    OpenBookQA jsonl (Mihaylov et al., 2018): the nested CSQA form with four choices
    ``A``-``D``; the optional ``fact1`` is kept in ``meta``.
``swag``
    SWAG (Zellers et al., 2018): the official csv (``sent1, sent2, ending0..3, label``, plus
    ``video-id``, ``fold-ind``, ``startphrase``, ``gold-source``) or the Hugging Face json form
    (same field names, jsonl or one json list). The question is ``sent1``; choice ``i`` is
    ``sent2 + " " + ending_i`` (the second sentence's subject completed by the ending), as in
    the BERT/RoBERTa SWAG baselines that pair the context with the completed second
    sentence. ``startphrase`` is kept in ``meta``.
``mc``
    Generic jsonl: ``{"id": str, "question": str, "choices": [str, ...], "label": int|null}``;
    ``meta`` (a dict) is optional.

``format="auto"`` picks ``swag`` for ``.csv`` files and sniffs the first json record
otherwise.

Files may be gzip-compressed (``train.jsonl.gz``, ``val.csv.gz``; told from the content) and
must be UTF-8. Input errors are :class:`DataFormatError` (a ``ValueError``) with a one-line
message naming the file, and the line and field where they apply:

- a truncated or corrupt gzip file: ``train.jsonl.gz: truncated or corrupt gzip file (after
  line 1234): Compressed file ended before the end-of-stream marker was reached`` (also
  with ``lenient=True``: the rest of the file cannot be read);
- a line that is not valid UTF-8: ``dev.jsonl, line 7: not valid UTF-8 (byte 0xff at byte 31
  of the line)``; with ``lenient=True`` the record is skipped and counted (reason
  ``encoding``);
- an unknown format name: ``dev.jsonl: unknown data format 'cqsa' (did you mean 'csqa'?);
  valid: auto, csqa, mc, obqa, swag``.

A missing file raises ``FileNotFoundError``.

The record types live in :mod:`kgfuse.tasks.data_types`, the readers of each format in
:mod:`kgfuse.tasks.data_readers`; every public name of both is importable from here.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

from .data_readers import (_check_policy, load_csqa, load_csqa_inhouse, load_mc, load_obqa, load_swag,  # noqa: F401
                           read_qids, save_mc, sniff_format)
from .data_types import LABEL_POLICIES, DataFormatError, LoadReport, MCExample

__all__ = [
    "MCExample",
    "DataFormatError",
    "LoadReport",
    "load_examples",
    "load_csqa",
    "load_csqa_inhouse",
    "load_obqa",
    "load_swag",
    "load_mc",
    "save_mc",
    "examples_hash",
    "FORMATS",
    "LABEL_POLICIES",
]

FORMATS: dict[str, Callable[..., tuple[list[MCExample], LoadReport]]] = {
    "csqa": load_csqa,
    "obqa": load_obqa,
    "swag": load_swag,
    "mc": load_mc,
}


def load_examples(path: str | Path, format: str = "auto", *, lenient: bool = False,
                  labels: str = "auto") -> tuple[list[MCExample], LoadReport]:
    """Load a data file in one of :data:`FORMATS` (``"auto"`` sniffs it).

    Args:
        path: the data file (plain or gzip).
        format: one of :data:`FORMATS`, or ``"auto"``.
        lenient: skip bad records (counted by reason in the report) instead of raising.
        labels: ``"auto"``, ``"required"`` (training splits) or ``"optional"`` (splits that
            may be unlabelled); see the module docstring.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        DataFormatError: an unknown format (the message lists the valid ones and the closest
            match), a truncated or corrupt gzip file, or (without ``lenient``) a malformed
            record or a line that is not UTF-8; see the module docstring.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    _check_policy(labels)
    valid = ["auto", *sorted(FORMATS)]
    if format not in valid:
        close = difflib.get_close_matches(format, valid, n=1, cutoff=0.6) if isinstance(format, str) else []
        raise DataFormatError(path, None, None, f"unknown data format {format!r}"
                              + (f" (did you mean {close[0]!r}?)" if close else "") + f"; valid: {', '.join(valid)}",
                              reason="unknown_format")
    fmt = sniff_format(path) if format == "auto" else format
    return FORMATS[fmt](path, lenient=lenient, labels=labels)


def examples_hash(examples: Sequence[MCExample]) -> str:
    """Content hash of examples (ids, questions, choices), used as a preprocessing cache key."""
    h = hashlib.sha256(b"kgfuse-mc-v1")
    for ex in examples:
        h.update(json.dumps([ex.id, ex.question, ex.choices], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:32]