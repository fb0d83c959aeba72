"""Inference on raw text with the graph, linker and retriever a model was trained with.

A trained model folder (``<run>/model``) holds the model (``config.json`` +
``model.safetensors``), its tokenizer, and ``kgfuse_pipeline.json``: the graph's path and
content hash, the linker and retriever settings, ``max_length`` and the ``knowledge_text``
settings (the verbaliser that writes retrieved knowledge into the input, also for an LM-only
model). :class:`KGFusePredictor` rebuilds that pipeline::

    from kgfuse.tasks.inference import KGFusePredictor

    p = KGFusePredictor.from_pretrained("runs/demo/model")
    out = p.predict("Where would you put a plate after drying it?", ["cupboard", "oven", "roof"])
    out.choice, out.probs, out.explanation   # 'cupboard', [...], ['plate --atlocation--> cupboard']

A model already loaded with ``KGFusedForMultipleChoice.from_pretrained("runs/demo/model")`` (or
the Auto class) gets the same pipeline with :meth:`KGFusePredictor.for_loaded_model`; the model
class itself knows nothing of raw text.

The graph is loaded from the recorded path, or from ``graph=`` (a path or a
:class:`~kgfuse.kg.KnowledgeGraph`); its hash must equal the recorded one (the node
embedding table follows its concept ids), unless ``check_graph=False``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

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
        knowledge: the knowledge text the model read after the chosen answer (``""`` without
            ``knowledge_text``); ``knowledge_per_choice`` has it for every choice.
    """

    scores: list[float]
    probs: list[float]
    predicted: int
    choice: str
    explanation: list[str] = field(default_factory=list)
    concepts: dict[str, list[str]] = field(default_factory=dict)
    knowledge: str = ""
    knowledge_per_choice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "probs": self.probs, "predicted": self.predicted, "choice": self.choice,
                "explanation": self.explanation, "concepts": self.concepts, "knowledge": self.knowledge,
                "knowledge_per_choice": self.knowledge_per_choice}


