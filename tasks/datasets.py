"""Multiple-choice QA data sets in their official formats.

Every loader returns ``(examples, report)``: a list of :class:`MCExample` and a
:class:`LoadReport` with counts and the first few problems. Malformed records raise
:class:`DataFormatError` naming the file, the line and the field; with ``lenient=True`` they
are skipped, counted and listed in the report instead. Files without labels (official test
sets) load with ``label=None`` for prediction.

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
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

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
]

_MAX_PROBLEMS = 5


class DataFormatError(ValueError):
    """A record of a data file is malformed.

    Attributes:
        path: the file.
        line: 1-based line number (for csv: the physical line where the record starts;
            for a json list: the index of the record + 1).
        field: the offending field (dotted path), or ``None`` for a whole-record problem.
    """

    def __init__(self, path: str | Path, line: int | None, field: str | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        where = f"{self.path}"
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
        self.message = message


@dataclass
class MCExample:
    """One multiple-choice question.

    Args:
        id: the data set's id (unique within a file).
        question: question text (for SWAG: the context sentence).
        choices: answer texts, in the data set's order.
        label: index of the correct choice, or ``None`` when the file has no answers.
        meta: anything else worth keeping (choice letters, question concept, fact1...).
    """

    id: str
    question: str
    choices: list[str]
    label: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The generic ``mc`` jsonl record of this example."""
        return {"id": self.id, "question": self.question, "choices": list(self.choices), "label": self.label, "meta": self.meta}


@dataclass
class LoadReport:
    """What a loader read: counts and the first few problems (lenient mode)."""

    path: str
    format: str
    loaded: int = 0
    skipped: int = 0
    unlabeled: int = 0
    problems: list[str] = field(default_factory=list)

    def add_problem(self, err: DataFormatError) -> None:
        self.skipped += 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(str(err))

    def merge(self, other: "LoadReport") -> "LoadReport":
        out = LoadReport(
            path=f"{self.path}+{other.path}",
            format=self.format,
            loaded=self.loaded + other.loaded,
            skipped=self.skipped + other.skipped,
            unlabeled=self.unlabeled + other.unlabeled,
            problems=(self.problems + other.problems)[:_MAX_PROBLEMS],
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "loaded": self.loaded,
            "skipped": self.skipped,
            "unlabeled": self.unlabeled,
            "problems": list(self.problems),
        }

    def __str__(self) -> str:
        s = f"{self.path} [{self.format}]: {self.loaded} loaded, {self.skipped} skipped"
        if self.unlabeled:
            s += f", {self.unlabeled} without label"
        for p in self.problems:
            s += f"\n  - {p}"
        if self.skipped > len(self.problems):
            s += f"\n  ... and {self.skipped - len(self.problems)} more"
        return s


# --------------------------------------------------------------------------------------
# readers


def _iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, record)`` from a jsonl file or a json list file.

    Undecodable lines are yielded as ``DataFormatError`` instances so that lenient mode can
    skip them.
    """
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataFormatError(path, e.lineno, None, f"invalid JSON list: {e.msg}") from e
        for i, rec in enumerate(data):
            yield i + 1, rec
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            yield lineno, DataFormatError(path, lineno, None, f"invalid JSON: {e.msg} (column {e.colno})")


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


def _run(
    path: Path,
    fmt: str,
    records: Iterator[tuple[int, Any]],
    parse: Callable[[Any, Path, int], MCExample],
    lenient: bool,
) -> tuple[list[MCExample], LoadReport]:
    report = LoadReport(path=str(path), format=fmt)
    out: list[MCExample] = []
    seen: dict[str, int] = {}
    for line, rec in records:
        try:
            if isinstance(rec, DataFormatError):
                raise rec
            ex = parse(rec, path, line)
            if ex.id in seen:
                raise DataFormatError(path, line, "id", f"duplicate id {ex.id!r} (first on line {seen[ex.id]})")
            seen[ex.id] = line
        except DataFormatError as e:
            if not lenient:
                raise
            report.add_problem(e)
            continue
        out.append(ex)
        report.loaded += 1
        if ex.label is None:
            report.unlabeled += 1
    return out, report


def _letter_label(answer: Any, letters: Sequence[str], path: Path, line: int, key: str = "answerKey") -> int | None:
    if answer is None:
        return None
    if not isinstance(answer, str) or answer not in letters:
        raise DataFormatError(path, line, key, f"answer {answer!r} is not one of the choice labels {list(letters)}")
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
        raise DataFormatError(path, line, "choices", f"expected {num_choices} choices, got {len(texts)}")
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


def load_csqa(path: str | Path, *, lenient: bool = False) -> tuple[list[MCExample], LoadReport]:
    """Load CommonsenseQA jsonl (nested official form or flat Hugging Face form).

    Args:
        path: a ``*.jsonl`` file (``train_rand_split.jsonl``, ``dev_rand_split.jsonl``,
            ``test_rand_split_no_answers.jsonl`` or a Hugging Face export).
        lenient: skip malformed records (counted in the report) instead of raising.
    """
    path = Path(path)
    parse = lambda r, p, l: _parse_nested_or_flat(r, p, l, num_choices=None)  # noqa: E731
    return _run(path, "csqa", _iter_json_records(path), parse, lenient)


def load_obqa(path: str | Path, *, lenient: bool = False) -> tuple[list[MCExample], LoadReport]:
    """Load OpenBookQA jsonl (nested form, four choices ``A``-``D``; ``fact1`` kept in meta)."""
    path = Path(path)
    parse = lambda r, p, l: _parse_nested_or_flat(r, p, l, num_choices=4)  # noqa: E731
    return _run(path, "obqa", _iter_json_records(path), parse, lenient)


def read_qids(path: str | Path) -> list[str]:
    """Read an id-per-line file (``inhouse_split_qids.txt``); blank lines ignored."""
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


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
    official train set, and use the official dev set as dev.

    Returns:
        ``{"train": ..., "dev": ..., "test": ...}``, each ``(examples, report)``. A listed id
        missing from the training file raises :class:`DataFormatError` (naming the id file and
        line) unless ``lenient``; the in-house test is empty when the training file holds only
        the listed questions (as ``train_ih.jsonl`` does).
    """
    train_all, train_rep = load_csqa(train_path, lenient=lenient)
    dev = load_csqa(dev_path, lenient=lenient)
    qids = read_qids(qids_path)
    by_id = {ex.id: ex for ex in train_all}
    ih_train: list[MCExample] = []
    listed = set()
    missing = LoadReport(path=str(qids_path), format="qids")
    for lineno, q in enumerate(Path(qids_path).read_text(encoding="utf-8").splitlines(), start=1):
        q = q.strip()
        if not q or q in listed:
            continue
        listed.add(q)
        if q not in by_id:
            err = DataFormatError(qids_path, lineno, "id", f"id {q!r} is not in {train_path}")
            if not lenient:
                raise err
            missing.add_problem(err)
            continue
        ih_train.append(by_id[q])
    ih_test = [ex for ex in train_all if ex.id not in listed]
    rep_train = LoadReport(str(train_path), "csqa-inhouse-train", loaded=len(ih_train), skipped=train_rep.skipped + missing.skipped,
                           problems=(train_rep.problems + missing.problems)[:_MAX_PROBLEMS])
    rep_test = LoadReport(str(train_path), "csqa-inhouse-test", loaded=len(ih_test))
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
    if lab is None or lab == "":
        label = None
    else:
        try:
            label = int(lab)
            if isinstance(lab, float) and lab != label:
                raise ValueError
        except (TypeError, ValueError):
            raise DataFormatError(path, line, "label", f"not an integer: {lab!r}") from None
        if not 0 <= label < 4:
            raise DataFormatError(path, line, "label", f"out of range 0..3: {label}")
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


