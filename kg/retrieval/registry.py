"""The retriever registry: ``retriever: {type: name}`` of a config names a class registered
here with :func:`register_retriever` (through :func:`kgfuse.registry.registrar`, the
mechanism of every extension point)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from kgfuse.registry import registrar

if TYPE_CHECKING:  # pragma: no cover
    from ..graph import KnowledgeGraph

#: name -> retriever class (``retriever.type`` of a config). A new retriever is one class with
#: ``retrieve_nodes`` / ``add_edges`` (or ``retrieve_arrays``), ``config`` and ``explain``, and
#: one :func:`register_retriever` decorator.
RETRIEVERS: dict[str, type] = {}
_register_retriever = registrar(RETRIEVERS, "retriever", "retriever_name")


def register_retriever(name: str) -> Callable[[type], type]:
    """Class decorator registering a retriever under ``name`` (``retriever: {type: name}``);
    its constructor takes the graph first, then keyword options."""
    return _register_retriever(name)


def build_retriever(graph: "KnowledgeGraph", kind: str = "path", **options: Any):
    """The registered retriever ``kind`` over ``graph`` with keyword ``options``.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    cls = RETRIEVERS.get(str(kind).lower())
    if cls is None:
        raise ValueError(f"unknown retriever type {kind!r}; valid: {sorted(RETRIEVERS)}")
    return cls(graph, **options)