class KGFusePredictor:
    """A trained model together with its graph, linker, retriever and tokenizer.

    Args:
        model: a :class:`~kgfuse.fusion.KGFusedForMultipleChoice` (eval mode is set).
        tokenizer: its fast tokenizer.
        graph, linker, retriever: the pipeline (``None`` for an LM-only model).
        max_length: tokens per (question, choice) pair.
        info: the pipeline description (:data:`~kgfuse.tasks.pipeline.PIPELINE_FILE`).
        verbalizer: the :class:`~kgfuse.kg.verbalize.Verbalizer` of a model trained with
            ``knowledge_text`` (needs graph, linker and retriever, also for an LM-only model).
        example_retriever: the :class:`~kgfuse.tasks.retrieved_examples.ExampleRetriever` of a
            model trained with ``knowledge_text.examples`` (its training examples, saved in
            the model folder).
    """

    def __init__(self, model: Any, tokenizer: Any, graph: Any = None, linker: Any = None, retriever: Any = None, *,
                 max_length: int | None = 128, info: dict[str, Any] | None = None, device: str | None = None,
                 verbalizer: Any = None, example_retriever: Any = None) -> None:
        import torch

        self.verbalizer = verbalizer
        self.example_retriever = example_retriever
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.graph = graph
        self.linker = linker
        self.retriever = retriever
        self.max_length = max_length
        self.info = dict(info or {})
        self._graph_input: str | None = None
        self._knowledge_input: str | None = None
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
                        device: str | None = None, verify: bool = True) -> "KGFusePredictor":
        """Load a model folder written by ``kgfuse train`` (or :func:`save_predictor`).

        The weights must cover the model exactly, and with ``verify`` the model files are
        checked against the folder's ``kgfuse_manifest.json`` first (see
        :class:`~kgfuse.fusion.modeling.KGFusedPreTrainedModel`).

        Raises:
            kgfuse.fusion.modeling.ModelLoadError: a model file is damaged, or tensors are
                missing or unexpected (named).
        """
        from kgfuse.fusion import KGFusedForMultipleChoice

        model_dir = Path(model_dir).expanduser()
        _read_info(model_dir)  # a clear error before loading any weights
        model = KGFusedForMultipleChoice.from_pretrained(str(model_dir), verify=verify)
        return cls.for_model(model, model_dir, graph=graph, check_graph=check_graph, device=device)

    @classmethod
    def for_loaded_model(cls, model: Any, *, graph: Any = None, check_graph: bool = True) -> "KGFusePredictor":
        """A predictor around a model loaded with ``from_pretrained(<run>/model)`` (the folder
        ``kgfuse train`` writes), with the tokenizer, graph, linker and retriever recorded in
        that folder; the predictor scores with the model's in-memory weights::

            model = AutoModelForMultipleChoice.from_pretrained("runs/csqa/model")
            KGFusePredictor.for_loaded_model(model).predict(question, choices)

        Raises:
            ValueError: the model was not loaded from such a folder.
        """
        src = getattr(model.config, "name_or_path", None)
        folder = Path(src).expanduser() if src else None
        if folder is None or not (folder / PIPELINE_FILE).is_file():
            where = (f"was loaded from {src}, which has no {PIPELINE_FILE}" if src
                     else "was not loaded from a saved folder")
            raise ValueError(
                f"raw-text prediction needs the graph, linker and retriever the model was trained with, read from "
                f"the {PIPELINE_FILE} of the folder it was loaded from; this model {where}. Load a trained model "
                f"from '<run>/model' (the folder `kgfuse train` writes), or use "
                f"KGFusePredictor.from_pretrained(folder, graph=...)"
            )
        return cls.for_model(model, folder, graph=graph, check_graph=check_graph, device=str(model.device))

    @classmethod
    def for_model(cls, model: Any, model_dir: str | os.PathLike, *, graph: Any = None, check_graph: bool = True,
                  device: str | None = None) -> "KGFusePredictor":
        """A predictor around an already loaded ``model`` with the tokenizer and the pipeline
        (graph, linker, retriever) recorded in ``model_dir`` (see also :meth:`for_loaded_model`).

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
        knowledge_text = info.get("knowledge_text")  # needs the graph even for an LM-only model
        g = linker = retriever = verbalizer = None
        if use_graph or knowledge_text:
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
            retriever = build_retriever(g, info["retriever"].get("options"),
                                        text_encoder=info["retriever"].get("text_encoder"))
            recorded = info["retriever"].get("config")
            built = json.loads(json.dumps(retriever.config)) if retriever is not None else None
            if recorded and built != recorded:
                diff = sorted(k for k in set(recorded) | set(built) if recorded.get(k) != built.get(k))
                raise ValueError(
                    f"the retriever rebuilt here differs from the one the model was trained with in {diff} "
                    f"(recorded {[recorded.get(k) for k in diff]}, built {[built.get(k) for k in diff]}): it "
                    "would retrieve other subgraphs (for a relevance ranking: use the same text encoder)")
        example_retriever = None
        if knowledge_text:
            from .pipeline import build_verbalizer

            verbalizer = build_verbalizer(g, knowledge_text["options"], tokenizer)
            example_retriever = _examples_from(knowledge_text, model_dir)
        return cls(model, tokenizer, g, linker, retriever, max_length=info.get("max_length"), info=info, device=device,
                   verbalizer=verbalizer, example_retriever=example_retriever)

    def save_pretrained(self, model_dir: str | os.PathLike) -> Path:
        """Write model, tokenizer and the pipeline description to ``model_dir``."""
        from .pipeline import write_pipeline_files

        model_dir = Path(model_dir)
        self.model.save_pretrained(str(model_dir))
        write_pipeline_files(model_dir, self.tokenizer, self.info, example_retriever=self.example_retriever)
        return model_dir

    # ------------------------------------------------------------------ prediction
    def _pairs(self, question: str, choices: Sequence[str]) -> list[tuple[Any, Any]]:
        from .pipeline import _empty_kgdata

        if self.linker is None or self.retriever is None:
            from kgfuse.kg.linking import Grounding

            return [(Grounding(), _empty_kgdata()) for _ in choices]
        out = []
        with_context = bool(getattr(self.retriever, "needs_context", False))
        for c in choices:
            g = self.linker.ground(question, c)
            out.append((g, self.retriever(g, context=(question, c)) if with_context else self.retriever(g)))
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
        from .pipeline import knowledge_units

        knowledge = knowledge_units(*self._knowledge(), pairs, question)
        model_pairs = pairs
        mode = self.graph_input
        if not self.uses_graph or mode == "none":  # the model reads no graph (at most the knowledge text)
            from .pipeline import _empty_pairs

            model_pairs = _empty_pairs(len(pairs))
        elif mode != "full":  # the view the model was trained on (model.graph_input)
            from .graph_input import SUBGRAPH_VIEWS

            model_pairs = [(g, SUBGRAPH_VIEWS[mode](d)) for g, d in pairs]
        feats = build_features(question, choices, [g for g, _ in model_pairs], [d for _, d in model_pairs],
                               self.tokenizer, max_length=self.max_length, knowledge=knowledge)
        batch = {k: v.to(self.device) for k, v in self.collator([feats]).items()}
        with torch.no_grad():
            logits = self.model(**batch).logits[0].float().cpu()
        probs = torch.softmax(logits, -1)
        k = int(torch.argmax(logits))
        return Prediction(
            scores=logits.tolist(), probs=probs.tolist(), predicted=k, choice=choices[k],
            explanation=self.explain_pair(pairs[k], top_k=top_k),
            concepts=self.concept_names(pairs[k][0]),
            knowledge=feats["knowledge"][k] if knowledge is not None else "",
            knowledge_per_choice=list(feats.get("knowledge", [])),
        )

    def knowledge_text(self, question: str, choice: str) -> str:
        """The knowledge text the model reads after ``(question, choice)``, cut as in its input
        (``""`` for a model trained without ``knowledge_text``)."""
        verbalizer, examples = self._knowledge()
        if verbalizer is None and examples is None:
            return ""
        from .features import build_features
        from .pipeline import knowledge_units

        (pair,) = self._pairs(question, [choice])
        feats = build_features(question, [choice], [pair[0]], [pair[1]], self.tokenizer, max_length=self.max_length,
                               knowledge=knowledge_units(verbalizer, examples, [pair], question))
        return feats["knowledge"][0]

    def dataset(self, examples: Sequence[Any], *, cache_dir: str | os.PathLike | None = None) -> Any:
        """The model's features of ``examples`` (grounding and retrieval through the
        preprocessing cache, ``cache_dir`` or ``$KGFUSE_HOME/cache``), with the knowledge text
        when the model was trained with it: what the evaluation of a predictor iterates."""
        from .pipeline import MCFeatureDataset, TextOnlyDataset, preprocess

        if self.linker is None or self.retriever is None:
            return TextOnlyDataset(examples, self.tokenizer, max_length=self.max_length)
        from .config import default_home

        cache = Path(cache_dir) if cache_dir is not None else default_home() / "cache"
        from .graph_input import graph_input_view

        full = preprocess(examples, self.graph, self.linker, self.retriever, cache)
        mode = self.graph_input
        graph_inputs = self.uses_graph and mode != "none"
        pre = graph_input_view(full, mode) if graph_inputs else full
        verbalizer, example_retriever = self._knowledge()
        return MCFeatureDataset(examples, pre, self.tokenizer, max_length=self.max_length, verbalizer=verbalizer,
                                knowledge_pre=full if pre is not full else None, graph_inputs=graph_inputs,
                                example_retriever=example_retriever)

    @property
    def graph_input(self) -> str:
        """What of each retrieved subgraph reaches the model (see
        :mod:`kgfuse.tasks.graph_input`): ``model.graph_input`` of the run that trained it
        (``full`` unless recorded), or the view set on this predictor for a test-time
        ablation::

            pred.graph_input = "none"      # the trained fused model, its graph taken away
            pred.graph_input = "no_edges"  # the same linked nodes, no relations between them

        Only scoring changes; explanations still come from the full retrieved subgraph. Set
        ``None`` to return to the recorded view.

        Raises:
            ValueError: an unknown view, or a model that reads no graph (LM only).
        """
        if self._graph_input is not None:
            return self._graph_input
        return str((self.info or {}).get("graph_input", "full"))

    @graph_input.setter
    def graph_input(self, mode: str | None) -> None:
        from .graph_input import GRAPH_INPUTS

        if mode is not None and mode not in GRAPH_INPUTS:
            raise ValueError(f"graph_input must be one of {list(GRAPH_INPUTS)}, not {mode!r}")
        if mode is not None and not self.uses_graph:
            raise ValueError("graph_input: this model reads no graph (LM only); a graph-input ablation does not apply")
        self._graph_input = mode

    @property
    def knowledge_input(self) -> str:
        """What of its knowledge text reaches the model (see :mod:`kgfuse.tasks.graph_input`):
        ``full`` (as trained), or the view set on this predictor for a test-time ablation of a
        model trained with ``knowledge_text``::

            pred.knowledge_input = "none"         # the plain (question, choice) input
            pred.knowledge_input = "triples"      # only the fact sentences of the text it saw
            pred.knowledge_input = "definitions"  # only the definitions

        Set ``None`` (or ``full``) to return to the text it was trained with.

        Raises:
            ValueError: an unknown view, a model trained without knowledge text, or a part its
                knowledge text does not have (``definitions`` of a model trained with
                ``definitions: none``).
        """
        return self._knowledge_input or "full"

    @knowledge_input.setter
    def knowledge_input(self, mode: str | None) -> None:
        from .graph_input import KNOWLEDGE_INPUTS

        if mode is not None and mode not in KNOWLEDGE_INPUTS:
            raise ValueError(f"knowledge_input must be one of {list(KNOWLEDGE_INPUTS)}, not {mode!r}")
        if mode in (None, "full"):
            self._knowledge_input = None
            return
        have = self.knowledge_parts
        if not have:
            raise ValueError("knowledge_input: this model was trained without knowledge text (knowledge_text); "
                             "a knowledge-text ablation does not apply")
        if mode != "none" and mode not in have:
            raise ValueError(f"knowledge_input {mode!r}: the model's knowledge text has no {mode} "
                             f"(it has {', '.join(have)})")
        self._knowledge_input = mode

    @property
    def knowledge_parts(self) -> list[str]:
        """The parts of the model's knowledge text: some of ``triples``, ``definitions``,
        ``examples`` (empty for a model trained without it)."""
        v = self.verbalizer
        parts = []
        if v is not None and getattr(v, "triples", 0) > 0:
            parts.append("triples")
        if v is not None and getattr(v, "definitions", "none") != "none":
            parts.append("definitions")
        if self.example_retriever is not None:
            parts.append("examples")
        return parts

    def _knowledge(self) -> tuple[Any, Any]:
        """The (verbaliser, example retriever) of the current :attr:`knowledge_input`."""
        mode = self.knowledge_input
        if mode == "full":
            return self.verbalizer, self.example_retriever
        if mode in ("none", "examples"):
            return None, (self.example_retriever if mode == "examples" else None)
        from kgfuse.kg.verbalize import VerbalizerPart

        return VerbalizerPart(self.verbalizer, "fact" if mode == "triples" else "definition"), None

    def explain_pair(self, pair: tuple[Any, Any], *, top_k: int = 3) -> list[str]:
        """Readable reasoning lines of one (Grounding, KGData) pair (paths first, else edges, else concepts)."""
        if self.linker is None or self.retriever is None:
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


def _examples_from(knowledge_text: Mapping[str, Any], model_dir: Path):
    """The example retriever of a model trained with ``knowledge_text.examples`` (None without),
    read from the model folder and checked against the recorded content hash."""
    k = int((knowledge_text.get("options") or {}).get("examples") or 0)
    if not k:
        return None
    from .retrieved_examples import EXAMPLES_FILE, ExampleRetriever

    path = model_dir / EXAMPLES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the model was trained with knowledge_text.examples={k} and "
                                "retrieves them from that file")
    r = ExampleRetriever.load(path, k=k)
    want = (knowledge_text.get("examples") or {}).get("hash")
    if want and r.content_hash != want:
        raise ValueError(f"{path} holds other examples (hash {r.content_hash}) than the model was trained with ({want})")
    return r


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
