"""Check that a bundle's knowledge-text inputs equal the library pipeline's, on real data.

The GPU runner's ``*-text-*`` models build their inputs from the bundle alone: stored
groundings and node sets, and the carried definitions file (``make_bundle.py --definitions
wordnet``). This rebuilds the same split here the way a CPU row does (the graph file, spaCy
linking, the retriever, the ``wordnet`` definition source reading the WordNet files) and
compares every question's features key by key::

    .venv/bin/python benchmarks/gpu/check_knowledge_text.py --bundle benchmarks/gpu/bundle-cn4 \\
        --graph ../shared/data/conceptnet4/conceptnet4_en.tsv.gz --dataset csqa --split dev

Prints, per text preset, how many questions differ (0 expected) and how many inputs the
knowledge text changed; exits 1 when any question differs. Needs spaCy and the WordNet files.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle import Bundle, ensure_kgfuse_importable  # noqa: E402


def _canon(x) -> str:
    return json.dumps(x, default=lambda y: y.tolist() if hasattr(y, "tolist") else repr(y))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True, help="a bundle made with --graph FILE --definitions wordnet")
    ap.add_argument("--graph", required=True, help="the graph file the bundle was made from")
    ap.add_argument("--linker", default='{"max_words": 4, "normalize": "lemma"}',
                    help="the linker options the bundle was made with (JSON; checked against its manifest)")
    ap.add_argument("--dataset", default="csqa")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--presets", default="definitions,both", help="comma-separated, of triples, definitions, both")
    ap.add_argument("--max-questions", type=int, default=None)
    ap.add_argument("--work", default=None, help="unpack folder (default: a temporary one)")
    args = ap.parse_args(argv)
    ensure_kgfuse_importable()
    import run_gpu as rg

    from kgfuse.encoders.text import load_tokenizer
    from kgfuse.kg.formats import open_graph
    from kgfuse.tasks.pipeline import MCFeatureDataset, build_linker, build_retriever, build_verbalizer, preprocess

    t0 = time.time()
    b = Bundle.open(args.bundle).verify()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kgfuse-check-"))
    b.unpack(work)
    g = b.manifest["graph"]
    if g["loader"] != "file":
        raise SystemExit(f"{args.bundle}: a WordNet bundle; this check is for a bundle made with --graph")
    graph = b.graph()
    tok = load_tokenizer(str(b.model_dir))
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    opts = rg.parse_args(["--bundle", args.bundle, "--out", str(work / "unused")])
    split = b.examples(args.dataset, args.split)
    exs = split[: args.max_questions]
    ours = rg.model_datasets(exs, b.preprocessed(args.dataset, args.split, graph, split),
                             tok, opts.max_length,
                             {p: build_verbalizer(graph, rg.verbalizer_options(opts, p, b.definitions_file), tok) for p in presets},
                             opts.text_max_length)
    # the library's own way, as a CPU row runs it
    lib_graph = open_graph(args.graph, g.get("format", "auto"), **g.get("options", {}))
    if lib_graph.hash != graph.hash:
        raise SystemExit(f"{args.graph}: hash {lib_graph.hash[:12]} differs from the bundle's graph {graph.hash[:12]}")
    linker = build_linker(lib_graph, json.loads(args.linker))
    if linker.config != b.manifest["linker"]:
        raise SystemExit("the linker built here differs from the bundle's (other --linker options, or another spaCy "
                         f"or lookups version): {linker.config} != {b.manifest['linker']}")
    pre = preprocess(exs, lib_graph, linker, build_retriever(lib_graph, b.manifest["retriever"]), work / "lib-cache")
    bad = 0
    for p in presets:
        kt = {"enabled": True, "triples": opts.text_triples, "max_tokens": opts.text_max_tokens, **rg.TEXT_PRESETS[p]}
        v = build_verbalizer(lib_graph, kt, tok)
        lib = MCFeatureDataset(exs, pre, tok, max_length=opts.text_max_length, verbalizer=v, graph_inputs=True)
        theirs = ours[f"fused-text-{p}"]
        differ = sum(_canon(lib[i]) != _canon(theirs[i]) for i in range(len(exs)))
        changed = sum(_canon(lib[i]["input_ids"]) != _canon(ours["fused"][i]["input_ids"]) for i in range(len(exs)))
        print(f"{args.dataset}/{args.split} {p}: {len(exs)} questions, {differ} differ from the library pipeline's "
              f"features; the knowledge text changed the input of {changed}", flush=True)
        bad += differ
    print(f"{time.time() - t0:.0f}s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
