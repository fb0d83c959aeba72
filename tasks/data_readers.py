"""Readers of the multiple-choice data formats: file access (plain or gzip, UTF-8 checks,
json lines, json lists, csv) and one loader per format (:func:`load_csqa`,
:func:`load_csqa_inhouse`, :func:`load_obqa`, :func:`load_swag`, :func:`load_mc`), plus
:func:`sniff_format`. The formats, label policies and error messages are documented in
:mod:`kgfuse.tasks.datasets`, which re-exports every public name of this module.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .data_types import LABEL_POLICIES, DataFormatError, LoadReport, MCExample

__all__ = ["load_csqa", "load_csqa_inhouse", "load_obqa", "load_swag", "load_mc", "save_mc", "sniff_format", "read_qids"]


_GZIP_MAGIC = b"\x1f\x8b"
# what the "surrogateescape" error handler makes of undecodable bytes
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The bytes of ``path`` (at least the first ``limit`` when given), decompressed when it is
    gzip (told from its content).

    Raises:
        DataFormatError: a truncated or corrupt gzip file (reason ``gzip``), naming the last
            line read.
    """
    with path.open("rb") as f:
        data = f.read() if limit is None else f.read(limit)
    if data[:2] != _GZIP_MAGIC:
        return data
    out: list[bytes] = []
    size = 0
    try:
        with gzip.open(path, "rb") as g:
            for line in g:
                out.append(line)
                size += len(line)
                if limit is not None and size >= limit:
                    break
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataFormatError(path, None, None, f"truncated or corrupt gzip file (after line {len(out)}): {e}",
                              reason="gzip") from None
    return b"".join(out)


def _encoding_error(path: Path, line: int, byte: int, offset: int) -> DataFormatError:
    """``<path>, line <n>: not valid UTF-8 (byte 0xff at byte <offset + 1> of the line)``."""
    return DataFormatError(path, line, None, f"not valid UTF-8 (byte 0x{byte:02x} at byte {offset + 1} of the line)",
                           reason="encoding")


def _decode(path: Path, data: bytes) -> str:
    """``data`` as UTF-8; an invalid byte is a :class:`DataFormatError` naming its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        start = data.rfind(b"\n", 0, e.start) + 1
        raise _encoding_error(path, data.count(b"\n", 0, e.start) + 1, data[e.start], e.start - start) from None


def _decoded_lines(path: Path, data: bytes) -> Iterator[tuple[int, str | DataFormatError]]:
    """``(line number, text)`` of every line; a line that is not UTF-8 comes as a DataFormatError."""
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        try:
            yield lineno, raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield lineno, _encoding_error(path, lineno, raw[e.start], e.start)


def _suffix(path: Path) -> str:
    """The suffix of ``path`` without a ``.gz``: ``.jsonl`` for ``train.jsonl.gz``."""
    name = path.name.lower()
    return Path(name[:-3] if name.endswith(".gz") else name).suffix


def _iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, record)`` from a jsonl file or a json list file (plain or gzip).

    Undecodable lines (invalid JSON or UTF-8) are yielded as ``DataFormatError`` instances so
    that lenient mode can skip them.
    """
    data = _read_bytes(path)
    if data.lstrip()[:1] == b"[":
        text = _decode(path, data)
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataFormatError(path, e.lineno, None, f"invalid JSON list: {e.msg}") from e
        for i, rec in enumerate(records):
            yield i + 1, rec
        return
    for lineno, line in _decoded_lines(path, data):
        if isinstance(line, DataFormatError):
            yield lineno, line
            continue
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            yield lineno, DataFormatError(path, lineno, None, f"invalid JSON: {e.msg} (column {e.colno})", reason="invalid_json")


