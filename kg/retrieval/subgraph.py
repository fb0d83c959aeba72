"""QA-GNN / MHGRN two-hop subgraphs (:class:`SubgraphRetriever`) and their node rankings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from .adjacency import EdgeRebuilder, _Adjacency
from .base import _I64, _callable_name, _grounded, _node_layout, _Retriever
from .registry import register_retriever

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import KnowledgeGraph
    from ..linking import Grounding

def rank_connectivity(candidates: np.ndarray, n_links: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Default ranking: concepts adjacent to more grounded concepts first, then rarer
    (lower-degree, more specific) concepts; ties go to the lower id."""
    return n_links.astype(np.float64) * (float(degree.max(initial=0)) + 1.0) - degree


def rank_degree(candidates: np.ndarray, n_links: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Lowest degree first."""
    return -degree.astype(np.float64)


def rank_id(candidates: np.ndarray, n_links: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Lowest concept id first (MHGRN keeps ``sorted(extra_nodes)``)."""
    return np.zeros(candidates.size)


#: Named rankings for :class:`SubgraphRetriever`: ``fn(candidates, n_links, degree) -> scores``
#: (higher is kept first; ties by lower concept id).
RANKINGS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "connectivity": rank_connectivity,
    "degree": rank_degree,
    "id": rank_id,
}


