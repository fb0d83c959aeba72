"""Source fingerprints: a hash of the code that writes a cache, part of that cache's key.

A cache whose content follows from kgfuse's own code is keyed by its inputs (graph hash,
settings, data hash, encoder weights), by a format version and also by
:func:`source_fingerprint` of the code that computes it:

- the preprocessing cache of groundings and subgraphs (:mod:`kgfuse.kg.preprocess`) and the
  linker's pattern index (:class:`~kgfuse.kg.EntityLinker`): all of :mod:`kgfuse.kg`, and,
  through the retriever's config, :mod:`kgfuse.encoders.relevance` when subgraphs are ranked
  by relevance;
- KG embeddings such as TransE node tables: :mod:`kgfuse.kg.embeddings` alone, and the
  concept-name table: :mod:`kgfuse.encoders.names` alone (neither is computed again for an
  edit elsewhere).

Format versions say when a layout changed on purpose; the fingerprint makes sure that code
which links, retrieves or embeds differently under the same settings never reads what other
code wrote, whether or not anybody remembered to bump a version. Any edit to a ``.py`` file
of that code (a comment included) therefore rebuilds such a cache once: about two
minutes of preprocessing for all of CommonsenseQA on ConceptNet 4.

This module imports nothing heavy.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import os
from pathlib import Path, PurePosixPath
from typing import Iterable

from .integrity import file_hash, list_files

__all__ = ["SOURCE_SUFFIXES", "source_fingerprint", "tree_fingerprint"]

#: The files that count as a package's source. The C path search of
#: :class:`~kgfuse.kg.PathRetriever` does not: it must return exactly the paths of its numpy
#: reference (tested), and a wheel ships it compiled only, so an installed kgfuse and a
#: checkout of the same commit share their caches.
SOURCE_SUFFIXES = (".py",)


def tree_fingerprint(roots: Iterable[str | os.PathLike]) -> str:
    """SHA-256 (32 hex digits) over the source files (:data:`SOURCE_SUFFIXES`) at or below
    ``roots`` (folders or single files): each file's path relative to its root (a single
    file: its name) and the SHA-256 of its bytes, in sorted order (the listing and hashing of
    :mod:`kgfuse.integrity`). ``__pycache__`` folders, compiled extensions and data files do
    not count."""
    h = hashlib.sha256()
    for i, root in enumerate(roots):
        root = Path(root)
        if root.is_file():
            base, rels = root.parent, [root.name]
        else:
            base = root
            rels = [r for r in list_files(root)
                    if PurePosixPath(r).suffix in SOURCE_SUFFIXES and "__pycache__" not in r.split("/")]
        h.update(f"root {i}\n".encode())
        for rel in rels:
            h.update(f"{rel}\0{file_hash(base / rel, 'sha256')}\n".encode())
    return h.hexdigest()[:32]


@functools.lru_cache(maxsize=None)
def source_fingerprint(*names: str) -> str:
    """:func:`tree_fingerprint` of the installed source of ``names``: a package (e.g.
    ``"kgfuse.kg"``) counts with every source file below it, a module (e.g.
    ``"kgfuse.kg.embeddings"``) with its own file. Computed once per process.

    Raises:
        ValueError: a module without a source file.
    """
    roots: list[str] = []
    for name in names:
        mod = importlib.import_module(name)
        paths = list(getattr(mod, "__path__", []))
        if not paths:
            origin = getattr(mod, "__file__", None)
            if not origin or Path(origin).suffix not in SOURCE_SUFFIXES:
                raise ValueError(f"{name!r} has no source file to fingerprint")
            paths = [origin]
        roots.extend(paths)
    return tree_fingerprint(roots)
