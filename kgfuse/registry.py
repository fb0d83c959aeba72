"""Name registries: one mechanism for every extension point (graph encoders, retrievers,
definition sources). A registry is a plain ``{name: class}`` dict; :func:`registrar` makes its
class decorator."""

from __future__ import annotations

from typing import Callable

__all__ = ["registrar"]


def registrar(table: dict[str, type], what: str, attr: str) -> Callable[[str], Callable[[type], type]]:
    """``register(name)``: a class decorator storing the class under ``name.lower()`` in
    ``table`` and as ``cls.<attr>``; another class under a taken name is a ``ValueError``."""

    def register(name: str) -> Callable[[type], type]:
        key = name.lower()

        def deco(cls: type) -> type:
            other = table.get(key)
            if other is not None and other is not cls:
                raise ValueError(f"{what} name {key!r} is already registered by {other.__qualname__}")
            table[key] = cls
            setattr(cls, attr, key)
            return cls

        return deco

    return register
