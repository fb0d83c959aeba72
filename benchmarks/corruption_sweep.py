"""Corrupt every file of every saved artefact and count what loading makes of it.

Builds, on the bundled sample data (``data/sample_kg``, ``data/sample_csqa``) and a tiny
random BERT (hidden 32, 2 layers), one of each artefact kgfuse writes:

- ``cache``: a preprocessing cache (:func:`kgfuse.kg.preprocess.preprocess_dataset`,
  :class:`~kgfuse.kg.PathRetriever`), loaded with ``PreprocessedDataset.load`` and read in
  full (every statement's grounding, nodes, paths and edges);
- ``checkpoint``: a training checkpoint (:func:`kgfuse.tasks.checkpoint.save_checkpoint`:
  model, AdamW state after one step, scheduler, RNG), loaded with ``load_checkpoint`` into
  fresh objects;
- ``model``: a saved model (``KGFusedForMultipleChoice.save_pretrained``), loaded with
  ``from_pretrained``; and ``model-no-manifest``, the same folder without its
  ``kgfuse_manifest.json`` (what the tensor-name checks alone catch: a folder saved by
  another tool).

Then, for every file of each, it applies single-bit flips at several offsets (the first
bytes, where headers live, the middle, the last byte and random ones), truncations (to 0,
half, all but one byte) and the deletion of the file, loads after each, restores the file,
and counts:

- ``caught``: loading raised (``named``: the message names the damaged file);
- ``harmless``: loaded, and everything loaded is identical to the undamaged load;
- ``silent``: loaded with different content -- the failure this sweep looks for.

It also checks ``--resume auto``: with a damaged newest checkpoint ``latest_checkpoint``
must fall back to the previous one.

Usage::

    .venv/bin/python benchmarks/corruption_sweep.py [--flips 24] [--seed 0] [--work DIR] [--json OUT]
    .venv/bin/python benchmarks/corruption_sweep.py --open-cost 54305   # time of verification on open

``--open-cost N`` instead builds two synthetic caches of ``N`` statements at the scale of
all CommonsenseQA on ConceptNet (node sets of 70 nodes; or 79 nodes and 500 3-hop paths per
statement) and times ``PreprocessedDataset.load`` with and without hash verification, and
the hash functions alone.

Target: 0 silent loads for ``cache``, ``checkpoint`` and ``model`` (whose files are
hashed); ``model-no-manifest`` shows what is left without hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TINY = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 64}


# --------------------------------------------------------------------------------------
# fingerprints of what a load hands to the user


def _digest(parts: list[Any]) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def _tensor_parts(sd: dict[str, Any]) -> list[Any]:
    import torch

    out: list[Any] = []
    for k in sorted(sd):
        v = sd[k]
        out.append(k)
        out.append(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy() if isinstance(v, torch.Tensor) else v)
        if isinstance(v, torch.Tensor):
            out.append([str(v.dtype), list(v.shape)])
    return out


def cache_fingerprint(path: Path, kg) -> str:
    from kgfuse.kg.preprocess import PreprocessedDataset

    pre = PreprocessedDataset.load(path, graph=kg)
    parts: list[Any] = [pre.ids, {k: v for k, v in pre.meta.items() if k != "stats"}, pre.meta.get("stats")]
    for i in range(len(pre)):
        for j in range(pre.num_choices(i)):
            parts.append(pre.grounding(i, j).to_dict())
            for k, v in sorted(pre.arrays(i, j).items()):
                parts += [k, np.asarray(v)]
    return _digest(parts)


def _fresh_training_objects(kg, n_concepts: list[int], seed: int):
    import torch
    from transformers import BertConfig, get_linear_schedule_with_warmup

    from kgfuse.fusion.modeling import KGFusedForMultipleChoice

    torch.manual_seed(seed)
    model = KGFusedForMultipleChoice.from_text_config(
        BertConfig(**TINY), graph_encoder="qagnn", num_concepts=kg.num_concepts, num_relations=kg.num_relations,
        num_fusion_layers=1, node_dim=16, graph_hidden_dim=16, graph_hash=kg.hash)
    model.restrict_node_table(n_concepts)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = get_linear_schedule_with_warmup(opt, 2, 10)
    return model, opt, sched


def checkpoint_fingerprint(path: Path, kg, concepts: list[int]) -> str:
    import torch

    from kgfuse.tasks.checkpoint import load_checkpoint

    model, opt, sched = _fresh_training_objects(kg, concepts, seed=12345)  # other values than saved
    state = load_checkpoint(path, model=model, optimizer=opt, scheduler=sched, restore_rng=True)
    osd = opt.state_dict()
    parts = _tensor_parts(model.state_dict())
    for idx in sorted(osd["state"]):
        parts += [idx] + _tensor_parts(osd["state"][idx])
    parts += [osd["param_groups"], sched.state_dict(), state]
    parts += [torch.get_rng_state().numpy(), list(np.random.get_state()[1][:8]), random.getstate()[1][:8]]
    return _digest(parts)


def model_fingerprint(path: Path) -> str:
    from kgfuse.fusion.modeling import KGFusedForMultipleChoice

    model = KGFusedForMultipleChoice.from_pretrained(str(path))
    cfg = {k: v for k, v in model.config.to_dict().items() if k not in ("_name_or_path", "transformers_version")}
    return _digest(_tensor_parts(model.state_dict()) + [cfg])


# --------------------------------------------------------------------------------------
# building the artefacts


def build(work: Path) -> dict[str, Any]:
    import torch

    from kgfuse.kg import EntityLinker, KnowledgeGraph, PathRetriever
    from kgfuse.kg.preprocess import preprocess_dataset
    from kgfuse.tasks.checkpoint import save_checkpoint
    from kgfuse.tasks.datasets import load_examples

    kg = KnowledgeGraph.from_conceptnet(REPO / "data" / "sample_kg" / "assertions.csv")
    exs, _ = load_examples(REPO / "data" / "sample_csqa" / "train.jsonl")
    pre = preprocess_dataset(exs, kg, EntityLinker(kg), PathRetriever(kg, max_hops=2, max_paths=10), work / "cache",
                             num_workers=1, progress=False)
    concepts = pre.concepts().tolist()
    model, opt, sched = _fresh_training_objects(kg, concepts, seed=0)
    loss = sum((p.float() ** 2).sum() for p in model.parameters()) * 1e-3
    loss.backward()
    opt.step()
    sched.step()
    opt.zero_grad()
    torch.manual_seed(7)
    save_checkpoint(work / "run" / "checkpoint-1", model=model, optimizer=opt, scheduler=sched,
                    trainer_state={"epoch": 0, "global_step": 1})
    save_checkpoint(work / "run" / "checkpoint-2", model=model, optimizer=opt, scheduler=sched,
                    trainer_state={"epoch": 0, "global_step": 2})
    model.save_pretrained(work / "model")
    shutil.copytree(work / "model", work / "model-no-manifest")
    (work / "model-no-manifest" / "kgfuse_manifest.json").unlink()
    return {"kg": kg, "cache": pre.path, "checkpoint": work / "run" / "checkpoint-2", "run": work / "run",
            "model": work / "model", "model-no-manifest": work / "model-no-manifest", "concepts": concepts}


# --------------------------------------------------------------------------------------
# corruptions


def corruptions(size: int, flips: int, rng: random.Random) -> list[tuple[str, Any]]:
    """``("flip", (offset, bit))``, ``("truncate", length)`` and ``("delete", None)`` for a file of ``size`` bytes."""
    out: list[tuple[str, Any]] = []
    if size:
        fixed = [o for o in (0, 1, 6, 8, 9, 16, 40, 64, 100, 127, size // 2, size - 1) if o < size]
        offsets = list(dict.fromkeys(fixed))[:max(flips // 2, 3)]
        pool = [o for o in range(size) if o not in set(offsets)]
        offsets += rng.sample(pool, min(len(pool), max(flips - len(offsets), 0)))
        out += [("flip", (o, rng.randrange(8))) for o in sorted(offsets)]
        out += [("truncate", n) for n in sorted({0, size // 2, size - 1})]
    out.append(("delete", None))
    return out


def apply(path: Path, kind: str, arg: Any) -> None:
    if kind == "flip":
        o, bit = arg
        with open(path, "r+b") as f:
            f.seek(o)
            b = f.read(1)[0]
            f.seek(o)
            f.write(bytes([b ^ (1 << bit)]))
    elif kind == "truncate":
        with open(path, "r+b") as f:
            f.truncate(arg)
    else:
        path.unlink()


def sweep(name: str, root: Path, load: Callable[[], str], flips: int, seed: int, log=print) -> dict[str, Any]:
    """Corrupt each file under ``root`` in turn; ``load()`` returns a fingerprint or raises."""
    ref = load()
    assert load() == ref, f"{name}: loading twice gives different content; the fingerprint is not deterministic"
    rng = random.Random(seed)
    counts: Counter = Counter()
    errors: Counter = Counter()
    silent: list[str] = []
    per_file: dict[str, Counter] = {}
    t0 = time.perf_counter()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        pristine = f.read_bytes()
        fc = per_file.setdefault(rel, Counter())
        for kind, arg in corruptions(len(pristine), flips, rng):
            apply(f, kind, arg)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    got = load()
            except Exception as e:  # noqa: BLE001 - any refusal counts; its type is reported
                outcome = "caught"
                counts["named" if (rel in str(e) or f.name in str(e)) else "unnamed"] += 1
                errors[type(e).__name__] += 1
            else:
                outcome = "harmless" if got == ref else "silent"
                if outcome == "silent":
                    silent.append(f"{rel} {kind} {arg}")
            counts[outcome] += 1
            fc[outcome] += 1
            f.write_bytes(pristine)
    assert load() == ref
    res = {"files": len(per_file), "loads": sum(counts[k] for k in ("caught", "harmless", "silent")),
           "caught": counts["caught"], "caught_naming_the_file": counts["named"], "harmless": counts["harmless"],
           "silent": counts["silent"], "errors": dict(errors), "silent_cases": silent[:20],
           "per_file": {k: dict(v) for k, v in per_file.items()}, "seconds": round(time.perf_counter() - t0, 1)}
    log(f"{name:18s} files {res['files']:3d}  loads {res['loads']:4d}  caught {res['caught']:4d} "
        f"(naming the file {res['caught_naming_the_file']:4d})  harmless {res['harmless']:3d}  "
        f"silent {res['silent']:3d}   [{res['seconds']} s; {', '.join(f'{k} {v}' for k, v in errors.most_common())}]")
    return res


def resume_check(run: Path, flips: int, seed: int, log=print) -> dict[str, Any]:
    """Damage files of the newest checkpoint: ``latest_checkpoint`` must pick the previous one
    (or the newest when the damage is harmless to what is loaded)."""
    from kgfuse.tasks.checkpoint import CheckpointError, latest_checkpoint

    newest, older = run / "checkpoint-2", run / "checkpoint-1"
    assert latest_checkpoint(run) == newest
    rng = random.Random(seed + 1)
    c: Counter = Counter()
    for f in sorted(p for p in newest.rglob("*") if p.is_file()):
        pristine = f.read_bytes()
        for kind, arg in corruptions(len(pristine), max(2, flips // 4), rng):
            apply(f, kind, arg)
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                try:
                    got = latest_checkpoint(run)
                except CheckpointError:
                    got = "error"
            if got == older and any("skipping" in str(x.message) for x in w):
                c["fell back with a warning"] += 1
            elif got == newest:
                c["took the newest"] += 1
            else:
                c[f"other: {got}"] += 1
            f.write_bytes(pristine)
    log(f"{'resume auto':18s} " + ", ".join(f"{k} {v}" for k, v in c.items()))
    return dict(c)


# --------------------------------------------------------------------------------------
# time of verification on open


def open_cost(statements: int, work: Path, log=print) -> dict[str, Any]:
    from kgfuse.integrity import file_hash
    from kgfuse.kg import KnowledgeGraph
    from kgfuse.kg.linking import Grounding, Mention
    from kgfuse.kg.preprocess import PreprocessedDataset, preprocess_dataset

    n_concepts = 100_000
    r = np.random.default_rng(0)
    m = 50_000
    kg = KnowledgeGraph([f"c{i}" for i in range(n_concepts)], [f"r{i}" for i in range(34)],
                        head=r.integers(0, n_concepts, m), relation=r.integers(0, 34, m),
                        tail=r.integers(0, n_concepts, m), weight=np.ones(m, np.float32))

    class Linker:  # six concepts and mentions per statement, like CommonsenseQA's groundings
        graph, config = kg, {"synthetic": 1}

        def ground(self, q, c):
            h = int(hashlib.md5(f"{q}|{c}".encode()).hexdigest()[:8], 16)
            qc = [(h + k * 7919) % n_concepts for k in range(5)]
            ac = [(h * 31) % n_concepts]
            ms = [Mention(6 * k, 6 * k + 5, f"word{k}", x, "question") for k, x in enumerate(qc)]
            return Grounding(qc, ac, ms + [Mention(0, len(c), c, ac[0], "choice")])

    class Retriever:
        graph = kg

        def __init__(self, paths: int, nodes: int):
            self.paths, self.nodes = paths, nodes
            self.edge_mode = "paths" if paths else "induced"
            self.config = {"synthetic": paths}

        def retrieve_nodes(self, g):
            rr = np.random.default_rng(g.question_concepts[0])
            out = {"concept_ids": rr.integers(0, n_concepts, self.nodes), "node_type": rr.integers(0, 3, self.nodes)}
            if self.paths:
                out.update(paths=rr.integers(0, self.nodes, (self.paths, 4)), path_rels=rr.integers(0, 68, (self.paths, 3)),
                           path_len=rr.integers(1, 4, self.paths))
            return out

        retrieve_arrays = retrieve_nodes

    n_q = max(1, statements // 5)
    exs = [{"id": str(i), "question": f"question number {i} about something long enough to be realistic?",
            "choices": [f"choice {i} {j}" for j in range(5)]} for i in range(n_q)]
    out: dict[str, Any] = {}
    for label, retr in (("node sets (70 nodes)", Retriever(0, 70)), ("paths (79 nodes, 500 paths)", Retriever(500, 79))):
        t = time.perf_counter()
        pre = preprocess_dataset(exs, kg, Linker(), retr, work / "open-cost", num_workers=1, progress=False)
        build_s = time.perf_counter() - t
        files = [p for p in pre.path.rglob("*") if p.is_file()]
        mb = sum(p.stat().st_size for p in files) / 2**20
        row: dict[str, Any] = {"statements": 5 * n_q, "MB": round(mb, 1), "build_s": round(build_s, 1)}
        for verify in (False, True, False, True):  # alternate; page cache warm after the build
            t = time.perf_counter()
            PreprocessedDataset.load(pre.path, graph=kg, verify=verify)
            row.setdefault(f"load_s verify={verify}", []).append(round(time.perf_counter() - t, 3))
        for alg in ("xxh3_128", "sha256"):
            t = time.perf_counter()
            for p in files:
                file_hash(p, alg)
            row[f"hash_s {alg}"] = round(time.perf_counter() - t, 3)
        algo = json.loads((pre.path / "manifest.json").read_text())["algorithm"]
        row["manifest algorithm"] = algo
        out[label] = row
        log(f"{label}: {json.dumps(row)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flips", type=int, default=24, help="bit flips per file (plus 3 truncations and a deletion)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one, removed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--open-cost", type=int, default=None, metavar="STATEMENTS",
                    help="time verification on open of synthetic caches of this many statements instead")
    args = ap.parse_args(argv)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("kgfuse").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the load reports of damaged files
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - only cosmetic
        pass
    work = args.work or Path(tempfile.mkdtemp(prefix="kgfuse-corruption-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        if args.open_cost:
            res: dict[str, Any] = {"open_cost": open_cost(args.open_cost, work)}
        else:
            a = build(work)
            kg, concepts = a["kg"], a["concepts"]
            res = {
                "cache": sweep("cache", a["cache"], lambda: cache_fingerprint(a["cache"], kg), args.flips, args.seed),
                "checkpoint": sweep("checkpoint", a["checkpoint"],
                                    lambda: checkpoint_fingerprint(a["checkpoint"], kg, concepts), args.flips, args.seed),
                "model": sweep("model", a["model"], lambda: model_fingerprint(a["model"]), args.flips, args.seed),
                "model-no-manifest": sweep("model-no-manifest", a["model-no-manifest"],
                                           lambda: model_fingerprint(a["model-no-manifest"]), args.flips, args.seed),
                "resume": resume_check(a["run"], args.flips, args.seed),
            }
        res["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"total {res['seconds']} s")
        if args.json:
            args.json.write_text(json.dumps(res, indent=1, default=str))
        bad = [k for k in ("cache", "checkpoint", "model") if isinstance(res.get(k), dict) and res[k]["silent"]]
        if bad:
            print(f"SILENT WRONG LOADS in {', '.join(bad)}:", file=sys.stderr)
            for k in bad:
                for s in res[k]["silent_cases"]:
                    print(f"  {k}: {s}", file=sys.stderr)
            return 1
        return 0
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
