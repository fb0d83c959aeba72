"""What part of each retrieved subgraph reaches the model: the experiment controls of
``model.graph_input`` (:class:`~kgfuse.tasks.config.ModelConfig`).

==========  ===================================================================================
full        the retrieved subgraph as it is (default)
no_edges    the same nodes, node types and token-entity alignments, every edge removed: does
            message passing over the graph's relations matter, or only the linked nodes?
qa_only     only the question and answer nodes and the edges among them (bridge nodes gone)
none        no grounding and no subgraph at all (the LM-only features) fed to the fused
            architecture: does the lead need the graph, or only the extra parameters?
==========  ===================================================================================

Groundings (hence the ERNIE alignments) are unchanged except for ``none``. The views wrap a
preprocessed dataset (``pre[i][j] -> (Grounding, KGData)``) lazily; nothing is copied.

A model trained with knowledge text (``knowledge_text``) has a second set of test-time views,
:data:`KNOWLEDGE_INPUTS`, of which part of that text reaches it
(:attr:`~kgfuse.tasks.inference.KGFusePredictor.knowledge_input`; the subgraph views above
are independent of them):

============  =================================================================================
full          the knowledge text the model was trained with (default)
none          no knowledge text: the plain ``(question, choice)`` input
triples       only the fact sentences of the text the model would see (definitions and
              retrieved examples left out, the freed budget not refilled)
definitions   only its definition sentences
examples      only its retrieved training examples
============  =================================================================================
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["GRAPH_INPUTS", "KNOWLEDGE_INPUTS", "SUBGRAPH_VIEWS", "drop_edges", "qa_nodes_only", "MappedSubgraphs", "graph_input_view"]

GRAPH_INPUTS = ("full", "no_edges", "qa_only", "none")
KNOWLEDGE_INPUTS = ("full", "none", "triples", "definitions", "examples")


def drop_edges(data):
    """A copy of a retrieved subgraph with its nodes (and node scores, if any) and no edges."""
    import torch

    from kgfuse.kg.retrieval import KGData

    out = KGData(concept_ids=data.concept_ids, node_type=data.node_type, num_nodes=int(data.num_nodes),
                 edge_index=torch.zeros(2, 0, dtype=torch.long), edge_type=torch.zeros(0, dtype=torch.long))
    if getattr(data, "node_score", None) is not None:
        out.node_score = data.node_score
    return out


def qa_nodes_only(data):
    """A copy of a retrieved subgraph with only its question and answer nodes (in their
    order, with their node scores, if any) and the edges among them."""
    import torch

    from kgfuse.kg.retrieval import NODE_ANSWER, NODE_QUESTION, KGData

    keep = (data.node_type == NODE_QUESTION) | (data.node_type == NODE_ANSWER)
    idx = keep.nonzero().view(-1)
    remap = torch.full((int(data.num_nodes),), -1, dtype=torch.long)
    remap[idx] = torch.arange(idx.numel())
    ei = data.edge_index
    emask = keep[ei[0]] & keep[ei[1]] if ei.numel() else torch.zeros(0, dtype=torch.bool)
    out = KGData(concept_ids=data.concept_ids[idx], node_type=data.node_type[idx], num_nodes=int(idx.numel()),
                 edge_index=remap[ei[:, emask]], edge_type=data.edge_type[emask])
    if getattr(data, "node_score", None) is not None:
        out.node_score = data.node_score[idx]
    return out


class _MappedRecord:
    def __init__(self, rec: Any, fn: Callable) -> None:
        self.rec, self.fn = rec, fn

    def __getitem__(self, j: int):
        g, d = self.rec[j]
        return g, self.fn(d)


class MappedSubgraphs:
    """A preprocessed dataset with every subgraph replaced by ``fn(subgraph)``; groundings
    unchanged. ``concepts()`` (the node-table restriction) sees the mapped subgraphs' nodes
    only through the wrapped dataset, so a ``qa_only`` run keeps the full training vocabulary."""

    def __init__(self, pre: Any, fn: Callable) -> None:
        self.pre, self.fn = pre, fn

    def __len__(self) -> int:
        return len(self.pre)

    def __getitem__(self, i: int) -> _MappedRecord:
        return _MappedRecord(self.pre[i], self.fn)

    def concepts(self):
        return self.pre.concepts()


#: ``mode -> fn(subgraph)`` for the modes that change a subgraph (``full`` keeps it; ``none``
#: gives the model no graph at all, handled by the caller with text-only features).
SUBGRAPH_VIEWS: dict[str, Callable] = {"no_edges": drop_edges, "qa_only": qa_nodes_only}


def graph_input_view(pre: Any, mode: str) -> Any:
    """``pre`` seen through ``mode`` (``full``, ``no_edges``, ``qa_only``)."""
    if mode == "full":
        return pre
    if mode not in SUBGRAPH_VIEWS:
        raise ValueError(f"graph_input must be one of {list(GRAPH_INPUTS)}, not {mode!r}")
    return MappedSubgraphs(pre, SUBGRAPH_VIEWS[mode])
