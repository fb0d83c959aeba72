"""What every retriever shares: node types, the array layout of a retrieved subgraph, the
:class:`_Retriever` base (``retrieve_arrays``, ``__call__``, ``explain``) and rendering.

Importing it imports numpy only (``KGData``, a torch_geometric ``Data``, is imported when a
subgraph is wrapped)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

    from ..graph import KnowledgeGraph
    from ..kgdata import KGData
    from ..linking import Grounding

NODE_QUESTION = 0
NODE_ANSWER = 1
NODE_OTHER = 2

_I64 = np.int64


def arrays_to_kgdata(arrays: Mapping[str, np.ndarray]) -> KGData:
    """Wrap the numpy arrays of ``retrieve_arrays`` into a :class:`KGData` (integer fields
    as int64, float fields such as ``node_score`` as float32)."""
    import torch

    from ..kgdata import KGData

    kw = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        dtype = np.float32 if a.dtype.kind == "f" else _I64
        kw[k] = torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))
    n = int(kw["concept_ids"].shape[0])
    return KGData(num_nodes=n, **kw)


def _empty_arrays(max_hops: int | None) -> dict[str, np.ndarray]:
    out = {
        "concept_ids": np.zeros(0, _I64),
        "node_type": np.zeros(0, _I64),
        "edge_index": np.zeros((2, 0), _I64),
        "edge_type": np.zeros(0, _I64),
    }
    if max_hops is not None:
        out["paths"] = np.zeros((0, max_hops + 1), _I64)
        out["path_rels"] = np.zeros((0, max_hops), _I64)
        out["path_len"] = np.zeros(0, _I64)
    return out


def _grounded(grounding: "Grounding") -> tuple[np.ndarray, np.ndarray]:
    """Question and answer concept arrays: deduplicated, order kept, answers removed from
    the question side."""
    a = list(dict.fromkeys(int(c) for c in grounding.answer_concepts))
    aset = set(a)
    q = [c for c in dict.fromkeys(int(c) for c in grounding.question_concepts) if c not in aset]
    return np.asarray(q, dtype=_I64), np.asarray(a, dtype=_I64)


def statement_text(context: "str | tuple[str, str] | Sequence[str]") -> str:
    """The statement a context-aware retriever scores against: a string as it is, a
    ``(question, choice)`` pair as ``"question choice"`` (stripped, joined by one space)."""
    if isinstance(context, str):
        return context
    parts = [str(p).strip() for p in context]
    return " ".join(p for p in parts if p)


def _node_layout(q: np.ndarray, a: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nodes = np.concatenate((q, a, others)).astype(_I64, copy=False)
    types = np.concatenate(
        (np.full(q.size, NODE_QUESTION, _I64), np.full(a.size, NODE_ANSWER, _I64), np.full(others.size, NODE_OTHER, _I64))
    )
    return nodes, types


def _localise(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Local positions in ``nodes`` (unique, any order) of global ids ``x`` (all present)."""
    sorter = np.argsort(nodes, kind="stable")
    return sorter[np.searchsorted(nodes, x, sorter=sorter)]


