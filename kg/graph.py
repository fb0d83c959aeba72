"""The knowledge-graph store: one immutable, array-backed representation for every graph.

A :class:`KnowledgeGraph` holds

- a concept vocabulary (dense ids ``0..num_concepts-1`` <-> names),
- a relation vocabulary (dense ids ``0..num_relations-1`` <-> names),
- edge arrays ``head``, ``relation``, ``tail`` (int64) and ``weight`` (float32), kept in
  canonical order (sorted by head, relation, tail; duplicates merged),
- CSR adjacency in both directions, built once.

Hot paths (neighbour lookups, path search, subgraph cuts) work on these arrays; networkx is
for interoperability. The graph is immutable: its arrays are read-only, and :attr:`hash` is
a stable content hash (vocabularies and edges) that every downstream cache keys on.

Loaders are alternate constructors (see :mod:`kgfuse.kg.loaders`):
``from_conceptnet``, ``from_triples``, ``from_networkx``, ``from_wordnet``; the compiled
on-disk format is :meth:`KnowledgeGraph.save` / :meth:`KnowledgeGraph.load`
(see :mod:`kgfuse.kg.store`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import torch

__all__ = ["KnowledgeGraph", "GraphBuilder", "Neighbors"]

_HASH_VERSION = "kgfuse-kg-v1"


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.flags.writeable and a.base is None:
        a.flags.writeable = False
    elif a.flags.writeable:
        a = a.copy()
        a.flags.writeable = False
    return a


def _build_csr(src: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (ptr, order) such that edges ``order[ptr[i]:ptr[i+1]]`` start at node i."""
    order = np.argsort(src, kind="stable")
    counts = np.bincount(src, minlength=num_nodes)
    ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return ptr, order.astype(np.int64, copy=False)


@dataclass(frozen=True)
class Neighbors:
    """Neighbours of one concept: parallel arrays of node ids, relation ids and edge ids.

    ``direction`` is ``"out"`` (edges ``i -> node``) or ``"in"`` (edges ``node -> i``).
    """

    nodes: np.ndarray
    relations: np.ndarray
    edges: np.ndarray
    direction: str

    def __len__(self) -> int:
        return int(self.nodes.shape[0])

    def __iter__(self):
        return iter(zip(self.nodes.tolist(), self.relations.tolist()))