def _get(rec: Any, path: Path, line: int, key: str, types: type | tuple[type, ...], *, optional: bool = False) -> Any:
    """``rec[key]`` (dotted) checked against ``types``; raises DataFormatError otherwise."""
    cur = rec
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(cur, dict):
            raise DataFormatError(path, line, ".".join(parts[:i]) or key, f"expected an object, got {type(cur).__name__}")
        if part not in cur or cur[part] is None:
            if optional:
                return None
            raise DataFormatError(path, line, key, "missing")
        cur = cur[part]
    if not isinstance(cur, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise DataFormatError(path, line, key, f"expected {names}, got {type(cur).__name__} {cur!r:.60}")
    return cur


def _check_text(value: Any, path: Path, line: int, key: str) -> str:
    if not isinstance(value, str):
        raise DataFormatError(path, line, key, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise DataFormatError(path, line, key, "empty text")
    return value


def _check_policy(labels: str) -> None:
    if labels not in LABEL_POLICIES:
        raise ValueError(f"labels must be one of {list(LABEL_POLICIES)}, not {labels!r}")


def _record_id(rec: Any) -> str | None:
    """The id of a raw record, for error messages (``None`` when it has none)."""
    if not isinstance(rec, dict):
        return None
    rid = rec.get("id")
    if isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid) != "":
        return str(rid)
    vid, fold = rec.get("video-id"), rec.get("fold-ind")
    if vid not in (None, "") and fold not in (None, ""):
        return f"{vid}-{fold}"
    return None


def _run(
    path: Path,
    fmt: str,
    records: Iterator[tuple[int, Any]],
    parse: Callable[[Any, Path, int], MCExample],
    lenient: bool,
    *,
    labels: str = "auto",
    label_field: str = "label",
) -> tuple[list[MCExample], LoadReport]:
    """Parse every record, then check choice counts and labels across the file.

    Without ``lenient`` the problem on the earliest line is raised; with it every problem is
    a counted skip.
    """
    _check_policy(labels)
    report = LoadReport(path=str(path), format=fmt)
    parsed: list[tuple[int, MCExample]] = []
    errors: list[DataFormatError] = []
    seen: dict[str, int] = {}
    for line, rec in records:
        try:
            if isinstance(rec, DataFormatError):
                raise rec
            ex = parse(rec, path, line)
            if ex.id in seen:
                raise DataFormatError(path, line, "id", f"duplicate id {ex.id!r} (first on line {seen[ex.id]})",
                                      reason="duplicate_id")
            seen[ex.id] = line
        except DataFormatError as e:
            errors.append(e.with_id(_record_id(rec)))
            continue
        parsed.append((line, ex))

    counts = Counter(len(ex.choices) for _, ex in parsed)
    num_choices, n_common = counts.most_common(1)[0] if counts else (None, 0)
    labelled = any(ex.label is not None for _, ex in parsed)
    if labels == "required" and parsed and not labelled:
        raise DataFormatError(path, None, label_field, "no record has a label, but this split must be labelled",
                              reason="unlabelled_file")
    kept: list[MCExample] = []
    for line, ex in parsed:
        if len(ex.choices) != num_choices:
            errors.append(DataFormatError(path, line, "choices", f"{len(ex.choices)} choices, but the other {n_common} "
                                          f"record(s) of this file have {num_choices}", id=ex.id, reason="choice_count"))
        elif labelled and ex.label is None:
            errors.append(DataFormatError(path, line, label_field, "missing (the other records of this file are labelled)",
                                          id=ex.id, reason="missing_label"))
        else:
            kept.append(ex)
    errors.sort(key=lambda e: e.line if e.line is not None else 0)
    if errors and not lenient:
        raise errors[0]
    for e in errors:
        report.add_problem(e)
    report.loaded = len(kept)
    report.unlabeled = sum(ex.label is None for ex in kept)
    report.labelled = labelled
    report.num_choices = num_choices
    return kept, report


def _letter_label(answer: Any, letters: Sequence[str], path: Path, line: int, key: str = "answerKey") -> int | None:
    if answer is None:
        return None
    if not isinstance(answer, str) or answer not in letters:
        raise DataFormatError(path, line, key, f"answer {answer!r} is not one of the choice labels {list(letters)}",
                              reason="unknown_label")
    return list(letters).index(answer)


def _parse_nested_or_flat(rec: Any, path: Path, line: int, *, num_choices: int | None) -> MCExample:
    if not isinstance(rec, dict):
        raise DataFormatError(path, line, None, f"expected a JSON object, got {type(rec).__name__}")
    ex_id = rec.get("id")
    if not isinstance(ex_id, (str, int)) or isinstance(ex_id, bool) or str(ex_id) == "":
        raise DataFormatError(path, line, "id", "missing or not a string")
    q = rec.get("question")
    meta: dict[str, Any] = {}
    if isinstance(q, dict):  # official nested form
        stem = _check_text(_get(rec, path, line, "question.stem", str), path, line, "question.stem")
        raw = _get(rec, path, line, "question.choices", list)
        letters, texts = [], []
        for k, c in enumerate(raw):
            key = f"question.choices[{k}]"
            if not isinstance(c, dict):
                raise DataFormatError(path, line, key, "expected an object with 'label' and 'text'")
            lab = c.get("label")
            if not isinstance(lab, str) or not lab:
                raise DataFormatError(path, line, f"{key}.label", "missing or not a string")
            letters.append(lab)
            texts.append(_check_text(c.get("text"), path, line, f"{key}.text"))
        if "question_concept" in q:
            meta["question_concept"] = q["question_concept"]
    elif isinstance(q, str):  # Hugging Face flat form
        stem = _check_text(q, path, line, "question")
        ch = rec.get("choices")
        if not isinstance(ch, dict):
            raise DataFormatError(path, line, "choices", "expected an object {'label': [...], 'text': [...]}")
        letters = ch.get("label")
        texts = ch.get("text")
        if not isinstance(letters, list) or not all(isinstance(x, str) and x for x in letters):
            raise DataFormatError(path, line, "choices.label", "expected a list of strings")
        if not isinstance(texts, list):
            raise DataFormatError(path, line, "choices.text", "expected a list of strings")
        if len(letters) != len(texts):
            raise DataFormatError(path, line, "choices", f"{len(letters)} labels but {len(texts)} texts")
        texts = [_check_text(t, path, line, f"choices.text[{k}]") for k, t in enumerate(texts)]
        if rec.get("question_concept") is not None:
            meta["question_concept"] = rec["question_concept"]
    else:
        raise DataFormatError(path, line, "question", "missing, or neither an object with 'stem' nor a string")
    if len(texts) < 2:
        raise DataFormatError(path, line, "choices", f"needs at least 2 choices, got {len(texts)}")
    if num_choices is not None and len(texts) != num_choices:
        raise DataFormatError(path, line, "choices", f"expected {num_choices} choices, got {len(texts)}", reason="choice_count")
    if len(set(letters)) != len(letters):
        raise DataFormatError(path, line, "choices.label", f"repeated choice labels {letters}")
    answer = rec.get("answerKey")
    if answer == "":
        answer = None
    label = _letter_label(answer, letters, path, line)
    meta["choice_labels"] = list(letters)
    for k in ("fact1", "humanScore", "clarity", "turkIdAnonymized"):
        if k in rec:
            meta[k] = rec[k]
    return MCExample(id=str(ex_id), question=stem, choices=texts, label=label, meta=meta)


def load_csqa(path: str | Path, *, lenient: bool = False, labels: str = "auto") -> tuple[list[MCExample], LoadReport]:
    """Load CommonsenseQA jsonl (nested official form or flat Hugging Face form).

    Args:
        path: a ``*.jsonl`` file (``train_rand_split.jsonl``, ``dev_rand_split.jsonl``,
            ``test_rand_split_no_answers.jsonl`` or a Hugging Face export).
        lenient: skip malformed records (counted in the report) instead of raising.
        labels: label policy, one of :data:`LABEL_POLICIES` (see :mod:`kgfuse.tasks.datasets`).
    """
    path = Path(path)
    parse = lambda r, p, l: _parse_nested_or_flat(r, p, l, num_choices=None)  # noqa: E731
    return _run(path, "csqa", _iter_json_records(path), parse, lenient, labels=labels, label_field="answerKey")


def load_obqa(path: str | Path, *, lenient: bool = False, labels: str = "auto") -> tuple[list[MCExample], LoadReport]:
    """Load OpenBookQA jsonl (nested form, four choices ``A``-``D``; ``fact1`` kept in meta)."""
    path = Path(path)
    parse = lambda r, p, l: _parse_nested_or_flat(r, p, l, num_choices=4)  # noqa: E731
    return _run(path, "obqa", _iter_json_records(path), parse, lenient, labels=labels, label_field="answerKey")


def read_qids(path: str | Path) -> list[str]:
    """Read an id-per-line file (``inhouse_split_qids.txt``); blank lines ignored."""
    path = Path(path)
    return [ln.strip() for ln in _decode(path, _read_bytes(path)).splitlines() if ln.strip()]


def load_csqa_inhouse(
    train_path: str | Path,
    dev_path: str | Path,
    qids_path: str | Path,
    *,
    lenient: bool = False,
) -> dict[str, tuple[list[MCExample], LoadReport]]:
    """The in-house CommonsenseQA split used by KagNet, MHGRN and QA-GNN.

    The official test answers are hidden, so these papers train on the official train
    questions whose ids are listed in ``inhouse_split_qids.txt``, test on the rest of the
    official train set, and use the official dev set as dev. Both files must be labelled
    (``labels="required"``).

    Returns:
        ``{"train": ..., "dev": ..., "test": ...}``, each ``(examples, report)``. A listed id
        missing from the training file raises :class:`DataFormatError` (naming the id file and
        line) unless ``lenient``; the in-house test is empty when the training file holds only
        the listed questions (as ``train_ih.jsonl`` does).
    """
    train_all, train_rep = load_csqa(train_path, lenient=lenient, labels="required")
    dev = load_csqa(dev_path, lenient=lenient, labels="required")
    qids = read_qids(qids_path)
    by_id = {ex.id: ex for ex in train_all}
    ih_train: list[MCExample] = []
    listed = set()
    missing = LoadReport(path=str(qids_path), format="qids")
    for lineno, q in enumerate(_decode(Path(qids_path), _read_bytes(Path(qids_path))).splitlines(), start=1):
        q = q.strip()
        if not q or q in listed:
            continue
        listed.add(q)
        if q not in by_id:
            err = DataFormatError(qids_path, lineno, "id", f"id {q!r} is not in {train_path}", id=q, reason="missing_id")
            if not lenient:
                raise err
            missing.add_problem(err)
            continue
        ih_train.append(by_id[q])
    ih_test = [ex for ex in train_all if ex.id not in listed]
    merged = train_rep.merge(missing)
    rep_train = LoadReport(str(train_path), "csqa-inhouse-train", loaded=len(ih_train), skipped=merged.skipped,
                           problems=merged.problems, reasons=merged.reasons, labelled=True, num_choices=train_rep.num_choices)
    rep_test = LoadReport(str(train_path), "csqa-inhouse-test", loaded=len(ih_test), labelled=True,
                          num_choices=train_rep.num_choices)
    del qids
    return {"train": (ih_train, rep_train), "dev": dev, "test": (ih_test, rep_test)}


_SWAG_ENDINGS = ("ending0", "ending1", "ending2", "ending3")


def _parse_swag(rec: dict[str, Any], path: Path, line: int, index: int) -> MCExample:
    if not isinstance(rec, dict):
        raise DataFormatError(path, line, None, f"expected an object, got {type(rec).__name__}")
    sent1 = _check_text(rec.get("sent1"), path, line, "sent1")
    sent2 = rec.get("sent2")
    if not isinstance(sent2, str):
        raise DataFormatError(path, line, "sent2", "missing or not a string")
    endings = []
    for k in _SWAG_ENDINGS:
        e = rec.get(k)
        if not isinstance(e, str) or not e.strip():
            raise DataFormatError(path, line, k, "missing or empty")
        endings.append(e.strip())
    lab = rec.get("label")
    label: int | None
    if lab is None or (isinstance(lab, str) and lab.strip() in ("", "-1")) or (isinstance(lab, (int, float)) and lab == -1):
        label = None  # empty cell, null, or the Hugging Face -1 of a hidden label
    else:
        try:
            label = int(lab)
            if isinstance(lab, float) and lab != label:
                raise ValueError
        except (TypeError, ValueError):
            raise DataFormatError(path, line, "label", f"not an integer: {lab!r}", reason="unknown_label") from None
        if not 0 <= label < 4:
            raise DataFormatError(path, line, "label", f"out of range 0..3: {label}", reason="unknown_label")
    ex_id = rec.get("id")
    if ex_id in (None, ""):
        vid, fold = rec.get("video-id"), rec.get("fold-ind")
        ex_id = f"{vid}-{fold}" if vid not in (None, "") and fold not in (None, "") else f"{path.stem}-{index}"
    s2 = sent2.strip()
    choices = [f"{s2} {e}".strip() for e in endings]
    meta = {"sent2": sent2}
    if rec.get("startphrase"):
        meta["startphrase"] = rec["startphrase"]
    return MCExample(id=str(ex_id), question=sent1.strip(), choices=choices, label=label, meta=meta)


def load_swag(path: str | Path, *, lenient: bool = False, labels: str = "auto") -> tuple[list[MCExample], LoadReport]:
    """Load SWAG: the official csv (``train.csv``/``val.csv``/``test.csv``, gzip too) or the Hugging Face json.

    Ids: ``id`` when present, else ``"<video-id>-<fold-ind>"``, else ``"<file stem>-<index>"``.
    An empty ``label`` cell, a null or ``-1`` (the Hugging Face test split) is no label. A csv
    without a ``label`` column loads only with ``labels="optional"`` (an unlabelled split such
    as the official ``test.csv``); otherwise it is an error, as SWAG's train and val files are
    labelled.
    """
    path = Path(path)
    _check_policy(labels)
    if _suffix(path) == ".csv":
        records = _iter_csv(path, label_column=labels != "optional")
        return _run(path, "swag", records, lambda r, p, l: _parse_swag(r, p, l, l), lenient, labels=labels)
    counter = iter(range(1 << 62))
    return _run(path, "swag", _iter_json_records(path), lambda r, p, l: _parse_swag(r, p, l, next(counter)), lenient,
                labels=labels)


def _iter_csv(path: Path, *, label_column: bool = False) -> Iterator[tuple[int, Any]]:
    # undecodable bytes become lone surrogates, so a record with one is found (and skipped) alone
    text = _read_bytes(path).decode("utf-8", "surrogateescape")
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        bad = next((c for c in (reader.fieldnames or []) if _UNDECODABLE.search(c)), None)
        if bad is not None:
            raise DataFormatError(path, 1, None, f"csv header is not valid UTF-8 (column {_printable(bad)!r})",
                                  reason="encoding")
        missing = [c for c in ("sent1", "sent2", *_SWAG_ENDINGS) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(path, 1, missing[0], f"csv header lacks column(s) {missing}; found {reader.fieldnames}")
        if label_column and "label" not in (reader.fieldnames or []):
            raise DataFormatError(path, 1, "label", "csv header has no 'label' column, but SWAG train and val files are "
                                  "labelled; load an unlabelled file as data.test or with labels='optional'",
                                  reason="unlabelled_file")
        start = reader.line_num + 1
        for row in reader:
            if None in row:  # more cells than header columns
                yield start, DataFormatError(path, start, None, f"{len(row) - 1 + len(row[None])} cells, header has {len(row) - 1}")
            elif any(v is None for v in row.values()):
                yield start, DataFormatError(path, start, None, "fewer cells than header columns")
            else:
                col, m = next(((k, m) for k, v in row.items() if (m := _UNDECODABLE.search(v))), (None, None))
                if m is not None:
                    rid = _record_id(row)
                    yield start, DataFormatError(path, start, col, f"not valid UTF-8 (byte 0x{ord(m.group()) - 0xDC00:02x}"
                                                 f" at character {m.start() + 1} of the cell)",
                                                 id=None if rid is None else _printable(rid), reason="encoding")
                else:
                    yield start, row
            start = reader.line_num + 1


def _printable(text: str) -> str:
    """``text`` with undecodable bytes as U+FFFD."""
    return _UNDECODABLE.sub("\ufffd", text)


def _parse_mc(rec: Any, path: Path, line: int) -> MCExample:
    if not isinstance(rec, dict):
        raise DataFormatError(path, line, None, f"expected a JSON object, got {type(rec).__name__}")
    ex_id = rec.get("id")
    if not isinstance(ex_id, (str, int)) or isinstance(ex_id, bool) or str(ex_id) == "":
        raise DataFormatError(path, line, "id", "missing or not a string")
    question = _check_text(rec.get("question"), path, line, "question")
    choices = rec.get("choices")
    if not isinstance(choices, list) or len(choices) < 2:
        raise DataFormatError(path, line, "choices", "expected a list of at least 2 strings")
    choices = [_check_text(c, path, line, f"choices[{k}]") for k, c in enumerate(choices)]
    label = rec.get("label")
    if label is not None:
        if not isinstance(label, int) or isinstance(label, bool):
            raise DataFormatError(path, line, "label", f"expected an integer or null, got {label!r:.40}", reason="unknown_label")
        if not 0 <= label < len(choices):
            raise DataFormatError(path, line, "label", f"out of range 0..{len(choices) - 1}: {label}", reason="unknown_label")
    meta = rec.get("meta") or {}
    if not isinstance(meta, dict):
        raise DataFormatError(path, line, "meta", "expected an object")
    return MCExample(id=str(ex_id), question=question, choices=choices, label=label, meta=dict(meta))


def load_mc(path: str | Path, *, lenient: bool = False, labels: str = "auto") -> tuple[list[MCExample], LoadReport]:
    """Load the generic jsonl form ``{"id", "question", "choices": [...], "label"}``."""
    path = Path(path)
    return _run(path, "mc", _iter_json_records(path), _parse_mc, lenient, labels=labels)


def save_mc(examples: Sequence[MCExample], path: str | Path) -> Path:
    """Write examples in the generic ``mc`` jsonl form (round-trips through :func:`load_mc`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
    return path


FORMATS: dict[str, Callable[..., tuple[list[MCExample], LoadReport]]] = {
    "csqa": load_csqa,
    "obqa": load_obqa,
    "swag": load_swag,
    "mc": load_mc,
}



def sniff_format(path: str | Path) -> str:
    """Guess the format of a data file from its extension and first record."""
    path = Path(path)
    if _suffix(path) == ".csv":
        return "swag"
    head = _read_bytes(path, limit=65536).lstrip()
    rec: Any = None
    if head[:1] == b"[":
        try:
            data = json.loads(_decode(path, _read_bytes(path)))
            rec = data[0] if data else None
        except (json.JSONDecodeError, IndexError):
            rec = None
    else:
        undecodable: DataFormatError | None = None
        for _, line in _decoded_lines(path, head):
            if isinstance(line, DataFormatError):
                undecodable = undecodable or line  # the loader reports it (or skips it with lenient=True)
                continue
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    rec = None
                break
        if rec is None and undecodable is not None:
            raise DataFormatError(path, undecodable.line, None, f"{undecodable.message}; cannot guess the format, "
                                  "pass format=", reason="encoding")
    if not isinstance(rec, dict):
        raise DataFormatError(path, 1, None, "cannot guess the format (first record is not a JSON object); pass format=")
    if "ending0" in rec and "sent1" in rec:
        return "swag"
    q = rec.get("question")
    if isinstance(q, dict) or isinstance(rec.get("choices"), dict):
        if isinstance(q, dict) and len(q.get("choices") or []) == 4 and "fact1" in rec:
            return "obqa"
        return "csqa"
    if isinstance(rec.get("choices"), list):
        return "mc"
    raise DataFormatError(path, 1, None, f"cannot guess the format from fields {sorted(rec)}; pass format=")