def _concat_ranges(starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``concat(arange(s, s + l))`` for each (s, l) and the index of the range of each item."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, _I64), np.zeros(0, _I64)
    owner = np.repeat(np.arange(lens.size, dtype=_I64), lens)
    offs = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    return np.arange(total, dtype=_I64) + offs, owner


def _run_flags(x: np.ndarray) -> np.ndarray:
    """``True`` where a run of equal values starts in ``x``."""
    d = np.empty(x.size, dtype=bool)
    if x.size:
        d[0] = True
        np.not_equal(x[1:], x[:-1], out=d[1:])
    return d


def _run_start_of(x: np.ndarray) -> np.ndarray:
    """For every element of ``x``, the index where its run of equal values starts."""
    return np.maximum.accumulate(np.where(_run_flags(x), np.arange(x.size, dtype=_I64), 0))


def _pad_columns(a: np.ndarray, width: int, fill: Any) -> np.ndarray:
    """``a`` [P, k] widened to ``width`` columns with ``fill`` (``"edge"``: the last column)."""
    if a.shape[1] == width:
        return a
    out = np.empty((a.shape[0], width), dtype=a.dtype)
    out[:, : a.shape[1]] = a
    out[:, a.shape[1]:] = a[:, -1:] if fill == "edge" else fill
    return out


class _Retriever:
    """What both retrievers share: ``retrieve_nodes`` (the node set, cached by
    :func:`~kgfuse.kg.preprocess.preprocess_dataset`) then ``add_edges`` (rebuilt on read).

    A retriever whose ``needs_context`` is true also reads the statement text: it is called
    as ``retrieve_nodes(grounding, context=(question, choice))`` (by
    :func:`~kgfuse.kg.preprocess.preprocess_dataset`, ``retrieve_arrays`` and ``__call__``);
    the others are called with the grounding alone, so a retriever written without a
    ``context`` parameter keeps working. ``fork_safe`` false makes the preprocessing run in
    one process (a retriever that runs a torch model, or memoises across statements).
    """

    graph: "KnowledgeGraph"

    #: whether ``retrieve_nodes`` takes ``context=(question, choice)``
    needs_context: bool = False
    #: whether preprocessing may run this retriever in forked worker processes
    fork_safe: bool = True

    def retrieve_nodes(self, grounding: "Grounding") -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def add_edges(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def retrieve_arrays(self, grounding: "Grounding", context: "str | tuple[str, str] | None" = None
                        ) -> dict[str, np.ndarray]:
        """The retrieved subgraph as numpy arrays (fields of :class:`KGData`); ``context``
        (``(question, choice)``) is passed on when the retriever ``needs_context``."""
        if self.needs_context:
            return self.add_edges(self.retrieve_nodes(grounding, context=context))
        return self.add_edges(self.retrieve_nodes(grounding))

    def __call__(self, grounding: "Grounding", context: "str | tuple[str, str] | None" = None) -> KGData:
        return arrays_to_kgdata(self.retrieve_arrays(grounding, context))

    def explain(self, data: KGData, graph: "KnowledgeGraph | None" = None, limit: int | None = None) -> list[str]:
        """Readable lines: one per path (``plate --AtLocation--> cupboard <--IsA-- kitchen``)
        where the data holds paths, else one per edge."""
        return explain(data, graph or self.graph, limit=limit)


def explain(data: Data, graph: "KnowledgeGraph", limit: int | None = None) -> list[str]:
    """Readable lines for a retrieved subgraph.

    With ``paths`` (PathRetriever): one line per path, backward steps drawn ``<--r--``:
    ``plate --AtLocation--> cupboard <--IsA-- kitchen_cupboard``. Without: one line per
    edge, ``head --relation--> tail``.
    """
    names = [graph.concept_name(c) for c in data.concept_ids.tolist()]
    R = graph.num_relations
    lines: list[str] = []
    paths = getattr(data, "paths", None)
    if paths is not None:
        for nodes, rels, L in zip(paths.tolist(), data.path_rels.tolist(), data.path_len.tolist()):
            parts = [names[nodes[0]]]
            for k in range(L):
                r = rels[k]
                if r >= R:
                    parts.append(f"<--{graph.relation_name(r - R)}--")
                else:
                    parts.append(f"--{graph.relation_name(r)}-->")
                parts.append(names[nodes[k + 1]])
            lines.append(" ".join(parts))
            if limit is not None and len(lines) >= limit:
                break
        return lines
    for (h, t), r in zip(data.edge_index.t().tolist(), data.edge_type.tolist()):
        lines.append(f"{names[h]} --{graph.relation_name(r)}--> {names[t]}")
        if limit is not None and len(lines) >= limit:
            break
    return lines


def question_answer_joins(data: Data) -> tuple[bool, bool]:
    """Whether one retrieved subgraph joins a question concept to an answer concept.

    Returns ``(edge, edge_or_path)``: a direct edge between a :data:`NODE_QUESTION` and a
    :data:`NODE_ANSWER` node (either direction), and such an edge or a 2-hop path through one
    other node. Reads ``node_type`` and ``edge_index`` only, so it works for every retriever.
    """
    nt = np.asarray(data.node_type)
    ei = np.asarray(data.edge_index)
    if ei.size == 0:
        return False, False
    s, t = ei
    q = nt == NODE_QUESTION
    a = nt == NODE_ANSWER
    if bool(np.any((q[s] & a[t]) | (a[s] & q[t]))):
        return True, True
    n = len(nt)  # a node adjacent to both a question node and an answer node
    touch_q = np.zeros(n, bool)
    touch_a = np.zeros(n, bool)
    touch_q[t[q[s]]] = True
    touch_q[s[q[t]]] = True
    touch_a[t[a[s]]] = True
    touch_a[s[a[t]]] = True
    return False, bool(np.any(touch_q & touch_a))


def _callable_name(fn: Any) -> str:
    name = getattr(fn, "config_name", None)
    if isinstance(name, str):
        return name
    mod = getattr(fn, "__module__", type(fn).__module__)
    qual = getattr(fn, "__qualname__", type(fn).__qualname__)
    return f"{mod}.{qual}"