@register_retriever("subgraph")
class SubgraphRetriever(_Retriever):
    """The MHGRN / QA-GNN two-hop subgraph.

    Nodes: the question concepts Q, the answer concepts A, and the bridging concepts

    .. math::
        X = \\big(N(Q) \\cap N(A)\\big) \\setminus (Q \\cup A)   \\quad (\\text{bridge}="qa")

    where :math:`N(S)` is the set of concepts adjacent (in either direction) to some concept
    of S -- i.e. the middle nodes of every 2-hop question-answer path. ``bridge="all_pairs"``
    is QA-GNN's variant: concepts adjacent to at least two distinct grounded concepts.
    Edges: every graph edge among the kept nodes (direct question-answer edges included),
    with its relation id.

    When ``|Q| + |A| + |X| > max_nodes``, the grounded concepts are kept (cut themselves if
    they alone exceed ``max_nodes``) and X is ranked by ``ranking`` -- a name in
    :data:`RANKINGS` or a callable ``fn(candidates, n_links, degree) -> scores`` where
    ``n_links`` counts the grounded concepts each candidate is adjacent to and ``degree``
    is its total degree; higher scores are kept, ties go to the lower id. The default
    ``"connectivity"`` keeps concepts that bridge more grounded concepts, then the rarer
    ones. (QA-GNN ranks by a language-model relevance score; pass such a callable.)
    Kept bridging concepts are listed in ascending id order after the grounded ones.

    Args:
        graph: the knowledge graph.
        max_nodes: node budget.
        ranking: name or callable (see above).
        bridge: ``"qa"`` or ``"all_pairs"``.
    """

    def __init__(
        self,
        graph: "KnowledgeGraph",
        max_nodes: int = 200,
        ranking: str | Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = "connectivity",
        *,
        bridge: str = "qa",
    ) -> None:
        if max_nodes < 1:
            raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
        if bridge not in ("qa", "all_pairs"):
            raise ValueError(f"bridge must be 'qa' or 'all_pairs', not {bridge!r}")
        if isinstance(ranking, str):
            if ranking not in RANKINGS:
                raise ValueError(f"unknown ranking {ranking!r}; choose one of {sorted(RANKINGS)} or pass a callable")
            self._rank = RANKINGS[ranking]
        elif callable(ranking):
            self._rank = ranking
        else:
            raise TypeError(f"ranking must be a name or a callable, not {type(ranking).__name__}")
        self.ranking = ranking
        self.graph = graph
        self.max_nodes = int(max_nodes)
        self.bridge = bridge
        self._parts: tuple[_Adjacency, np.ndarray, np.ndarray, EdgeRebuilder] | None = None

    def build(self) -> "SubgraphRetriever":
        """Make the adjacency arrays and the pair index now (before worker processes fork,
        shared copy-on-write); otherwise the first retrieval does. A cache hit needs neither."""
        if self._parts is None:
            graph = self.graph
            adj = _Adjacency(graph)
            adj.in_nbr  # noqa: B018
            if graph.num_edges > 100_000:
                graph.pair_index()
            self._parts = (adj, adj.out_deg + adj.in_deg, np.zeros(graph.num_concepts, dtype=np.uint8),
                           EdgeRebuilder(graph))
        return self

    @property
    def _adj(self) -> _Adjacency:
        return self.build()._parts[0]

    @property
    def _degree(self) -> np.ndarray:
        return self.build()._parts[1]

    @property
    def _mark(self) -> np.ndarray:
        return self.build()._parts[2]

    @property
    def _edges(self) -> EdgeRebuilder:
        return self.build()._parts[3]

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able configuration (part of cache keys)."""
        return {
            "class": "SubgraphRetriever",
            "version": 2,
            "max_nodes": self.max_nodes,
            "ranking": self.ranking if isinstance(self.ranking, str) else _callable_name(self.ranking),
            "bridge": self.bridge,
        }

    def bridging(self, q: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Candidate bridging concepts (ascending id) and the number of grounded concepts
        each is adjacent to."""
        g = np.concatenate((q, a))
        own, nbr, _, _ = self._adj.gather(g, True, True, grouped=False)
        mark = self._mark
        if self.bridge == "qa":
            isq = own < q.size
            mark[nbr[isq]] |= 1
            mark[nbr[~isq]] |= 2
            mark[g] |= 4
            sel = mark[nbr] == 3
            mark[nbr] = 0
            mark[g] = 0
        else:
            mark[g] = 4
            sel = mark[nbr] != 4
            mark[g] = 0
        own, nbr = own[sel], nbr[sel]
        if nbr.size == 0:
            return np.zeros(0, _I64), np.zeros(0, _I64)
        code = np.unique(nbr * g.size + own)
        cand, n_links = np.unique(code // g.size, return_counts=True)
        if self.bridge == "all_pairs":
            keep = n_links >= 2
            cand, n_links = cand[keep], n_links[keep]
        return cand.astype(_I64), n_links.astype(_I64)

    @property
    def edge_mode(self) -> str:
        """How :meth:`add_edges` rebuilds edges: always ``"induced"``."""
        return "induced"

    def retrieve_nodes(self, grounding: "Grounding") -> dict[str, np.ndarray]:
        """The node set without edges: ``concept_ids``, ``node_type`` (what the
        preprocessing cache stores)."""
        q, a = _grounded(grounding)
        if q.size + a.size == 0:
            return {"concept_ids": np.zeros(0, _I64), "node_type": np.zeros(0, _I64)}
        budget = self.max_nodes
        if q.size + a.size > budget:  # keep the grounded concepts first, questions first
            q = q[:budget]
            a = a[: budget - q.size]
        can_bridge = (q.size and a.size) if self.bridge == "qa" else (q.size + a.size >= 2)
        if can_bridge and q.size + a.size < budget:
            cand, n_links = self.bridging(q, a)
        else:
            cand, n_links = np.zeros(0, _I64), np.zeros(0, _I64)
        room = budget - q.size - a.size
        if cand.size > room:
            scores = np.asarray(self._rank(cand, n_links, self._degree[cand]), dtype=np.float64).reshape(-1)
            if scores.shape[0] != cand.shape[0]:
                raise ValueError(f"ranking returned {scores.shape[0]} scores for {cand.shape[0]} candidates")
            order = np.lexsort((cand, -scores))
            cand = np.sort(cand[order[:room]])
        concept_ids, node_type = _node_layout(q, a, cand)
        return {"concept_ids": concept_ids, "node_type": node_type}

    def add_edges(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``arrays`` (from :meth:`retrieve_nodes`) with the induced ``edge_index`` and
        ``edge_type``."""
        return self._edges(arrays, "induced")


    def __repr__(self) -> str:
        return f"SubgraphRetriever(max_nodes={self.max_nodes}, ranking={self.config['ranking']!r}, bridge={self.bridge!r})"
