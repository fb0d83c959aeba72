"""A synthetic KG-reasoning probe: questions that only the graph can answer.

The generator invents entities with random pronounceable names (``tobek``, ``mirun``...),
writes facts about them into a :class:`~kgfuse.kg.KnowledgeGraph`, and asks multiple-choice
questions whose answers follow from one- or two-hop facts:

- one hop: ``What does a tobek live near?`` — the answer ``y`` with ``tobek --livesnear--> y``;
- two hops: ``What does the friend of a tobek eat?`` — ``tobek --friendof--> z --eats--> y``.

Distractors are other invented entities that do not satisfy the asked chain; with
``hard_distractors`` one of them is linked to the subject by a *different* relation (so
connectivity alone is not enough). Training and dev questions are about disjoint entity sets
(subjects and answers), so nothing can be memorised from the training text: a text-only
model stays at chance (``1 / num_choices``), while a model that grounds the names in the
graph, retrieves the paths and reads them can answer. This makes the probe an end-to-end
test that linking, retrieval, the GNN and the fusion all carry information.

:func:`run_probe` trains the fused model or the LM-only ablation on it (a tiny random BERT,
CPU, a minute) through the real :class:`~kgfuse.kg.linking.EntityLinker`,
:class:`~kgfuse.kg.retrieval.PathRetriever`, preprocessing cache, collator and model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .datasets import MCExample

__all__ = ["ProbeData", "make_probe", "invent_names", "run_probe", "PROBE_RELATIONS"]

# relation -> question template for a one-hop question ("{x}" = subject name)
PROBE_RELATIONS: dict[str, str] = {
    "livesnear": "What does a {x} live near?",
    "eats": "What does a {x} eat?",
    "fears": "What is a {x} afraid of?",
}
# two-hop: subject --friendof--> z --rel--> answer
TWO_HOP_TEMPLATES: dict[str, str] = {
    "livesnear": "What does the friend of a {x} live near?",
    "eats": "What does the friend of a {x} eat?",
    "fears": "What is the friend of a {x} afraid of?",
}
FRIEND = "friendof"

_ONSETS = list("bdfgklmnprtvz") + ["bl", "dr", "gr", "pl", "tr", "sk", "st", "kr", "fl", "sn"]
_VOWELS = list("aeiou") + ["oo", "ai", "ei"]
_CODAS = list("bdgklmnprtxz")


def invent_names(n: int, rng: random.Random, *, avoid: set[str] | None = None) -> list[str]:
    """``n`` distinct pronounceable nonsense words (CV-CV-C, 5-8 letters, never ending in s)."""
    try:
        from spacy.lang.en.stop_words import STOP_WORDS
    except Exception:  # pragma: no cover - spaCy is a dependency
        STOP_WORDS = set()
    avoid = set(avoid or ()) | set(STOP_WORDS)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.choice((1, 2)))) + rng.choice(_CODAS)
        if not 5 <= len(w) <= 8 or w in seen or w in avoid:
            continue
        seen.add(w)
        names.append(w)
    return names


@dataclass
class ProbeData:
    """The probe: its graph and its questions."""

    graph: Any
    train: list[MCExample]
    dev: list[MCExample]
    facts: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def chance(self) -> float:
        return 1.0 / len(self.train[0].choices)


def make_probe(num_train: int = 300, num_dev: int = 100, *, num_choices: int = 4, two_hop_fraction: float = 0.4,
               hard_distractors: bool = False, seed: int = 0) -> ProbeData:
    """Generate the probe graph and questions.

    Each subject entity ``x`` gets, for every relation of :data:`PROBE_RELATIONS`, one object
    (``x --rel--> y``) and one friend (``x --friendof--> z``). The entities are split into two
    disjoint pools (train / dev); a question about ``x`` has its answer and its distractors
    in ``x``'s pool. Distractors never satisfy the asked one- or two-hop chain.

    Args:
        num_train, num_dev: numbers of questions.
        num_choices: choices per question.
        two_hop_fraction: share of two-hop questions.
        hard_distractors: make one distractor a neighbour of the subject through another
            relation (connectivity alone then does not identify the answer).
        seed: everything is a function of it.
    """
    from kgfuse.kg import KnowledgeGraph

    rng = random.Random(seed)
    rels = list(PROBE_RELATIONS)
    # one question per subject; a subject's objects/friends come from the same pool
    per_pool = {"train": num_train, "dev": num_dev}
    names = invent_names(sum(2 * n + 40 for n in per_pool.values()), rng)
    pools: dict[str, list[str]] = {}
    k = 0
    for split, n in per_pool.items():
        pools[split] = names[k: k + 2 * n + 40]
        k += 2 * n + 40
    facts: set[tuple[str, str, str]] = set()
    subjects: dict[str, list[str]] = {}
    for split, pool in pools.items():
        n = per_pool[split]
        subj = pool[:n]
        subjects[split] = subj
        for x in subj:
            for r in rels:
                facts.add((x, r, rng.choice([e for e in pool if e != x])))
            facts.add((x, FRIEND, rng.choice([e for e in subj if e != x])))
    out_edges: dict[tuple[str, str], set[str]] = {}
    for h, r, t in facts:
        out_edges.setdefault((h, r), set()).add(t)

    def answers(x: str, r: str, two_hop: bool) -> set[str]:
        if not two_hop:
            return set(out_edges.get((x, r), ()))
        return {y for z in out_edges.get((x, FRIEND), ()) for y in out_edges.get((z, r), ())}

    def neighbours(x: str) -> set[str]:
        return {t for (h, _), ts in out_edges.items() if h == x for t in ts}

    examples: dict[str, list[MCExample]] = {}
    for split, subj in subjects.items():
        exs: list[MCExample] = []
        pool = pools[split]
        for i, x in enumerate(subj):
            two = rng.random() < two_hop_fraction
            r = rng.choice(rels)
            good = sorted(answers(x, r, two))
            ans = rng.choice(good)
            bad_all = set(good) | {x}
            # a distractor must not be a correct answer of either reading of the question
            bad_all |= answers(x, r, not two)
            hard = sorted(neighbours(x) - bad_all) if hard_distractors else []
            distractors: list[str] = []
            if hard:
                distractors.append(rng.choice(hard))
            while len(distractors) < num_choices - 1:
                d = rng.choice(pool)
                if d not in bad_all and d not in distractors:
                    distractors.append(d)
            choices = distractors + [ans]
            rng.shuffle(choices)
            q = (TWO_HOP_TEMPLATES if two else PROBE_RELATIONS)[r].format(x=x)
            exs.append(MCExample(id=f"probe-{split}-{i:04d}", question=q, choices=choices, label=choices.index(ans),
                                 meta={"hops": 2 if two else 1, "relation": r, "subject": x}))
        examples[split] = exs
    concepts = sorted({h for h, _, _ in facts} | {t for _, _, t in facts} | set(names))
    cid = {c: i for i, c in enumerate(concepts)}
    rel_names = rels + [FRIEND]
    rid = {r: i for i, r in enumerate(rel_names)}
    fl = sorted(facts)
    graph = KnowledgeGraph(concepts, rel_names, [cid[h] for h, _, _ in fl], [rid[r] for _, r, _ in fl], [cid[t] for _, _, t in fl],
                           meta={"source": "kgfuse.tasks.probe", "seed": seed})
    return ProbeData(graph=graph, train=examples["train"], dev=examples["dev"], facts=fl)


def tiny_text_config(vocab_size: int, hidden: int = 32, layers: int = 2) -> dict[str, Any]:
    """A tiny random BERT config (for probes and tests)."""
    return {"vocab_size": vocab_size, "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 2,
            "intermediate_size": 2 * hidden, "max_position_embeddings": 64, "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1}


def run_probe(probe: ProbeData, *, lm_only: bool, cache_dir: str | Path, output_dir: str | Path | None = None,
              epochs: int = 12, seed: int = 0, model_options: dict[str, Any] | None = None,
              retriever_options: dict[str, Any] | None = None, progress: bool = False) -> dict[str, Any]:
    """Train the fused model (or the LM-only ablation) on the probe; return accuracies.

    Goes through the real pipeline: :class:`~kgfuse.kg.linking.EntityLinker` →
    :class:`~kgfuse.kg.retrieval.PathRetriever` → :func:`~kgfuse.tasks.pipeline.preprocess`
    (cache) → :class:`~kgfuse.tasks.features.MultipleChoiceCollator` →
    :class:`~kgfuse.fusion.KGFusedForMultipleChoice` (tiny random BERT text encoder, the
    shipped MiniLM's tokenizer) → :func:`~kgfuse.tasks.train.fit`.

    Returns:
        ``{"dev_accuracy", "train_accuracy", "best_epoch", "history", "chance", "linked_fraction"}``.
    """
    import torch
    from transformers import BertConfig

    from kgfuse.encoders.text import load_tokenizer
    from kgfuse.fusion import KGFusedForMultipleChoice

    from .config import OptimConfig
    from .features import MultipleChoiceCollator
    from .pipeline import MCFeatureDataset, TextOnlyDataset, build_linker, build_retriever, preprocess
    from .train import fit

    g = probe.graph
    tok = load_tokenizer(None)
    max_length = 32
    if lm_only:
        train_ds: Any = TextOnlyDataset(probe.train, tok, max_length=max_length)
        dev_ds: Any = TextOnlyDataset(probe.dev, tok, max_length=max_length)
        linked = 0.0
    else:
        linker = build_linker(g, {})
        retriever = build_retriever(g, dict(retriever_options or {"type": "path", "max_hops": 2, "max_paths": 8}))
        pre_tr = preprocess(probe.train, g, linker, retriever, cache_dir)
        pre_dev = preprocess(probe.dev, g, linker, retriever, cache_dir)
        train_ds = MCFeatureDataset(probe.train, pre_tr, tok, max_length=max_length)
        dev_ds = MCFeatureDataset(probe.dev, pre_dev, tok, max_length=max_length)
        n_stmt = sum(len(e.choices) for e in probe.dev)
        linked = sum(1 for i in range(len(pre_dev)) for gr, _ in pre_dev[i] if gr.question_concepts and gr.answer_concepts) / n_stmt
    torch.manual_seed(seed)
    opts = {"graph_encoder": "rgcn", "num_fusion_layers": 1, "node_dim": 32, "graph_hidden_dim": 32,
            "freeze_node_embeddings": True, "classifier_dropout": 0.0}
    opts.update(model_options or {})
    if lm_only:
        opts["use_graph"] = False
    model = KGFusedForMultipleChoice.from_text_config(
        BertConfig(**tiny_text_config(tok.vocab_size)), num_concepts=g.num_concepts, num_relations=g.num_relations,
        graph_hash=g.hash, **opts,
    )
    opt = OptimConfig(epochs=epochs, batch_size=16, eval_batch_size=64, lr_lm=1e-3, lr_gnn=3e-3, lr_fusion=3e-3,
                      warmup_ratio=0.1, seed=seed, mixed_precision="no", save_best=False, save_last=False, log_every=0)
    res = fit(model, train_ds, {"dev": dev_ds}, MultipleChoiceCollator(tok, max_length=max_length), opt, output_dir,
              progress=progress)
    accs = [h["dev_accuracy"] for h in res.history]
    return {
        "dev_accuracy": max(accs),
        "final_dev_accuracy": accs[-1],
        "best_epoch": res.best_epoch,
        "history": res.history,
        "chance": probe.chance,
        "linked_fraction": linked,
        "seconds": res.wall_time,
    }
