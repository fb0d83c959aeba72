"""QA-GNN / MHGRN two-hop subgraphs (:class:`SubgraphRetriever`) and their node rankings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from .adjacency import EdgeRebuilder, _Adjacency
from .base import _I64, _callable_name, _grounded, _node_layout, _Retriever, statement_text
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
#: (higher is kept first; ties by lower concept id). ``"relevance"`` is not among them: it
#: needs the statement text and a :class:`RelevanceScorer`.
RANKINGS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "connectivity": rank_connectivity,
    "degree": rank_degree,
    "id": rank_id,
}

#: The ranking by a language model's relevance of each concept to the statement (QA-GNN).
RELEVANCE = "relevance"


@runtime_checkable
class RelevanceScorer(Protocol):
    """What ``SubgraphRetriever(ranking="relevance", scorer=...)`` needs of a scorer.

    ``score(context, names)`` returns one finite float per concept name (higher = more
    relevant to the statement ``context``); names are the graph's own (``ice_cream``), the
    scorer writes them as it likes. ``config`` is a JSON-able mapping that identifies the
    scores (model weights, settings, version): it enters the retriever's ``config`` and so
    the preprocessing cache key. Optionally, ``prepare(contexts)`` is called with every
    statement of a dataset before retrieval (to embed them in batches) and ``flush()`` after
    it (to write what the scorer memoised). The graph layer defines the protocol only;
    :class:`kgfuse.encoders.relevance.TextRelevanceScorer` implements it with a text encoder.
    """

    @property
    def config(self) -> Mapping[str, Any]: ...  # pragma: no cover - protocol

    def score(self, context: str, names: list[str]) -> np.ndarray: ...  # pragma: no cover - protocol


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
    ones. Kept bridging concepts are listed in ascending id order after the grounded ones.

    **Relevance ranking (QA-GNN).** ``ranking="relevance"`` with a ``scorer`` (a
    :class:`RelevanceScorer`, e.g. :class:`kgfuse.encoders.relevance.TextRelevanceScorer`)
    ranks X by the relevance of each concept to the statement, as QA-GNN does with its
    language model: the retriever then reads the statement text
    (``retrieve_nodes(grounding, context=(question, choice))``, passed by
    :func:`~kgfuse.kg.preprocess.preprocess_dataset`), scores the grounded concepts and
    every candidate with ``scorer.score("question choice", names)``, keeps the best
    ``max_nodes - |Q| - |A|`` candidates (ties by lower id) and returns the kept nodes'
    scores as ``node_score`` (float32, aligned with ``concept_ids``; the preprocessing cache
    stores it, and ``QAGNNEncoder(use_node_score=True)`` reads it as a node feature). The
    scorer's ``config`` is part of this retriever's ``config``, hence of the cache key.
    Scoring runs in one process (``fork_safe`` is false).

    .. code-block:: python

        from kgfuse.encoders.relevance import TextRelevanceScorer
        sr = SubgraphRetriever(kg, max_nodes=200, ranking="relevance", scorer=TextRelevanceScorer())
        arrays = sr.retrieve_arrays(grounding, context=(question, choice))  # ... "node_score"

    Args:
        graph: the knowledge graph.
        max_nodes: node budget.
        ranking: name, callable, or ``"relevance"`` (see above).
        bridge: ``"qa"`` or ``"all_pairs"``.
        scorer: the relevance scorer; required by ``ranking="relevance"`` and only used by it.
    """

    def __init__(
        self,
        graph: "KnowledgeGraph",
        max_nodes: int = 200,
        ranking: str | Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] = "connectivity",
        *,
        bridge: str = "qa",
        scorer: RelevanceScorer | None = None,
    ) -> None:
        if max_nodes < 1:
            raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
        if bridge not in ("qa", "all_pairs"):
            raise ValueError(f"bridge must be 'qa' or 'all_pairs', not {bridge!r}")
        self.scorer = None
        self._scorer_config: dict[str, Any] | None = None
        if ranking == RELEVANCE:
            if scorer is None:
                raise ValueError("ranking='relevance' needs a scorer: SubgraphRetriever(graph, ranking='relevance', "
                                 "scorer=TextRelevanceScorer(...)) (kgfuse.encoders.relevance)")
            if not callable(getattr(scorer, "score", None)) or not isinstance(getattr(scorer, "config", None), Mapping):
                raise TypeError(f"scorer must have score(context, names) and a config mapping; got {type(scorer).__name__}")
            try:
                self._scorer_config = json.loads(json.dumps(dict(scorer.config), sort_keys=True))
            except (TypeError, ValueError) as e:
                raise TypeError(f"scorer.config must be JSON-able (it enters the cache key): {e}") from None
            self.scorer = scorer
            self._rank = None
        elif scorer is not None:
            raise ValueError(f"a scorer is used by ranking='relevance' only, not by ranking={ranking!r}")
        elif isinstance(ranking, str):
            if ranking not in RANKINGS:
                raise ValueError(f"unknown ranking {ranking!r}; choose one of {sorted(RANKINGS) + [RELEVANCE]} "
                                 "or pass a callable")
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
        """JSON-able configuration (part of cache keys); with ``ranking="relevance"`` it
        includes the scorer's ``config`` under ``"scorer"``."""
        out = {
            "class": "SubgraphRetriever",
            "version": 2,
            "max_nodes": self.max_nodes,
            "ranking": self.ranking if isinstance(self.ranking, str) else _callable_name(self.ranking),
            "bridge": self.bridge,
        }
        if self.scorer is not None:
            out["scorer"] = self._scorer_config
        return out

    @property
    def needs_context(self) -> bool:
        """True with ``ranking="relevance"``: :meth:`retrieve_nodes` needs the statement text."""
        return self.scorer is not None

    @property
    def fork_safe(self) -> bool:
        """False with a scorer (a text encoder and its memo stay in one process)."""
        return self.scorer is None

    def prepare(self, contexts: Sequence[Any]) -> None:
        """Give the scorer every statement (``(question, choice)`` pairs or strings) before
        retrieval, when it has ``prepare`` (a text scorer embeds them in batches)."""
        prep = getattr(self.scorer, "prepare", None)
        if callable(prep):
            prep([statement_text(c) for c in contexts])

    def flush(self) -> None:
        """Let the scorer write what it memoised, when it has ``flush``."""
        fl = getattr(self.scorer, "flush", None)
        if callable(fl):
            fl()

    def node_scores(self, context: Any, concept_ids: np.ndarray) -> np.ndarray:
        """The scorer's relevance of each concept to the statement ``context`` (float64)."""
        names = [self.graph.concept_name(int(c)) for c in concept_ids]
        scores = np.asarray(self.scorer.score(statement_text(context), names), dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(names):
            raise ValueError(f"scorer returned {scores.shape[0]} scores for {len(names)} concepts")
        if not np.isfinite(scores).all():
            raise ValueError("scorer returned a score that is not finite")
        return scores

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

    def retrieve_nodes(self, grounding: "Grounding", context: Any = None) -> dict[str, np.ndarray]:
        """The node set without edges: ``concept_ids``, ``node_type`` and, with
        ``ranking="relevance"``, ``node_score`` (what the preprocessing cache stores).

        Args:
            grounding: the statement's grounded concepts.
            context: ``(question, choice)`` (or the statement as one string); required by
                ``ranking="relevance"``, ignored otherwise.
        """
        relevance = self.scorer is not None
        if relevance and context is None:
            raise ValueError("ranking='relevance' scores concepts against the statement: call "
                             "retrieve_nodes(grounding, context=(question, choice))")
        q, a = _grounded(grounding)
        if q.size + a.size == 0:
            out = {"concept_ids": np.zeros(0, _I64), "node_type": np.zeros(0, _I64)}
            if relevance:
                out["node_score"] = np.zeros(0, np.float32)
            return out
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
        if relevance:
            scores = self.node_scores(context, np.concatenate((q, a, cand)))
            grounded_scores, scores = scores[: q.size + a.size], scores[q.size + a.size:]
            if cand.size > room:
                keep = np.lexsort((cand, -scores))[:room]
                keep = keep[np.argsort(cand[keep])]  # kept candidates in ascending id order
                cand, scores = cand[keep], scores[keep]
            concept_ids, node_type = _node_layout(q, a, cand)
            node_score = np.concatenate((grounded_scores, scores)).astype(np.float32)
            return {"concept_ids": concept_ids, "node_type": node_type, "node_score": node_score}
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
