"""Inference on raw text with the graph, linker and retriever a model was trained with.

A trained model folder (``<run>/model``) holds the model (``config.json`` +
``model.safetensors``), its tokenizer, and ``kgfuse_pipeline.json``: the graph's path and
content hash, the linker and retriever settings, ``max_length``. :class:`KGFusePredictor`
rebuilds that pipeline::

    from kgfuse.tasks.inference import KGFusePredictor

    p = KGFusePredictor.from_pretrained("runs/demo/model")
    out = p.predict("Where would you put a plate after drying it?", ["cupboard", "oven", "roof"])
    out.choice, out.probs, out.explanation   # 'cupboard', [...], ['plate --atlocation--> cupboard']

A model loaded with ``KGFusedForMultipleChoice.from_pretrained("runs/demo/model")`` does the same
through ``model.predict(question, choices)`` (:meth:`KGFusePredictor.for_model` around the model
itself, cached on it).

The graph is loaded from the recorded path, or from ``graph=`` (a path or a
:class:`~kgfuse.kg.KnowledgeGraph`); its hash must equal the recorded one (the node
embedding table follows its concept ids), unless ``check_graph=False``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .pipeline import PIPELINE_FILE, build_linker, build_retriever, load_graph

__all__ = ["Prediction", "KGFusePredictor", "GraphMismatchError"]


class GraphMismatchError(ValueError):
    """The graph given to a predictor is not the one the model was trained with."""


@dataclass
class Prediction:
    """The answer to one question.

    Attributes:
        scores: one logit per choice.
        probs: softmax of ``scores``.
        predicted: index of the best choice.
        choice: its text.
        explanation: reasoning paths (or subgraph edges) of the chosen answer, as readable
            lines (``plate --atlocation--> cupboard``); empty for an LM-only model.
        concepts: names of the concepts linked in the question and in the chosen answer.
    """

    scores: list[float]
    probs: list[float]
    predicted: int
    choice: str
    explanation: list[str] = field(default_factory=list)
    concepts: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "probs": self.probs, "predicted": self.predicted, "choice": self.choice,
                "explanation": self.explanation, "concepts": self.concepts}


class KGFusePredictor:
    """A trained model together with its graph, linker, retriever and tokenizer.

    Args:
        model: a :class:`~kgfuse.fusion.KGFusedForMultipleChoice` (eval mode is set).
        tokenizer: its fast tokenizer.
        graph, linker, retriever: the pipeline (``None`` for an LM-only model).
        max_length: tokens per (question, choice) pair.
        info: the pipeline description (:data:`~kgfuse.tasks.pipeline.PIPELINE_FILE`).
    """

    def __init__(self, model: Any, tokenizer: Any, graph: Any = None, linker: Any = None, retriever: Any = None, *,
                 max_length: int | None = 128, info: dict[str, Any] | None = None, device: str | None = None) -> None:
        import torch

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.graph = graph
        self.linker = linker
        self.retriever = retriever
        self.max_length = max_length
        self.info = dict(info or {})
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model.to(self.device)
        from .features import MultipleChoiceCollator

        self.collator = MultipleChoiceCollator(tokenizer, max_length=max_length)

    @property
    def uses_graph(self) -> bool:
        return bool(getattr(self.model.config, "use_graph", True)) and self.linker is not None

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, *, graph: Any = None, check_graph: bool = True,
                        device: str | None = None) -> "KGFusePredictor":
        """Load a model folder written by ``kgfuse train`` (or :func:`save_predictor`)."""
        from kgfuse.fusion import KGFusedForMultipleChoice

        model_dir = Path(model_dir).expanduser()
        _read_info(model_dir)  # a clear error before loading any weights
        model = KGFusedForMultipleChoice.from_pretrained(str(model_dir))
        return cls.for_model(model, model_dir, graph=graph, check_graph=check_graph, device=device)

    @classmethod
    def for_model(cls, model: Any, model_dir: str | os.PathLike, *, graph: Any = None, check_graph: bool = True,
                  device: str | None = None) -> "KGFusePredictor":
        """A predictor around an already loaded ``model`` with the tokenizer and the pipeline
        (graph, linker, retriever) recorded in ``model_dir`` (what
        :meth:`KGFusedForMultipleChoice.predict <kgfuse.fusion.KGFusedForMultipleChoice.predict>` uses).

        Raises:
            FileNotFoundError: ``model_dir`` has no :data:`~kgfuse.tasks.pipeline.PIPELINE_FILE`,
                or the recorded graph is gone and no ``graph`` is given.
            GraphMismatchError: the graph, or the model's recorded ``graph_hash``, is not the
                one the folder records (with ``check_graph``).
        """
        from kgfuse.encoders.text import load_tokenizer

        model_dir = Path(model_dir).expanduser()
        info = _read_info(model_dir)
        tokenizer = load_tokenizer(str(model_dir))
        use_graph = bool(getattr(model.config, "use_graph", True)) and not info.get("lm_only", False)
        g = linker = retriever = None
        if use_graph:
            want = info["graph"].get("hash")
            own = getattr(model.config, "graph_hash", None)
            if check_graph and want and own and own != want:
                raise GraphMismatchError(
                    f"the model's config records graph {own}, but {model_dir / PIPELINE_FILE} records {want}: "
                    "the model does not belong to this folder"
                )
            g = _graph_from(graph, info, model_dir)
            if check_graph and want and g.hash != want:
                raise GraphMismatchError(
                    f"the graph given has hash {g.hash}, the model was trained on {want} "
                    f"({info['graph'].get('path')}); pass the same graph or check_graph=False"
                )
            if g.num_concepts != model.config.num_concepts:
                raise GraphMismatchError(
                    f"the graph has {g.num_concepts} concepts, the model's node table {model.config.num_concepts}"
                )
            linker = build_linker(g, info["linker"].get("options"))
            retriever = build_retriever(g, info["retriever"].get("options"))
        return cls(model, tokenizer, g, linker, retriever, max_length=info.get("max_length"), info=info, device=device)

    def save_pretrained(self, model_dir: str | os.PathLike) -> Path:
        """Write model, tokenizer and the pipeline description to ``model_dir``."""
        from .pipeline import write_pipeline_files

        model_dir = Path(model_dir)
        self.model.save_pretrained(str(model_dir))
        write_pipeline_files(model_dir, self.tokenizer, self.info)
        return model_dir

    # ------------------------------------------------------------------ prediction
    def _pairs(self, question: str, choices: Sequence[str]) -> list[tuple[Any, Any]]:
        from .pipeline import _empty_kgdata

        if not self.uses_graph:
            from kgfuse.kg.linking import Grounding

            return [(Grounding(), _empty_kgdata()) for _ in choices]
        out = []
        for c in choices:
            g = self.linker.ground(question, c)
            out.append((g, self.retriever(g)))
        return out

    def predict(self, question: str, choices: Sequence[str], *, top_k: int = 3) -> Prediction:
        """Score ``choices`` for ``question`` and explain the chosen answer.

        Args:
            question: question text.
            choices: at least two answer texts.
            top_k: reasoning lines kept in the explanation.
        """
        if not isinstance(question, str) or not question.strip():
            raise ValueError("question must be a non-empty string")
        choices = list(choices)
        if len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise ValueError("choices must be at least two non-empty strings")
        return self.predict_pairs(question, choices, self._pairs(question, choices), top_k=top_k)

    def predict_pairs(self, question: str, choices: Sequence[str], pairs: Sequence[tuple[Any, Any]], *, top_k: int = 3) -> Prediction:
        """Like :meth:`predict` with precomputed ``[(Grounding, KGData)]`` per choice."""
        import torch

        from .features import build_features

        feats = build_features(question, choices, [g for g, _ in pairs], [d for _, d in pairs], self.tokenizer,
                               max_length=self.max_length)
        batch = {k: v.to(self.device) for k, v in self.collator([feats]).items()}
        with torch.no_grad():
            logits = self.model(**batch).logits[0].float().cpu()
        probs = torch.softmax(logits, -1)
        k = int(torch.argmax(logits))
        return Prediction(
            scores=logits.tolist(), probs=probs.tolist(), predicted=k, choice=choices[k],
            explanation=self.explain_pair(pairs[k], top_k=top_k),
            concepts=self.concept_names(pairs[k][0]),
        )

    def explain_pair(self, pair: tuple[Any, Any], *, top_k: int = 3) -> list[str]:
        """Readable reasoning lines of one (Grounding, KGData) pair (paths first, else edges, else concepts)."""
        if not self.uses_graph:
            return []
        g, data = pair
        lines = self.retriever.explain(data, self.graph, limit=top_k)
        if lines:
            return lines
        names = self.concept_names(g)
        if names["question"] or names["answer"]:
            return [f"no path; linked: question {names['question']} / answer {names['answer']}"]
        return []

    def concept_names(self, g: Any) -> dict[str, list[str]]:
        if self.graph is None:
            return {"question": [], "answer": []}
        return {"question": [self.graph.concept_name(c) for c in g.question_concepts],
                "answer": [self.graph.concept_name(c) for c in g.answer_concepts]}

    def link(self, text: str) -> list[Any]:
        """Mentions of ``text`` (see :meth:`kgfuse.kg.linking.EntityLinker.link`)."""
        if self.linker is None:
            return []
        return self.linker.link(text)


def _read_info(model_dir: Path) -> dict[str, Any]:
    info_path = model_dir / PIPELINE_FILE
    if not info_path.is_file():
        raise FileNotFoundError(
            f"{model_dir} has no {PIPELINE_FILE}: not a kgfuse model folder (use <run>/model written by `kgfuse train`)"
        )
    return json.loads(info_path.read_text())


def _graph_from(graph: Any, info: dict[str, Any], model_dir: Path):
    if graph is not None and not isinstance(graph, (str, os.PathLike)):
        return graph
    if graph is not None:
        return load_graph({"path": str(graph), "format": "auto", "options": info["graph"].get("options", {})}, None)
    gpath = info["graph"].get("path")
    if not gpath or not Path(gpath).exists():
        raise FileNotFoundError(
            f"the graph the model was trained with ({gpath}) is not found; pass graph=<path or KnowledgeGraph>"
        )
    return load_graph({"path": gpath, "format": info["graph"].get("format", "auto"), "options": info["graph"].get("options", {})}, None)