class KnowledgeGraph:
    """An immutable, array-backed multi-relational directed graph.

    Args:
        concepts: concept names; position = concept id. Names must be unique and contain
            no newline.
        relations: relation names; position = relation id. Unique.
        head, relation, tail: integer edge arrays of equal length.
        weight: optional float edge weights (default 1.0).
        meta: free JSON-serialisable description of how the graph was built (loader,
            its parameters, skipped-record counts). Recorded by :meth:`save`; not part of
            :attr:`hash`.
        dedup: merge repeated ``(head, relation, tail)`` edges, keeping the largest weight.

    Edges are stored in canonical order (by head, then relation, then tail), so two graphs
    with the same vocabularies and the same edge set have the same arrays and hash,
    whatever order the edges arrived in.

    Shapes:
        head, relation, tail, weight: ``[num_edges]``.
        out_ptr, in_ptr: ``[num_concepts + 1]``.
    """

    __slots__ = (
        "_concepts",
        "_relations",
        "_name_to_id",
        "_rel_to_id",
        "head",
        "relation",
        "tail",
        "weight",
        "out_ptr",
        "in_ptr",
        "in_order",
        "meta",
        "_hash",
        "_pair_index",
        "_frozen",
    )

    def __init__(
        self,
        concepts: Sequence[str],
        relations: Sequence[str],
        head: Any,
        relation: Any,
        tail: Any,
        weight: Any | None = None,
        *,
        meta: Mapping[str, Any] | None = None,
        dedup: bool = True,
        _canonical: bool = False,
        _in_csr: tuple[np.ndarray, np.ndarray] | None = None,
        _hash: str | None = None,
    ) -> None:
        concepts = list(concepts)
        relations = list(relations)
        n, r = len(concepts), len(relations)
        head = np.asarray(head, dtype=np.int64).reshape(-1)
        relation = np.asarray(relation, dtype=np.int64).reshape(-1)
        tail = np.asarray(tail, dtype=np.int64).reshape(-1)
        if weight is None:
            weight = np.ones(head.shape[0], dtype=np.float32)
        weight = np.asarray(weight, dtype=np.float32).reshape(-1)
        m = head.shape[0]
        if not (relation.shape[0] == tail.shape[0] == weight.shape[0] == m):
            raise ValueError(
                "edge arrays differ in length: "
                f"head={m}, relation={relation.shape[0]}, tail={tail.shape[0]}, weight={weight.shape[0]}"
            )
        if m:
            for name, arr, hi in (("head", head, n), ("tail", tail, n), ("relation", relation, r)):
                lo_v, hi_v = int(arr.min()), int(arr.max())
                if lo_v < 0 or hi_v >= hi:
                    raise ValueError(f"edge array '{name}' has id {hi_v if hi_v >= hi else lo_v} outside [0, {hi})")

        if not _canonical and m:
            order = np.lexsort((tail, relation, head))
            head, relation, tail, weight = head[order], relation[order], tail[order], weight[order]
            if dedup:
                same = (head[1:] == head[:-1]) & (relation[1:] == relation[:-1]) & (tail[1:] == tail[:-1])
                if same.any():
                    starts = np.flatnonzero(np.concatenate(([True], ~same)))
                    weight = np.maximum.reduceat(weight, starts).astype(np.float32)
                    head, relation, tail = head[starts], relation[starts], tail[starts]

        self._concepts = concepts
        self._relations = relations
        self._name_to_id: dict[str, int] | None = None
        self._rel_to_id = {name: i for i, name in enumerate(relations)}
        if len(self._rel_to_id) != r:
            raise ValueError("relation names are not unique")
        self.head = _readonly(head)
        self.relation = _readonly(relation)
        self.tail = _readonly(tail)
        self.weight = _readonly(weight)
        # Edges are sorted by head, so out-CSR needs only offsets.
        counts = np.bincount(self.head, minlength=n) if m else np.zeros(n, dtype=np.int64)
        out_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=out_ptr[1:])
        self.out_ptr = _readonly(out_ptr)
        if _in_csr is None:
            _in_csr = _build_csr(self.tail, n)
        self.in_ptr = _readonly(_in_csr[0])
        self.in_order = _readonly(_in_csr[1])
        self.meta = dict(meta or {})
        self._hash = _hash
        self._pair_index: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._frozen = True

    # ------------------------------------------------------------------ immutability
    def __setattr__(self, key: str, value: Any) -> None:
        if getattr(self, "_frozen", False) and key not in ("_name_to_id", "_hash", "_pair_index"):
            raise AttributeError(f"KnowledgeGraph is immutable; cannot set '{key}'")
        object.__setattr__(self, key, value)

    # ------------------------------------------------------------------ sizes
    @property
    def num_concepts(self) -> int:
        return len(self._concepts)

    @property
    def num_relations(self) -> int:
        return len(self._relations)

    @property
    def num_edges(self) -> int:
        return int(self.head.shape[0])

    def __len__(self) -> int:
        return self.num_concepts

    def __repr__(self) -> str:
        return (
            f"KnowledgeGraph(num_concepts={self.num_concepts}, num_relations={self.num_relations}, "
            f"num_edges={self.num_edges}, hash={self.hash[:12]})"
        )

    # ------------------------------------------------------------------ vocabularies
    @property
    def concepts(self) -> Sequence[str]:
        """Concept names in id order (read-only view)."""
        return _ReadOnlyList(self._concepts)

    @property
    def relations(self) -> Sequence[str]:
        """Relation names in id order."""
        return tuple(self._relations)

    def _names(self) -> dict[str, int]:
        if self._name_to_id is None:
            self._name_to_id = {name: i for i, name in enumerate(self._concepts)}
        return self._name_to_id

    def concept_id(self, name: str, default: int | None = None) -> int:
        """Id of concept ``name``. Raises KeyError unless ``default`` is given."""
        i = self._names().get(name)
        if i is None:
            if default is not None:
                return default
            raise KeyError(f"unknown concept {name!r}")
        return i

    def has_concept(self, name: str) -> bool:
        return name in self._names()

    def concept_name(self, i: int) -> str:
        return self._concepts[int(i)]

    def relation_id(self, name: str) -> int:
        try:
            return self._rel_to_id[name]
        except KeyError:
            raise KeyError(f"unknown relation {name!r}; known: {sorted(self._rel_to_id)[:20]}") from None

    def relation_name(self, i: int) -> str:
        return self._relations[int(i)]

    # ------------------------------------------------------------------ adjacency
    def out_edges(self, i: int) -> np.ndarray:
        """Edge ids of edges leaving concept i."""
        return np.arange(self.out_ptr[i], self.out_ptr[i + 1], dtype=np.int64)

    def in_edges(self, i: int) -> np.ndarray:
        """Edge ids of edges entering concept i."""
        return self.in_order[self.in_ptr[i] : self.in_ptr[i + 1]]

    def neighbors(self, i: int, direction: str = "out") -> Neighbors:
        """Neighbours of concept ``i`` with relation ids.

        Args:
            direction: ``"out"`` (successors), ``"in"`` (predecessors) or ``"both"``
                (out-neighbours then in-neighbours; ``edges`` tells which edge each came from).
        """
        if not 0 <= int(i) < self.num_concepts:
            raise IndexError(f"concept id {i} outside [0, {self.num_concepts})")
        if direction == "out":
            e = self.out_edges(i)
            return Neighbors(self.tail[e], self.relation[e], e, "out")
        if direction == "in":
            e = self.in_edges(i)
            return Neighbors(self.head[e], self.relation[e], e, "in")
        if direction == "both":
            eo, ei = self.out_edges(i), self.in_edges(i)
            return Neighbors(
                np.concatenate((self.tail[eo], self.head[ei])),
                np.concatenate((self.relation[eo], self.relation[ei])),
                np.concatenate((eo, ei)),
                "both",
            )
        raise ValueError(f"direction must be 'out', 'in' or 'both', not {direction!r}")

    def degree(self, direction: str = "both") -> np.ndarray:
        """Degree of every concept (``"out"``, ``"in"`` or ``"both"``)."""
        out = np.diff(self.out_ptr)
        inn = np.diff(self.in_ptr)
        return {"out": out, "in": inn, "both": out + inn}[direction]

    def induced_edges(self, nodes: Any) -> np.ndarray:
        """Ids of the edges whose both ends are in ``nodes`` (sorted).

        Cost is proportional to the out-degree of ``nodes``, not to the graph size.
        """
        nodes = np.unique(np.asarray(nodes, dtype=np.int64))
        if nodes.size == 0 or self.num_edges == 0:
            return np.zeros(0, dtype=np.int64)
        starts, ends = self.out_ptr[nodes], self.out_ptr[nodes + 1]
        lens = ends - starts
        total = int(lens.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        # Vectorised concatenation of the ranges [start, end).
        offs = np.repeat(starts - np.cumsum(np.concatenate(([0], lens[:-1]))), lens)
        eids = np.arange(total, dtype=np.int64) + offs
        t = self.tail[eids]
        pos = np.searchsorted(nodes, t)
        pos[pos == nodes.size] = 0
        return eids[nodes[pos] == t]

    def pair_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A sorted index of the distinct ``(head, tail)`` pairs, built once on first use.

        Returns ``(keys, ptr, order)``: ``keys[u] = head * num_concepts + tail`` of the u-th
        distinct pair (ascending), and the ids of the edges of that pair are
        ``order[ptr[u]:ptr[u + 1]]`` (ascending). Looking up every ordered pair of a node
        set S costs ``|S|^2`` binary searches, whatever the degrees of its nodes, so edges
        among hubs are found without scanning their out-edges. Memory: about 16 bytes per
        edge (int64 keys, int32 offsets and edge ids). Derived data: not part of
        :attr:`hash`, not saved.
        """
        if self._pair_index is None:
            n, m = self.num_concepts, self.num_edges
            key = self.head * np.int64(n) + self.tail
            order = np.argsort(key, kind="stable")  # canonical order: ties stay by relation
            skey = key[order]
            first = np.flatnonzero(np.concatenate(([True], skey[1:] != skey[:-1]))) if m else np.zeros(0, np.int64)
            idx = np.int32 if m < 2**31 else np.int64
            ptr = np.append(first, m).astype(idx)
            self._pair_index = (_readonly(skey[first]), _readonly(ptr), _readonly(order.astype(idx)))
        return self._pair_index

    def subgraph(self, nodes: Any) -> "KnowledgeGraph":
        """The subgraph induced by ``nodes``: new dense ids follow the order of ``nodes``.

        The result's ``meta["parent_ids"]`` maps new ids to ids of this graph.
        """
        nodes = np.asarray(nodes, dtype=np.int64).reshape(-1)
        if np.unique(nodes).size != nodes.size:
            raise ValueError("subgraph nodes contain duplicates")
        eids = self.induced_edges(nodes)
        sorter = np.argsort(nodes)
        local = lambda x: sorter[np.searchsorted(nodes, x, sorter=sorter)]  # noqa: E731
        return KnowledgeGraph(
            [self._concepts[i] for i in nodes.tolist()],
            self._relations,
            local(self.head[eids]),
            self.relation[eids],
            local(self.tail[eids]),
            self.weight[eids],
            meta={"parent_hash": self.hash, "parent_ids": nodes.tolist()},
        )

    # ------------------------------------------------------------------ hashing
    @property
    def hash(self) -> str:
        """SHA-256 of the vocabularies and the canonical edge arrays (hex).

        Stable across processes, platforms and save/load; changes when any concept name,
        relation name, edge or weight changes. ``meta`` is not part of it.
        """
        if self._hash is None:
            h = hashlib.sha256()
            h.update(_HASH_VERSION.encode())
            h.update(json.dumps([self.num_concepts, self.num_relations, self.num_edges]).encode())
            h.update("\n".join(self._relations).encode("utf-8"))
            h.update(b"\x00")
            h.update("\n".join(self._concepts).encode("utf-8"))
            h.update(b"\x00")
            for a, dt in ((self.head, "<i8"), (self.relation, "<i8"), (self.tail, "<i8"), (self.weight, "<f4")):
                h.update(np.ascontiguousarray(a, dtype=dt).tobytes())
            self._hash = h.hexdigest()
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KnowledgeGraph) and self.hash == other.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    # ------------------------------------------------------------------ PyG / torch
    @property
    def edge_index(self) -> "torch.Tensor":
        """``[2, num_edges]`` long tensor (PyG convention: row 0 = source)."""
        import torch

        return torch.from_numpy(np.stack((self.head, self.tail)))

    @property
    def edge_type(self) -> "torch.Tensor":
        """``[num_edges]`` long tensor of relation ids."""
        import torch

        return torch.from_numpy(self.relation.copy())

    def to_pyg(self):
        """The whole graph as ``torch_geometric.data.Data`` (``edge_index``, ``edge_type``,
        ``edge_weight``, ``num_nodes``)."""
        import torch
        from torch_geometric.data import Data

        return Data(
            edge_index=self.edge_index,
            edge_type=self.edge_type,
            edge_weight=torch.from_numpy(self.weight.copy()),
            num_nodes=self.num_concepts,
        )

    # ------------------------------------------------------------------ networkx
    def to_networkx(self) -> "nx.MultiDiGraph":
        """A ``networkx.MultiDiGraph`` with concept names as nodes and edge attributes
        ``relation`` (name) and ``weight``; ``G.graph["relations"]`` keeps the relation
        vocabulary in id order, so :meth:`from_networkx` rebuilds the same graph (same hash)."""
        import networkx as nx

        G = nx.MultiDiGraph(relations=list(self._relations))
        G.add_nodes_from(self._concepts)
        names, rels = self._concepts, self._relations
        G.add_edges_from(
            (names[h], names[t], {"relation": rels[r], "weight": float(w)})
            for h, r, t, w in zip(self.head.tolist(), self.relation.tolist(), self.tail.tolist(), self.weight.tolist())
        )
        return G

    @classmethod
    def from_networkx(cls, G: "nx.Graph", relation: str = "relation", weight: str = "weight", *,
                      default_relation: str | None = None) -> "KnowledgeGraph":
        """Build from a networkx ``DiGraph`` or ``MultiDiGraph``.

        Node names are ``str(node)``. Each edge's relation is its attribute ``relation``;
        an edge without it raises (naming the edge) unless ``default_relation`` is given.
        Undirected graphs are rejected: say what direction means by converting first.
        """
        from .loaders import from_networkx

        return from_networkx(G, relation=relation, weight=weight, default_relation=default_relation)

    # ------------------------------------------------------------------ loaders (alternate constructors)
    @classmethod
    def from_conceptnet(cls, path, language: str = "en", relations: str | Mapping[str, str] | None = "merged17",
                        add_inverse: bool = True, **kwargs) -> "KnowledgeGraph":
        """Stream the official ConceptNet 5 assertions file; see :func:`kgfuse.kg.loaders.from_conceptnet`."""
        from .loaders import from_conceptnet

        return from_conceptnet(path, language=language, relations=relations, add_inverse=add_inverse, **kwargs)

    @classmethod
    def from_triples(cls, path, **kwargs) -> "KnowledgeGraph":
        """Tab-separated ``head, relation, tail[, weight]``; see :func:`kgfuse.kg.loaders.from_triples`."""
        from .loaders import from_triples

        return from_triples(path, **kwargs)

    @classmethod
    def from_wordnet(cls, path=None, **kwargs) -> "KnowledgeGraph":
        """WordNet 3.0 database files; see :func:`kgfuse.kg.loaders.from_wordnet`."""
        from .loaders import from_wordnet

        return from_wordnet(path, **kwargs)

    # ------------------------------------------------------------------ compiled format
    def save(self, directory) -> None:
        """Write the compiled format (arrays + JSON, no pickle); see :mod:`kgfuse.kg.store`."""
        from .store import save_graph

        save_graph(self, directory)

    @classmethod
    def load(cls, directory, *, mmap: bool = True, verify: bool = True) -> "KnowledgeGraph":
        """Read the compiled format written by :meth:`save`."""
        from .store import load_graph

        return load_graph(directory, mmap=mmap, verify=verify)


class _ReadOnlyList(Sequence[str]):
    """A read-only view of a list, without copying 800k names."""

    __slots__ = ("_data",)

    def __init__(self, data: list[str]):
        self._data = data

    def __getitem__(self, i):
        return self._data[i]

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self):
        return iter(self._data)

    def __contains__(self, x) -> bool:
        return x in self._data


class GraphBuilder:
    """Incremental construction with interned vocabularies; loaders use it.

    >>> b = GraphBuilder()
    >>> b.add("plate", "AtLocation", "cupboard", 1.0)
    >>> kg = b.build(meta={"loader": "example"})
    """

    def __init__(self, relations: Iterable[str] = ()) -> None:
        self.concepts: list[str] = []
        self.relations: list[str] = []
        self._cid: dict[str, int] = {}
        self._rid: dict[str, int] = {}
        for r in relations:
            self.relation(r)
        self._h: list[int] = []
        self._r: list[int] = []
        self._t: list[int] = []
        self._w: list[float] = []

    def concept(self, name: str) -> int:
        i = self._cid.get(name)
        if i is None:
            if "\n" in name:
                raise ValueError(f"concept name contains a newline: {name!r}")
            i = self._cid[name] = len(self.concepts)
            self.concepts.append(name)
        return i

    def has_concept(self, name: str) -> bool:
        return name in self._cid

    def relation(self, name: str) -> int:
        i = self._rid.get(name)
        if i is None:
            i = self._rid[name] = len(self.relations)
            self.relations.append(name)
        return i

    def add(self, head: str, relation: str, tail: str, weight: float = 1.0) -> None:
        self._h.append(self.concept(head))
        self._r.append(self.relation(relation))
        self._t.append(self.concept(tail))
        self._w.append(weight)

    def add_ids(self, head: int, relation: int, tail: int, weight: float = 1.0) -> None:
        self._h.append(head)
        self._r.append(relation)
        self._t.append(tail)
        self._w.append(weight)

    @property
    def num_edges(self) -> int:
        return len(self._h)

    def build(self, *, meta: Mapping[str, Any] | None = None, dedup: bool = True) -> KnowledgeGraph:
        return KnowledgeGraph(
            self.concepts,
            self.relations,
            np.fromiter(self._h, dtype=np.int64, count=len(self._h)),
            np.fromiter(self._r, dtype=np.int64, count=len(self._r)),
            np.fromiter(self._t, dtype=np.int64, count=len(self._t)),
            np.fromiter(self._w, dtype=np.float32, count=len(self._w)),
            meta=meta,
            dedup=dedup,
        )
