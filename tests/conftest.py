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


# ------------------------------------------------------------------ one tiny trained model

# a tiny BERT built from a config in code (random weights, no download)
TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 64}


def _tiny_train_config(out, cache, **train_kw):
    """The bundled sample (CSQA-style questions + sample graph), the real spaCy linker and path
    retriever, a fused model on the tiny BERT (RGCN, one ERNIE fusion layer)."""
    from kgfuse.tasks.cli import data_dir
    from kgfuse.tasks.config import TrainConfig

    d = data_dir()
    return TrainConfig.from_dict({
        "data": {"format": "csqa", "train": str(d / "sample_csqa/train.jsonl"), "dev": str(d / "sample_csqa/dev.jsonl")},
        "graph": {"path": str(d / "sample_kg/assertions.csv")},
        "retriever": {"type": "path", "max_hops": 2, "max_paths": 10},
        "model": {"options": {"text_config": dict(TINY_BERT), "num_fusion_layers": 1, "node_dim": 16,
                              "graph_hidden_dim": 16}},
        "train": {"epochs": 2, "batch_size": 8, "max_length": 40, "lr_lm": 1e-3, "mixed_precision": "no", **train_kw},
        "output_dir": str(out),
        "cache_dir": str(cache),
    })


@pytest.fixture(scope="session")
def tiny_bert() -> dict:
    """Keyword arguments of the tiny ``BertConfig`` every trained test model uses."""
    return dict(TINY_BERT)


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(output_dir, cache_dir, **train_settings) -> TrainConfig`` for a run of its own."""
    return _tiny_train_config


def _folder_state(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """``(config, TrainResult)`` of the tiny run (2 epochs on the bundled sample), trained once
    per test session and shared by the pipeline, inference, outputs and CLI tests.

    The run folder is read-only for the tests: a test that changes files in it must work on a
    copy (``shutil.copytree(res.output_dir, tmp_path / "run")``). The folder is compared with
    its state after training when the session ends."""
    from kgfuse.tasks.train import train

    root = tmp_path_factory.mktemp("trained_run")
    cfg = _tiny_train_config(root / "run", root / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KGFUSE_HOME", str(root / "home"))  # nothing of the run lands in the user's cache
        res = train(cfg, progress=False)
    state = _folder_state(res.output_dir)
    yield cfg, res
    assert _folder_state(res.output_dir) == state, f"a test changed the shared run folder {res.output_dir}"
