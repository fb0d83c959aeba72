"""Everyday commands do only the work they need: `kgfuse prepare` on a complete cache builds
no linker or retriever index, and `kgfuse link` imports spaCy without torch."""

from __future__ import annotations

import subprocess
import sys

import yaml

from kgfuse.tasks import pipeline
from kgfuse.tasks.cli import main


def _config(tmp_path, retriever: dict) -> str:
    cfg = {
        "data": {"format": "csqa", "train": "bundled:sample_csqa/train.jsonl", "dev": "bundled:sample_csqa/dev.jsonl"},
        "graph": {"path": "bundled:sample_kg/assertions.csv"},
        "retriever": retriever,
        "cache_dir": "cache",
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _summary(out: str) -> list[str]:
    """Summary lines without the cache status."""
    return [line.split(", cache ")[0] for line in out.splitlines() if "statements with linked concepts" in line]


def test_second_prepare_builds_nothing_and_prints_the_same_summary(tmp_path, capsys, monkeypatch):
    made = []

    def spy(build):
        def wrapped(*args, **kwargs):
            made.append(build(*args, **kwargs))
            return made[-1]
        return wrapped

    monkeypatch.setattr(pipeline, "build_linker", spy(pipeline.build_linker))
    monkeypatch.setattr(pipeline, "build_retriever", spy(pipeline.build_retriever))
    for retriever in ({"type": "path", "max_hops": 2}, {"type": "subgraph", "max_nodes": 32}):
        (tmp_path / retriever["type"]).mkdir()
        cfg = _config(tmp_path / retriever["type"], retriever)
        assert main(["prepare", "--config", cfg, "--quiet"]) == 0
        first = capsys.readouterr().out
        linker, retr = made[-2:]
        assert linker.is_built  # a cache miss builds them
        assert "cache written" in first
        made.clear()
        assert main(["prepare", "--config", cfg, "--quiet"]) == 0
        second = capsys.readouterr().out
        linker, retr = made
        assert "cache hit" in second and "cache written" not in second
        assert _summary(second) == _summary(first) and len(_summary(first)) == 2
        assert not linker.is_built and linker._nlp is None
        lazy = retr._adj_obj if retriever["type"] == "path" else retr._parts
        assert lazy is None
        made.clear()


def test_link_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from kgfuse.tasks.cli import main, data_dir\n"
        "rc = main(['link', '--graph', str(data_dir() / 'sample_kg' / 'assertions.csv'), 'Where would you put a plate?'])\n"
        "assert rc == 0\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
        "import torch, thinc.compat\n"  # torch itself still imports afterwards
        "print('torch ok:', torch.tensor([1]).item() == 1)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"KGFUSE_HOME": str(tmp_path), "PATH": ""}).stdout
    assert "-> plate" in out
    assert "torch imported: False" in out and "torch ok: True" in out
