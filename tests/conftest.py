"""Shared fixtures for the graph: paths of the bundled and shared data, small graphs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_KG = REPO / "data" / "sample_kg" / "assertions.csv"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def sample_kg_path() -> Path:
    """The bundled sample ConceptNet-format assertions file."""
    return SAMPLE_KG


@pytest.fixture(scope="session")
def sample_kg(sample_kg_path):
    """The sample graph loaded with the defaults (merged17 relations + inverses)."""
    from kgfuse.kg import KnowledgeGraph

    return KnowledgeGraph.from_conceptnet(sample_kg_path)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture()
def tiny_kg():
    """A hand-made 4-node graph with known answers::

        a --r0--> b      a --r1--> c      b --r0--> c      c --r1--> d      d --r0--> a
    """
    from kgfuse.kg import KnowledgeGraph

    # ids: a=0, b=1, c=2, d=3; relations r0=0, r1=1; edges given out of order on purpose
    return KnowledgeGraph(
        ["a", "b", "c", "d"], ["r0", "r1"],
        head=[2, 0, 3, 0, 1], relation=[1, 1, 0, 0, 0], tail=[3, 2, 0, 1, 2],
        weight=[0.5, 2.0, 1.0, 1.0, 3.0],
    )
