"""Registry of graph encoders: names -> classes, resolved in one place.

Third parties add encoders with :func:`register_graph_encoder`; :func:`build_graph_encoder`
accepts a registered name, a class, or an already built instance.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from kgfuse.registry import registrar

__all__ = ["GRAPH_ENCODERS", "register_graph_encoder", "build_graph_encoder", "graph_encoder_names"]

#: name -> encoder class. Built-ins are registered when their module is imported.
GRAPH_ENCODERS: dict[str, type] = {}
_register = registrar(GRAPH_ENCODERS, "graph encoder", "encoder_name")

_BUILTIN_MODULES = {"rgcn": "rgcn", "qagnn": "qagnn", "kagnet": "kagnet"}


def register_graph_encoder(name: str) -> Callable[[type], type]:
    """Class decorator registering a graph encoder under ``name`` (lower-case)."""
    return _register(name)


def _load_builtins() -> None:
    for mod in _BUILTIN_MODULES.values():
        importlib.import_module(f"kgfuse.encoders.{mod}")


def graph_encoder_names() -> list[str]:
    """Registered names (built-ins included), sorted."""
    _load_builtins()
    return sorted(GRAPH_ENCODERS)


def build_graph_encoder(encoder: Any, **kwargs: Any):
    """Resolve ``encoder`` (a registered name, a ``GraphEncoder`` subclass or an instance).

    Args:
        encoder: ``"rgcn"``, ``"qagnn"``, ``"kagnet"`` or a third-party name; a class (called
            with ``**kwargs``); or a module instance (returned as is; ``kwargs`` must be empty).
        **kwargs: constructor arguments (``in_dim``, ``hidden_dim``, ``num_relations``, ...).

    Raises:
        ValueError: unknown name (the message lists the valid names).
    """
    import torch.nn as nn

    if isinstance(encoder, nn.Module):
        if kwargs:
            raise ValueError(f"build_graph_encoder got an instance and constructor arguments {sorted(kwargs)}")
        return encoder
    if isinstance(encoder, type):
        return encoder(**kwargs)
    if isinstance(encoder, str):
        _load_builtins()
        cls = GRAPH_ENCODERS.get(encoder.lower())
        if cls is None:
            raise ValueError(f"unknown graph encoder {encoder!r}; valid names: {', '.join(sorted(GRAPH_ENCODERS))}")
        return cls(**kwargs)
    raise TypeError(f"graph encoder must be a name, a class or a module instance, not {type(encoder).__name__}")
