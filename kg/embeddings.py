"""Node features for graph encoders: KG embeddings.

- :func:`train_kg_embeddings`: TransE (Bordes et al., 2013), DistMult (Yang et al., 2015) or
  RotatE (Sun et al., 2019) from :mod:`torch_geometric.nn.kge`, trained on a random
  split of the graph's edges, evaluated by link prediction on the held-out edges
  (filtered MRR and Hits@10 over head and tail prediction, plus the raw figures), saved
  with safetensors and keyed by graph hash + configuration. The trained model also scores
  KagNet paths (:class:`KGEPathScorer`, usable as ``PathRetriever(scorer=...)``).
- Concept-name embeddings from the text encoder are in the encoders layer:
  :func:`kgfuse.encoders.names.concept_name_embeddings`.
- Plain learned embeddings need nothing here: they are the model's randomly initialised
  node-embedding table (``node_feature_kind="learned"``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .graph import KnowledgeGraph

__all__ = [
    "KGEConfig",
    "KGEmbeddingResult",
    "KGEPathScorer",
    "train_kg_embeddings",
    "evaluate_link_prediction",
    "candidate_scores",
    "KGE_MODELS",
]

logger = logging.getLogger(__name__)

KGE_MODELS = ("transe", "distmult", "rotate")
# v2: TransE entity rows start on the unit L_p sphere and TransE's default learning rate
# depends on (dim, p_norm); v1 files (same tensors) still load, but v1 cache keys are not reused.
_FORMAT = "kgfuse-kge-v2"
_READABLE_FORMATS = ("kgfuse-kge-v1", _FORMAT)
# Per-model learning rates (DistMult / RotatE: those of PyG's examples/kge_fb15k_237.py;
# TransE: see ``KGEConfig.resolved_lr``).
_DEFAULT_LR = {"distmult": 0.0001, "rotate": 0.001}


@dataclass(frozen=True)
class KGEConfig:
    """Everything that determines a trained KG embedding (part of the cache key).

    Args:
        model: ``"transe"``, ``"distmult"`` or ``"rotate"``.
        dim: embedding width (RotatE: per real/imaginary part).
        epochs: passes over the training edges.
        batch_size: positive edges per step (as many negatives, head or tail corrupted).
        lr: Adam learning rate. Default: DistMult 1e-4, RotatE 1e-3 (PyG's FB15k-237
            example); TransE ``0.1 * dim ** (-1 / p_norm)`` (1e-3 for the default L1 norm
            and dim 100; 0.01 for L2), i.e. a tenth of the size of one coordinate of a
            unit-norm entity vector. Adam moves every coordinate by about ``lr`` per step whatever the
            gradient's scale, so a learning rate fixed without regard to that size lets the
            relation vectors outgrow the normalised entity vectors, and TransE collapses
            (see :func:`_build_model`).
        weight_decay: Adam weight decay (default 0; a positive value needs ``sparse=False``).
        margin: TransE / RotatE margin.
        p_norm: TransE norm, used both to normalise the entity vectors and for the distance
            (as in PyG's ``TransE``). ``2`` also works with the default learning rate, which
            then grows to ``0.1 / sqrt(dim)``; on WordNet it gave a better mean rank but a
            lower MRR than L1 (``docs/benchmarks.md``).
        val_fraction: share of edges held out for link prediction.
        max_eval_edges: at most this many held-out edges are ranked (a seeded sample).
        seed: split, initialisation, negative sampling and evaluation sample.
        sparse: sparse embedding gradients with ``torch.optim.SparseAdam`` (only the rows of
            the batch are updated: much faster on large graphs). ``None``: on when the weight
            decay is 0 (SparseAdam has none).
    """

    model: str = "transe"
    dim: int = 100
    epochs: int = 50
    batch_size: int = 1024
    lr: float | None = None
    weight_decay: float | None = None
    margin: float = 1.0
    p_norm: float = 1.0
    val_fraction: float = 0.05
    max_eval_edges: int = 2000
    seed: int = 0
    sparse: bool | None = None

    def __post_init__(self) -> None:
        if self.model not in KGE_MODELS:
            raise ValueError(f"unknown KG embedding model {self.model!r}; valid: {', '.join(KGE_MODELS)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.dim < 1 or self.epochs < 0 or self.batch_size < 1:
            raise ValueError(f"invalid KGEConfig {self}")
        if not self.p_norm > 0:
            raise ValueError(f"p_norm must be positive, got {self.p_norm}")

    @property
    def resolved_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.model == "transe":
            return 0.1 * self.dim ** (-1.0 / self.p_norm)
        return _DEFAULT_LR[self.model]

    @property
    def resolved_weight_decay(self) -> float:
        return self.weight_decay if self.weight_decay is not None else 0.0

    @property
    def resolved_sparse(self) -> bool:
        if self.sparse is not None:
            if self.sparse and self.resolved_weight_decay:
                raise ValueError("sparse=True cannot be combined with weight decay (SparseAdam has none)")
            return self.sparse
        return self.resolved_weight_decay == 0.0

    def key(self, graph_hash: str) -> str:
        """Cache key: SHA-256 of the graph hash, this configuration and the source of
        this module (:func:`~kgfuse.fingerprint.source_fingerprint`)."""
        from ..fingerprint import source_fingerprint

        payload = json.dumps({"format": _FORMAT, "code": source_fingerprint(__name__), "graph": graph_hash,
                              "config": asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def _build_model(cfg: KGEConfig, num_nodes: int, num_relations: int, sparse: bool = False):
    r"""A fresh ``torch_geometric.nn.kge`` model for ``cfg``.

    TransE: PyG scores :math:`-\|h/\|h\|_p + r - t/\|t\|_p\|_p` but initialises the entity
    table uniformly in :math:`\pm 6/\sqrt{d}`, i.e. with norms of about 3.5 (L2) or 30 (L1)
    for :math:`d = 100`, while the relation rows start at norm 1. Under Adam each step moves
    a coordinate by about ``lr`` whatever its scale, so the normalised entities moved 3.5-30
    times slower than the relations; on WordNet the relations grew to ~8x the entities' L1
    norm within a few epochs. Once :math:`|r_i| > |h_i - t_i|` on almost every coordinate,
    :math:`\|h + r - t\|_1 = \sum_i \mathrm{sign}(r_i)(r_i + h_i - t_i)` is linear, so every
    head ranks the tails in the same order (a per-relation popularity list) and held-out
    links ranked worse than random. Here the entity rows start on the unit L_p sphere and
    are put back on it after every step (:func:`_project_entities`, as in Bordes et al.,
    2013, Algorithm 1), so the parameters live at the scale the model scores them;
    ``KGEConfig.resolved_lr`` sets the learning rate to that scale.
    """
    import torch
    import torch.nn.functional as F
    from torch_geometric.nn.kge import DistMult, RotatE, TransE

    if cfg.model == "transe":
        model = TransE(num_nodes, num_relations, cfg.dim, margin=cfg.margin, p_norm=cfg.p_norm, sparse=sparse)
        with torch.no_grad():
            w = model.node_emb.weight
            w.copy_(F.normalize(w, p=cfg.p_norm, dim=-1))
        return model
    if cfg.model == "distmult":
        return DistMult(num_nodes, num_relations, cfg.dim, margin=cfg.margin, sparse=sparse)
    return RotatE(num_nodes, num_relations, cfg.dim, margin=cfg.margin, sparse=sparse)


def _project_entities(model) -> None:
    """Put the TransE entity rows updated by the last step back on the unit L_p sphere
    (Bordes et al., 2013, Algorithm 1: :math:`e \\leftarrow e / \\|e\\|` each iteration).

    The model normalises in ``forward`` anyway, so the scores do not change; what changes
    is that the raw rows keep norm 1, so Adam's steps (about ``lr`` per coordinate) keep
    the size the learning rate was chosen for instead of shrinking as the rows grow.
    """
    import torch
    import torch.nn.functional as F

    w = model.node_emb.weight
    g = w.grad
    with torch.no_grad():
        if g is None:
            return
        if g.is_sparse:
            rows = g.coalesce().indices()[0]
            w[rows] = F.normalize(w[rows], p=model.p_norm, dim=-1)
        else:
            w.copy_(F.normalize(w, p=model.p_norm, dim=-1))


@dataclass
class KGEmbeddingResult:
    """A trained KG embedding model with its evaluation.

    Attributes:
        config: the :class:`KGEConfig`.
        graph_hash: hash of the graph it was trained on.
        model: the ``torch_geometric.nn.kge`` model.
        metrics: ``{"mrr", "hits@10", "raw_mrr", "raw_hits@10", "mean_rank", "num_eval_edges",
            "num_train_edges", ...}`` on the held-out edges (empty if ``val_fraction == 0``).
        history: mean training loss per epoch.
        train_seconds: wall time of training.
    """

    config: KGEConfig
    graph_hash: str
    model: Any
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    train_seconds: float = 0.0

    @property
    def num_relations(self) -> int:
        return int(self.model.num_relations)

    def entity_embeddings(self) -> "torch.Tensor":
        """``[num_concepts, d]`` node features (TransE: L_p-normalised as the model scores
        them; RotatE: real and imaginary parts concatenated, ``d = 2 * dim``)."""
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            w = self.model.node_emb.weight.detach().clone()
            if self.config.model == "transe":
                w = F.normalize(w, p=self.config.p_norm, dim=-1)
            elif self.config.model == "rotate":
                w = torch.cat((w, self.model.node_emb_im.weight.detach()), -1)
        return w

    def score(self, head, relation, tail) -> "torch.Tensor":
        """Plausibility of triples (higher = more plausible), as the model defines it."""
        import torch

        t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long).view(-1)  # noqa: E731
        with torch.no_grad():
            return self.model(t(head), t(relation), t(tail))

    def path_scorer(self, reduce: str = "sum") -> "KGEPathScorer":
        """A :class:`KGEPathScorer` for ``PathRetriever(scorer=...)``."""
        return KGEPathScorer(self, reduce=reduce)

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``kge.safetensors`` (weights + JSON metadata) into ``directory``."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        meta = {
            "format": _FORMAT,
            "graph_hash": self.graph_hash,
            "config": json.dumps(asdict(self.config), sort_keys=True),
            "key": self.config.key(self.graph_hash),
            "num_nodes": str(self.model.num_nodes),
            "num_relations": str(self.model.num_relations),
            "metrics": json.dumps(self.metrics, sort_keys=True),
            "history": json.dumps(self.history),
            "train_seconds": repr(self.train_seconds),
        }
        path = d / "kge.safetensors"
        tmp = d / "kge.safetensors.tmp"
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike, graph: "KnowledgeGraph | None" = None) -> "KGEmbeddingResult":
        """Read what :meth:`save` wrote. With ``graph``, its hash must match the one trained on.

        Raises:
            ValueError: missing/foreign file or graph-hash mismatch.
        """
        from safetensors import safe_open

        path = Path(directory) / "kge.safetensors"
        if not path.is_file():
            raise ValueError(f"{path}: no KG embedding file")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") not in _READABLE_FORMATS:
            raise ValueError(f"{path}: field 'format' is {meta.get('format')!r}, expected one of {_READABLE_FORMATS}")
        if graph is not None and meta["graph_hash"] != graph.hash:
            raise ValueError(
                f"{path}: field 'graph_hash' is {meta['graph_hash'][:12]}..., but the graph's hash is "
                f"{graph.hash[:12]}...; these embeddings were trained on another graph"
            )
        cfg = KGEConfig(**json.loads(meta["config"]))
        model = _build_model(cfg, int(meta["num_nodes"]), int(meta["num_relations"]))
        model.load_state_dict(tensors)
        model.eval()
        return cls(cfg, meta["graph_hash"], model, json.loads(meta["metrics"]), json.loads(meta["history"]),
                   float(meta["train_seconds"]))


class KGEPathScorer:
    r"""Score KagNet paths with a KG embedding model: the sum (or mean) of the triple
    scores along the path.

    A hop with relation id ``r < R`` scores :math:`f(n_i, r, n_{i+1})`; ``r >= R`` means the
    edge was followed backward and scores :math:`f(n_{i+1}, r - R, n_i)`. Signature as
    :class:`kgfuse.kg.retrieval.PathRetriever` expects:
    ``scorer(nodes [P, H+1], rels [P, H], length [P]) -> scores [P]`` (numpy in, numpy out).
    """

    def __init__(self, result: KGEmbeddingResult, reduce: str = "sum") -> None:
        if reduce not in ("sum", "mean"):
            raise ValueError(f"reduce must be 'sum' or 'mean', not {reduce!r}")
        self.result = result
        self.reduce = reduce
        self.__name__ = f"kge-{result.config.model}-{result.config.key(result.graph_hash)[:12]}-{reduce}"

    def __call__(self, nodes, rels, length) -> np.ndarray:
        import torch

        nodes = torch.as_tensor(np.asarray(nodes), dtype=torch.long)
        rels = torch.as_tensor(np.asarray(rels), dtype=torch.long)
        length = torch.as_tensor(np.asarray(length), dtype=torch.long).view(-1)
        P = nodes.shape[0]
        if P == 0:
            return np.zeros(0, dtype=np.float64)
        if rels.dim() == 1:
            rels = rels.view(P, -1)
        H = rels.shape[1]
        R = self.result.num_relations
        src, dst = nodes[:, :H], nodes[:, 1 : H + 1]
        back = rels >= R
        h = torch.where(back, dst, src)
        t = torch.where(back, src, dst)
        r = torch.where(back, rels - R, rels)
        if int(r.max()) >= R or int(r.min()) < 0:
            raise ValueError(f"path relation ids must be in [0, {2 * R})")
        valid = torch.arange(H).unsqueeze(0) < length.unsqueeze(1)
        with torch.no_grad():
            s = self.result.model(h.reshape(-1), r.reshape(-1), t.reshape(-1)).view(P, H)
        s = (s * valid).sum(1)
        if self.reduce == "mean":
            s = s / length.clamp(min=1)
        return s.double().numpy()


def _true_tails(graph: "KnowledgeGraph", h: int, r: int) -> np.ndarray:
    lo, hi = int(graph.out_ptr[h]), int(graph.out_ptr[h + 1])
    rel = graph.relation[lo:hi]
    a, b = np.searchsorted(rel, r, "left"), np.searchsorted(rel, r, "right")
    return graph.tail[lo + a : lo + b]


def _true_heads(graph: "KnowledgeGraph", t: int, r: int) -> np.ndarray:
    e = graph.in_order[graph.in_ptr[t] : graph.in_ptr[t + 1]]
    return graph.head[e[graph.relation[e] == r]]


def candidate_scores(model, anchor: "torch.Tensor", rel: "torch.Tensor", side: str) -> "torch.Tensor":
    """Scores ``[B, N]`` of every concept as the tail (``side="tail"``: ``anchor`` = heads)
    or as the head (``side="head"``: ``anchor`` = tails) of relation ``rel``.

    Equal to calling ``model(h, r, t)`` on all candidates, but computed with one distance
    or matrix product per batch (TransE and RotatE: ``torch.cdist``; DistMult: a matmul).
    """
    import torch
    import torch.nn.functional as F
    from torch_geometric.nn.kge import DistMult, RotatE, TransE

    N = model.num_nodes
    if isinstance(model, TransE):
        E = F.normalize(model.node_emb.weight, p=model.p_norm, dim=-1)
        r = model.rel_emb(rel)
        q = E[anchor] + r if side == "tail" else E[anchor] - r  # ||c + r - t|| = ||c - (t - r)||
        return -torch.cdist(q, E, p=model.p_norm)
    if isinstance(model, DistMult):
        E = model.node_emb.weight
        return (E[anchor] * model.rel_emb(rel)) @ E.t()
    if isinstance(model, RotatE):
        re, im = model.node_emb.weight, model.node_emb_im.weight
        theta = model.rel_emb(rel)
        c, s_ = torch.cos(theta), torch.sin(theta)
        if side == "head":  # rotation is unitary: ||rot(c) - t|| = ||c - rot^-1(t)||
            s_ = -s_
        a_re, a_im = re[anchor], im[anchor]
        q = torch.cat((c * a_re - s_ * a_im, c * a_im + s_ * a_re), -1)
        return model.margin - torch.cdist(q, torch.cat((re, im), -1), p=2)
    # any other KGE model: score every (anchor, rel, candidate) triple
    B = anchor.shape[0]
    cand = torch.arange(N, device=anchor.device)
    a, r = anchor.repeat_interleave(N), rel.repeat_interleave(N)
    c = cand.repeat(B)
    return (model(a, r, c) if side == "tail" else model(c, r, a)).view(B, N)


def evaluate_link_prediction(model, graph: "KnowledgeGraph", edges: np.ndarray, *, batch_size: int | None = None,
                             k: int = 10, max_scores_per_call: int = 262_144) -> dict[str, float]:
    """Rank every held-out edge's tail (given head, relation) and head (given relation,
    tail) among all concepts.

    *Filtered* ranks (Bordes et al., 2013) ignore the other true answers present anywhere in
    ``graph`` (train or held out); *raw* ranks count them. Ties are counted pessimistically
    on the filtered side (rank = 1 + #candidates scoring strictly higher + half the ties).

    Args:
        model: a ``torch_geometric.nn.kge`` model.
        graph: the full graph (for filtering).
        edges: held-out edge ids of ``graph``.
        batch_size: held-out edges scored per call (default: as many as keep
            ``batch_size * num_concepts <= max_scores_per_call``, bounding memory).

    Returns:
        ``mrr``, ``hits@k``, ``mean_rank`` (filtered), ``raw_mrr``, ``raw_hits@k``,
        ``num_eval_edges`` (each edge gives two rankings).
    """
    import torch

    N = graph.num_concepts
    if batch_size is None:
        batch_size = max(1, max_scores_per_call // max(N, 1))
    heads, rels, tails = graph.head[edges], graph.relation[edges], graph.tail[edges]
    f_ranks, r_ranks = [], []
    model.eval()
    with torch.no_grad():
        for i0 in range(0, len(edges), batch_size):
            hb = torch.as_tensor(heads[i0 : i0 + batch_size])
            rb = torch.as_tensor(rels[i0 : i0 + batch_size])
            tb = torch.as_tensor(tails[i0 : i0 + batch_size])
            B = hb.shape[0]
            for side in ("tail", "head"):
                if side == "tail":
                    s = candidate_scores(model, hb, rb, "tail")
                    gold = tb
                else:
                    s = candidate_scores(model, tb, rb, "head")
                    gold = hb
                g = s.gather(1, gold.view(-1, 1))
                higher = (s > g).sum(1).double()
                ties = ((s == g).sum(1) - 1).double()
                r_ranks.append(1.0 + higher + ties / 2)
                # filtered: drop the other true answers
                for j in range(B):
                    h_, r_, t_ = int(hb[j]), int(rb[j]), int(tb[j])
                    others = _true_tails(graph, h_, r_) if side == "tail" else _true_heads(graph, t_, r_)
                    others = torch.as_tensor(others[others != int(gold[j])], dtype=torch.long)
                    if others.numel():
                        s[j, others] = -math.inf
                higher = (s > g).sum(1).double()
                ties = ((s == g).sum(1) - 1).double()
                f_ranks.append(1.0 + higher + ties / 2)
    if not f_ranks:
        return {}
    fr, rr = torch.cat(f_ranks), torch.cat(r_ranks)
    return {
        "mrr": float((1.0 / fr).mean()),
        f"hits@{k}": float((fr <= k).double().mean()),
        "mean_rank": float(fr.mean()),
        "raw_mrr": float((1.0 / rr).mean()),
        f"raw_hits@{k}": float((rr <= k).double().mean()),
        "num_eval_edges": int(len(edges)),
        "ranking": "filtered and raw; head and tail prediction over all concepts",
    }


def train_kg_embeddings(
    graph: "KnowledgeGraph",
    model: str = "transe",
    dim: int = 100,
    epochs: int = 50,
    *,
    batch_size: int = 1024,
    lr: float | None = None,
    weight_decay: float | None = None,
    margin: float = 1.0,
    p_norm: float = 1.0,
    val_fraction: float = 0.05,
    max_eval_edges: int = 2000,
    seed: int = 0,
    sparse: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    log_every: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> KGEmbeddingResult:
    """Train TransE / DistMult / RotatE on ``graph`` and evaluate link prediction.

    The edges are split at random (``seed``) into training edges and ``val_fraction``
    held-out edges; the model is trained with PyG's margin/logistic losses and one random
    head- or tail-corrupted negative per positive; then up to ``max_eval_edges`` held-out
    edges are ranked (:func:`evaluate_link_prediction`). Note that on a graph with inverse
    relations (ConceptNet with ``add_inverse=True``) the inverse of a held-out edge may be a
    training edge, which makes the task easier: evaluate on a graph without inverses for
    comparable numbers.

    With ``cache_dir``, the result is stored under ``cache_dir/kge-<key>`` (key = SHA-256 of
    the graph hash and the configuration) and reused when the same graph and configuration
    ask again.

    Returns:
        a :class:`KGEmbeddingResult`.
    """
    import torch

    cfg = KGEConfig(model=model, dim=dim, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    margin=margin, p_norm=p_norm, val_fraction=val_fraction, max_eval_edges=max_eval_edges, seed=seed,
                   sparse=sparse)
    if graph.num_edges == 0:
        raise ValueError("cannot train KG embeddings on a graph without edges")
    cache = Path(cache_dir) / f"kge-{cfg.key(graph.hash)[:32]}" if cache_dir is not None else None
    if cache is not None and (cache / "kge.safetensors").is_file():
        logger.info("kgfuse: KG embeddings loaded from cache %s", cache)
        return KGEmbeddingResult.load(cache, graph)

    rng = np.random.default_rng(seed)
    perm = rng.permutation(graph.num_edges)
    n_val = int(round(graph.num_edges * cfg.val_fraction))
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    eval_edges = val if len(val) <= cfg.max_eval_edges else np.sort(rng.choice(val, cfg.max_eval_edges, replace=False))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sparse = cfg.resolved_sparse
        kge = _build_model(cfg, graph.num_concepts, graph.num_relations, sparse=sparse).to(device)
        h = torch.as_tensor(graph.head[train], device=device)
        r = torch.as_tensor(graph.relation[train], device=device)
        t = torch.as_tensor(graph.tail[train], device=device)
        loader = kge.loader(h, r, t, batch_size=cfg.batch_size, shuffle=True)
        if sparse:
            opt = torch.optim.SparseAdam(list(kge.parameters()), lr=cfg.resolved_lr)
        else:
            opt = torch.optim.Adam(kge.parameters(), lr=cfg.resolved_lr, weight_decay=cfg.resolved_weight_decay)
        history: list[float] = []
        t0 = time.perf_counter()
        for epoch in range(cfg.epochs):
            kge.train()
            total, count = 0.0, 0
            for hb, rb, tb in loader:
                opt.zero_grad()
                loss = kge.loss(hb, rb, tb)
                loss.backward()
                opt.step()
                if cfg.model == "transe":
                    _project_entities(kge)
                total += float(loss.detach()) * hb.numel()
                count += hb.numel()
            history.append(total / max(count, 1))
            if callback is not None:
                callback(epoch, history[-1])
            if log_every and (epoch + 1) % log_every == 0:
                logger.info("kgfuse: KGE %s epoch %d loss %.4f", cfg.model, epoch + 1, history[-1])
        seconds = time.perf_counter() - t0
        kge = kge.cpu().eval()
        metrics = evaluate_link_prediction(kge, graph, eval_edges) if len(eval_edges) else {}
    metrics.update({"num_train_edges": int(len(train)), "num_heldout_edges": int(len(val))})
    result = KGEmbeddingResult(cfg, graph.hash, kge, metrics, history, seconds)
    if cache is not None:
        result.save(cache)
    return result
