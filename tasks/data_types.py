"""The records and reports of multiple-choice data: :class:`MCExample`, :class:`LoadReport`
and :class:`DataFormatError` (documented, with the formats and label policies, in
:mod:`kgfuse.tasks.datasets`, which re-exports them and where they are importable from)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MCExample", "DataFormatError", "LoadReport", "LABEL_POLICIES"]


_MAX_PROBLEMS = 5

LABEL_POLICIES = ("auto", "required", "optional")


class DataFormatError(ValueError):
    """A record of a data file is malformed.

    The message reads ``<path>, line <n>, id '<id>', field '<field>': <problem>``.

    Attributes:
        path: the file.
        line: 1-based line number (for csv: the physical line where the record starts;
            for a json list: the index of the record + 1).
        field: the offending field (dotted path), or ``None`` for a whole-record problem.
        id: the record's id when it could be read, else ``None``.
        reason: a short key for the kind of problem, used to count skips in lenient mode
            (``malformed``, ``invalid_json``, ``encoding``, ``duplicate_id``, ``missing_label``,
            ``unknown_label``, ``choice_count``, ``missing_id``, ``unlabelled_file``), or
            naming a problem of the whole file (``gzip``, ``unknown_format``).
    """

    def __init__(self, path: str | Path, line: int | None, field: str | None, message: str, *,
                 id: str | None = None, reason: str = "malformed") -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.id = id
        self.reason = reason
        where = f"{self.path}"
        if line is not None:
            where += f", line {line}"
        if id is not None:
            where += f", id {id!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
        self.message = message

    def with_id(self, id: str | None) -> "DataFormatError":
        """This error with the record's id added (unchanged when ``id`` is None or already set)."""
        if id is None or self.id is not None:
            return self
        return DataFormatError(self.path, self.line, self.field, self.message, id=id, reason=self.reason)


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
    """What a loader read: counts, skip reasons and the first few problems (lenient mode).

    Attributes:
        path, format: the file and its format.
        loaded: records kept.
        skipped: records skipped (lenient mode); ``reasons`` counts them by
            :attr:`DataFormatError.reason`.
        unlabeled: kept records without a label.
        labelled: whether the file is labelled (see the label policies of :mod:`kgfuse.tasks.datasets`).
        num_choices: the number of choices of the file's questions (``None`` when empty).
        used: records used by a run after ``max_train``/``max_eval`` (set by
            :func:`kgfuse.tasks.pipeline.load_splits`), else ``None``.
        problems: the first few problems, one line each.
    """

    path: str
    format: str
    loaded: int = 0
    skipped: int = 0
    unlabeled: int = 0
    problems: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    labelled: bool | None = None
    num_choices: int | None = None
    used: int | None = None

    @property
    def read(self) -> int:
        """Records read: loaded + skipped."""
        return self.loaded + self.skipped

    def add_problem(self, err: DataFormatError) -> None:
        self.skipped += 1
        reason = getattr(err, "reason", "malformed")
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(str(err))

    def merge(self, other: "LoadReport") -> "LoadReport":
        reasons = dict(self.reasons)
        for k, v in other.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        out = LoadReport(
            path=f"{self.path}+{other.path}",
            format=self.format,
            loaded=self.loaded + other.loaded,
            skipped=self.skipped + other.skipped,
            unlabeled=self.unlabeled + other.unlabeled,
            problems=(self.problems + other.problems)[:_MAX_PROBLEMS],
            reasons=reasons,
            labelled=None if self.labelled is None or other.labelled is None else (self.labelled and other.labelled),
            num_choices=self.num_choices if self.num_choices == other.num_choices else None,
        )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "read": self.read,
            "loaded": self.loaded,
            "used": self.used,
            "skipped": self.skipped,
            "skipped_by_reason": dict(self.reasons),
            "unlabeled": self.unlabeled,
            "labelled": self.labelled,
            "num_choices": self.num_choices,
            "problems": list(self.problems),
        }

    def __str__(self) -> str:
        s = f"{self.path} [{self.format}]: {self.loaded} loaded, {self.skipped} skipped"
        if self.reasons:
            s += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items())) + ")"
        if self.used is not None and self.used != self.loaded:
            s += f", {self.used} used"
        if self.unlabeled:
            s += f", {self.unlabeled} without label"
        for p in self.problems:
            s += f"\n  - {p}"
        if self.skipped > len(self.problems):
            s += f"\n  ... and {self.skipped - len(self.problems)} more"
        return s


# the public home of these classes (pickles, reprs and docs name it)
for _cls in (DataFormatError, MCExample, LoadReport):
    _cls.__module__ = "kgfuse.tasks.datasets"
del _cls