def load_swag(path: str | Path, *, lenient: bool = False) -> tuple[list[MCExample], LoadReport]:
    """Load SWAG: the official csv (``train.csv``/``val.csv``/``test.csv``) or the Hugging Face json.

    Ids: ``id`` when present, else ``"<video-id>-<fold-ind>"``, else ``"<file stem>-<index>"``.
    The test csv has an empty ``label`` column → ``label=None``.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _run(path, "swag", _iter_csv(path), lambda r, p, l: _parse_swag(r, p, l, l), lenient)
    counter = iter(range(1 << 62))
    return _run(path, "swag", _iter_json_records(path), lambda r, p, l: _parse_swag(r, p, l, next(counter)), lenient)


def _iter_csv(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("sent1", "sent2", *_SWAG_ENDINGS) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataFormatError(path, 1, missing[0], f"csv header lacks column(s) {missing}; found {reader.fieldnames}")
        start = reader.line_num + 1
        for row in reader:
            if None in row:  # more cells than header columns
                yield start, DataFormatError(path, start, None, f"{len(row) - 1 + len(row[None])} cells, header has {len(row) - 1}")
            elif any(v is None for v in row.values()):
                yield start, DataFormatError(path, start, None, "fewer cells than header columns")
            else:
                yield start, row
            start = reader.line_num + 1


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
            raise DataFormatError(path, line, "label", f"expected an integer or null, got {label!r:.40}")
        if not 0 <= label < len(choices):
            raise DataFormatError(path, line, "label", f"out of range 0..{len(choices) - 1}: {label}")
    meta = rec.get("meta") or {}
    if not isinstance(meta, dict):
        raise DataFormatError(path, line, "meta", "expected an object")
    return MCExample(id=str(ex_id), question=question, choices=choices, label=label, meta=dict(meta))


def load_mc(path: str | Path, *, lenient: bool = False) -> tuple[list[MCExample], LoadReport]:
    """Load the generic jsonl form ``{"id", "question", "choices": [...], "label"}``."""
    path = Path(path)
    return _run(path, "mc", _iter_json_records(path), _parse_mc, lenient)


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
    if path.suffix.lower() == ".csv":
        return "swag"
    with path.open(encoding="utf-8") as f:
        head = f.read(65536).lstrip()
    rec: Any = None
    if head.startswith("["):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rec = data[0] if data else None
        except (json.JSONDecodeError, IndexError):
            rec = None
    else:
        for line in head.splitlines():
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    rec = None
                break
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


def load_examples(path: str | Path, format: str = "auto", *, lenient: bool = False) -> tuple[list[MCExample], LoadReport]:
    """Load a data file in one of :data:`FORMATS` (``"auto"`` sniffs it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    fmt = sniff_format(path) if format == "auto" else format
    if fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; valid: {sorted(FORMATS)} or 'auto'")
    return FORMATS[fmt](path, lenient=lenient)


def examples_hash(examples: Sequence[MCExample]) -> str:
    """Content hash of examples (ids, questions, choices), used as a preprocessing cache key."""
    h = hashlib.sha256(b"kgfuse-mc-v1")
    for ex in examples:
        h.update(json.dumps([ex.id, ex.question, ex.choices], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:32]
