"""Knowledge as text: the retrieved knowledge of a (question, choice) statement as sentences.

One module because templates, definition sources and the verbaliser share the concept-name,
relation-name and file helpers, and each is short; split it where one of them grows.

DEKCOR (Xu et al., 2021) and KEAR (Xu et al., 2022) feed a text encoder the knowledge itself,
written out, after the (question, choice) pair: the graph triples that join question concepts
to answer concepts, and dictionary definitions of the concepts. :class:`Verbalizer` builds
that text from what the linker and retriever already produced (a
:class:`~kgfuse.kg.linking.Grounding` and a :class:`~kgfuse.kg.retrieval.KGData`)::

    v = Verbalizer(graph, triples=3, definitions="answer", max_tokens=48, tokenizer=tok)
    v(grounding, data)
    # ['cupboard: a small room (or recess) or cabinet used for storage space.',
    #  'plate is found at cupboard.', 'dish is found at cupboard, plate is a dish.']

**Facts.** A retrieved path ``q = v_0 - v_1 - ... - v_h = a`` (KagNet paths of
:class:`~kgfuse.kg.retrieval.PathRetriever`; for a :class:`~kgfuse.kg.retrieval.SubgraphRetriever`
subgraph: every edge between a question and an answer concept, and every pair of edges
``q - x - a`` through a bridging concept ``x``) becomes one sentence: its edges, each in the
direction it has in the graph, rendered by a per-relation template and joined by commas.
Candidates are ranked best first by

.. math::
    \\text{key}(p) = \\big(|p|,\\; -\\min_{e \\in p} w_e,\\; \\text{retrieval order}\\big)

(direct edges first, then shorter paths, then paths whose weakest edge has the larger
weight), de-duplicated (a sentence already said, or one whose facts were all said already,
is skipped) and cut to the ``triples`` best.

**Templates** are data: a JSON preset (``kg/presets/relation_templates.json``, the 17 merged
relations of KagNet/MHGRN/QA-GNN, the ConceptNet 4 extras, negated ``not<relation>`` forms,
the raw ConceptNet 5 names) or a user's file; see :class:`RelationTemplates`. An inverse
relation ``_r`` reads as ``r`` with head and tail swapped; a relation without a template reads
as its name split into words (``part_of`` and ``partOf`` give ``"{head} part of {tail}"``).
Concept names are written with ``_`` as spaces (WordNet synset names ``dog.n.01`` as ``dog``).

**Definitions** come from a definition source (:data:`DEFINITION_SOURCES`, one decorator,
:func:`register_definition_source`): ``"wordnet"`` (the first-sense gloss of the concept's
lemma in the WordNet database files, for graphs whose concept names are English words) or
``"file"`` (a user's ``{concept name: text}`` JSON or ``name<TAB>text`` TSV file).

**Output**: a list of sentences (units), in this order: definitions of the answer concepts,
the facts (best first), definitions of the question concepts (``definitions="all"``). It is
deterministic, has no repeated sentence, and fits ``max_tokens``: units are taken in order
while they fit and skipped when they do not (counted with the model tokenizer when one is
given, else in whitespace words). Importing this module loads neither torch nor spaCy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from kgfuse.registry import registrar

if TYPE_CHECKING:  # pragma: no cover
    from .graph import KnowledgeGraph
    from .linking import Grounding

__all__ = [
    "Verbalizer",
    "VerbalizerPart",
    "RelationTemplates",
    "Fact",
    "DEFINITION_MODES",
    "DEFINITION_SOURCES",
    "DefinitionSource",
    "WordNetDefinitions",
    "FileDefinitions",
    "register_definition_source",
    "resolve_definition_source",
    "definition_source_names",
    "template_preset_names",
    "concept_text",
    "relation_words",
    "is_path_like",
]

_PathLike = str | os.PathLike
DEFAULT_TEMPLATES = "relation_templates"
#: What ``definitions=`` accepts: the answer concepts, the answer and the question concepts, none.
DEFINITION_MODES = ("answer", "all", "none")
_SYNSET = re.compile(r"^(.+)\.([nvasr])\.(\d+)$")
_PLACEHOLDER = re.compile(r"\{(head|tail)\}")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_\-./]+")


def is_path_like(value: str) -> bool:
    """Whether a ``templates`` / ``definition_source`` value names a file rather than a
    preset or a registered source: it has a ``/``, a file suffix, or starts with ``.``,
    ``~``, ``$`` or ``bundled:``."""
    s = str(value)
    return "/" in s or "\\" in s or s.startswith((".", "~", "$", "bundled:")) or Path(s).suffix != ""


def concept_text(name: str) -> str:
    """A concept name as text: ``ice_cream`` -> ``ice cream``, ``dog.n.01`` -> ``dog``."""
    m = _SYNSET.match(name)
    if m:
        name = m.group(1)
    return " ".join(name.replace("_", " ").split())


def relation_words(name: str) -> str:
    """A relation name as words: ``part_of`` -> ``part of``, ``AtLocation`` -> ``at location``,
    ``/r/HasA`` -> ``has a``."""
    if name.startswith("/r/"):
        name = name[3:]
    return " ".join(_SEPARATORS.sub(" ", _CAMEL.sub(" ", name)).lower().split())


def _relation_key(name: str) -> str:
    if name.startswith("/r/"):
        name = name[3:]
    return name.strip("/").lower()


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _resolve_file(value: _PathLike, base_dir: _PathLike | None) -> Path:
    p = Path(os.path.expandvars(str(value))).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return p


# --------------------------------------------------------------------------- templates
def template_preset_names() -> list[str]:
    """Names of the template presets shipped in ``kgfuse/kg/presets`` (``kind`` = ``relation_templates``)."""
    out = []
    for p in resources.files(__package__).joinpath("presets").iterdir():
        if p.name.endswith(".json"):
            try:
                if json.loads(p.read_text("utf-8")).get("kind") == "relation_templates":
                    out.append(p.name[:-5])
            except (OSError, ValueError):
                continue
    return sorted(out)


class RelationTemplates:
    """Sentence templates per relation name.

    A template is a string with ``{head}`` and ``{tail}``: ``"{head} is found at {tail}"``.
    :meth:`render` looks a relation up by its name compared in lower case (``/r/`` removed);
    a relation ``inverse_prefix + name`` without a template of its own uses the template of
    ``name`` with head and tail swapped; any other relation gets
    ``"{head} <relation words> {tail}"`` (:func:`relation_words`).

    Args:
        templates: relation name -> template.
        inverse_prefix: prefix of inverse relation names (the loaders' ``_``); ``""`` for none.
        name: label recorded in :attr:`config`.

    Use :meth:`load` for a preset name or a JSON file.
    """

    def __init__(self, templates: Mapping[str, str], *, inverse_prefix: str = "_", name: str = "custom") -> None:
        table: dict[str, str] = {}
        for k, v in templates.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError(f"relation templates must map names to strings, got {k!r} -> {v!r}")
            if "{head}" not in v or "{tail}" not in v:
                raise ValueError(f"the template of relation {k!r} must contain {{head}} and {{tail}}, got {v!r}")
            table[_relation_key(k)] = v
        self._table = table
        self.inverse_prefix = str(inverse_prefix or "")
        self.name = name

    @classmethod
    def load(cls, spec: "str | os.PathLike | Mapping[str, Any] | RelationTemplates" = DEFAULT_TEMPLATES, *,
             base_dir: _PathLike | None = None) -> "RelationTemplates":
        """Templates from a preset name (:func:`template_preset_names`), a JSON file, a dict or
        an instance (returned as is).

        A file or dict is either ``{"templates": {relation: template}, "inverse_prefix": "_"}``
        (the preset format) or a plain ``{relation: template}`` mapping. A relative path is
        resolved against ``base_dir``.
        """
        if isinstance(spec, RelationTemplates):
            return spec
        if isinstance(spec, Mapping):
            return cls._from_json(spec, str(spec.get("name", "custom")) if "templates" in spec else "custom")
        s = str(spec)
        if is_path_like(s):
            path = _resolve_file(s, base_dir)
            if not path.is_file():
                raise FileNotFoundError(f"relation template file not found: {path}")
            try:
                d = json.loads(path.read_text("utf-8"))
            except ValueError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from None
            if not isinstance(d, Mapping):
                raise ValueError(f"{path}: the top level must be a JSON object")
            return cls._from_json(d, str(path))
        try:
            text = resources.files(__package__).joinpath("presets", f"{s}.json").read_text("utf-8")
        except (FileNotFoundError, OSError):
            text = None
        d = json.loads(text) if text else None
        if not isinstance(d, Mapping) or d.get("kind") != "relation_templates":
            raise ValueError(f"unknown relation template preset {s!r}; presets: {template_preset_names()} "
                             "(or the path of a JSON file)")
        return cls._from_json(d, s)

    @classmethod
    def _from_json(cls, d: Mapping[str, Any], name: str) -> "RelationTemplates":
        if "templates" in d:
            t = d["templates"]
            if not isinstance(t, Mapping):
                raise ValueError(f"{name}: 'templates' must be an object of relation -> template")
            return cls(t, inverse_prefix=d.get("inverse_prefix", "_"), name=name)
        return cls(d, name=name)

    @property
    def templates(self) -> dict[str, str]:
        """The explicit templates (lower-case relation key -> template)."""
        return dict(self._table)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able description: name and a hash of the table."""
        return {"name": self.name, "inverse_prefix": self.inverse_prefix, "sha256": _sha(self._table)}

    def template(self, relation: str) -> tuple[str, bool]:
        """``(template, swapped)`` for a relation name; ``swapped`` means fill ``{head}`` with
        the edge's tail and ``{tail}`` with its head."""
        key = _relation_key(relation)
        t = self._table.get(key)
        if t is not None:
            return t, False
        p = self.inverse_prefix
        if p and key.startswith(p) and len(key) > len(p):
            t = self._table.get(key[len(p):])
            if t is None:
                name = relation[3:] if relation.startswith("/r/") else relation
                t = self.default(name.strip("/")[len(p):])
            return t, True
        return self.default(relation), False

    @staticmethod
    def default(relation: str) -> str:
        """The template of a relation without one: ``"{head} part of {tail}"`` for ``part_of``."""
        words = relation_words(relation)
        return f"{{head}} {words} {{tail}}" if words else "{head} {tail}"

    def render(self, head: str, relation: str, tail: str) -> str:
        """The sentence of the edge ``head --relation--> tail`` (names as :func:`concept_text`)."""
        t, swapped = self.template(relation)
        values = {"head": concept_text(tail if swapped else head), "tail": concept_text(head if swapped else tail)}
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], t)

    def __repr__(self) -> str:
        return f"RelationTemplates(name={self.name!r}, {len(self._table)} templates)"


# --------------------------------------------------------------------------- definition sources
#: name -> definition source class (:func:`register_definition_source`).
DEFINITION_SOURCES: dict[str, type] = {}
_register_definition_source = registrar(DEFINITION_SOURCES, "definition source", "source_name")


def register_definition_source(name: str) -> Callable[[type], type]:
    """Class decorator registering a definition source under ``name`` (lower-case).

    A source is called with a concept name and returns its definition text or ``None``, and
    has a JSON-able ``config`` (recorded with a trained model)::

        @register_definition_source("glossary")
        class Glossary(DefinitionSource):
            def __init__(self, path): ...
            def __call__(self, concept): return self.table.get(concept)
    """
    return _register_definition_source(name)


def definition_source_names() -> list[str]:
    """Registered definition source names, sorted."""
    return sorted(DEFINITION_SOURCES)


class DefinitionSource:
    """Base class of definition sources: ``source(concept_name) -> text | None``."""

    source_name = ""

    def __call__(self, concept: str) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def config(self) -> dict[str, Any]:
        return {"type": self.source_name}


def _lookup_key(name: str) -> str:
    return "_".join(name.strip().lower().replace("_", " ").split())


@register_definition_source("wordnet")
class WordNetDefinitions(DefinitionSource):
    """Definitions from the WordNet 3.0 database files (Miller, 1995).

    A concept named by an English lemma (``plate``, ``ice_cream``, as the ConceptNet and
    WordNet loaders name concepts) gets the first definition of its first sense (WordNet's
    most frequent one) in the part of speech where the lemma has the most senses, the
    earlier in ``pos`` on a tie (``dry``: adjective, "free from liquid or moisture"; ``cry``:
    verb; ``plate``: noun); a synset name (``plate.n.04``) gets that synset's. Senses
    come from the ``index.<pos>`` files (:func:`kgfuse.kg.loaders.wordnet_senses`), glosses from
    the ``data.<pos>`` files (:func:`kgfuse.kg.corpora.wordnet_glosses`), read once, on the
    first lookup (about 3 s).

    Args:
        path: folder with the WordNet files (default ``/usr/share/wordnet``, Debian's
            ``wordnet-base``; NLTK's ``corpora/wordnet`` works too).
        pos: parts of speech to look in (some of ``n v a r``), in tie-breaking order.
    """

    def __init__(self, path: _PathLike | None = None, *, pos: Sequence[str] = ("n", "v", "a", "r")) -> None:
        from .loaders import DEFAULT_WORDNET

        self.path = Path(path if path is not None else DEFAULT_WORDNET)
        self.pos = tuple(pos)
        self._senses: dict[tuple[str, str], list[int]] | None = None
        self._gloss: dict[tuple[str, int], str] = {}

    def load(self) -> "WordNetDefinitions":
        """Read the files now (else on the first lookup)."""
        if self._senses is None:
            from .corpora import wordnet_glosses
            from .loaders import wordnet_senses

            gloss: dict[tuple[str, int], str] = {}
            for rec in wordnet_glosses(self.path, pos=self.pos, parts=("definitions",), headword=False):
                p, off = rec.meta["synset"].split(":")
                gloss.setdefault((p, int(off)), rec.text)
            self._gloss = gloss
            self._senses = wordnet_senses(self.path, self.pos)
        return self

    def __call__(self, concept: str) -> str | None:
        senses = self.load()._senses
        assert senses is not None
        m = _SYNSET.match(concept)
        if m:
            p = "a" if m.group(2) == "s" else m.group(2)
            offs = senses.get((p, _lookup_key(m.group(1))))
            k = int(m.group(3))
            if offs and 1 <= k <= len(offs):
                return self._gloss.get((p, offs[k - 1]))
            return None
        key = _lookup_key(concept)
        found = [(p, senses[(p, key)]) for p in self.pos if senses.get((p, key))]
        for p, offs in sorted(found, key=lambda x: -len(x[1])):  # stable: pos order on ties
            d = self._gloss.get((p, offs[0]))
            if d:
                return d
        return None

    @property
    def config(self) -> dict[str, Any]:
        return {"type": "wordnet", "path": str(self.path), "pos": list(self.pos)}

    def __getstate__(self) -> dict[str, Any]:  # worker processes reload lazily
        return {"path": self.path, "pos": self.pos, "_senses": None, "_gloss": {}}


@register_definition_source("file")
class FileDefinitions(DefinitionSource):
    """A user's definitions: a JSON object ``{concept name: text}`` (``.json``) or a TSV file
    of ``name<TAB>text`` lines (any other suffix; blank lines and lines starting with ``#``
    are skipped). Names match in lower case with ``_`` and spaces alike (``Ice cream`` is
    ``ice_cream``).

    Args:
        path: the file.
        base_dir: folder a relative ``path`` is resolved against.
    """

    def __init__(self, path: _PathLike, *, base_dir: _PathLike | None = None) -> None:
        self.path = _resolve_file(path, base_dir)
        if not self.path.is_file():
            raise FileNotFoundError(f"definitions file not found: {self.path}")
        table: dict[str, str] = {}
        if self.path.suffix.lower() == ".json":
            try:
                d = json.loads(self.path.read_text("utf-8"))
            except ValueError as e:
                raise ValueError(f"{self.path}: not valid JSON ({e})") from None
            if not isinstance(d, Mapping):
                raise ValueError(f"{self.path}: the top level must be an object of concept name -> definition")
            for k, v in d.items():
                if not isinstance(v, str):
                    raise ValueError(f"{self.path}: the definition of {k!r} must be a string, got {type(v).__name__}")
                table.setdefault(_lookup_key(str(k)), " ".join(v.split()))
        else:
            for line_no, line in enumerate(self.path.read_text("utf-8").splitlines(), 1):
                if not line.strip() or line.startswith("#"):
                    continue
                name, sep, text = line.partition("\t")
                if not sep or not name.strip() or not text.strip():
                    raise ValueError(f"{self.path}, line {line_no}: expected 'name<TAB>definition', got {line[:200]!r}")
                table.setdefault(_lookup_key(name), " ".join(text.split()))
        self._table = table
        self._sha = _file_sha(self.path)

    def __call__(self, concept: str) -> str | None:
        return self._table.get(_lookup_key(concept))

    def __len__(self) -> int:
        return len(self._table)

    @property
    def config(self) -> dict[str, Any]:
        return {"type": "file", "path": str(self.path), "sha256": self._sha}


def resolve_definition_source(spec: Any, *, base_dir: _PathLike | None = None) -> Any:
    """Resolve a definition source.

    Args:
        spec: ``None`` (no definitions); a registered name (``"wordnet"``); the path of a
            definitions file (:class:`FileDefinitions`); ``{"type": name, **kwargs}``; or a
            callable ``fn(concept_name) -> str | None`` (returned as is).
        base_dir: folder relative paths are resolved against.

    Raises:
        ValueError: an unknown name (the message lists the registered ones).
    """
    if isinstance(spec, type):
        return spec()
    if spec is None or callable(spec):
        return spec
    if isinstance(spec, Mapping):
        kw = dict(spec)
        kind = str(kw.pop("type", ""))
        cls = DEFINITION_SOURCES.get(kind.lower())
        if cls is None:
            raise ValueError(f"unknown definition source type {kind!r}; valid: {definition_source_names()}")
        if cls is FileDefinitions:
            kw.setdefault("base_dir", base_dir)
            kw.pop("sha256", None)
        return cls(**kw)
    s = str(spec)
    cls = DEFINITION_SOURCES.get(s.lower())
    if cls is not None and cls is not FileDefinitions:
        return cls()
    if is_path_like(s) or _resolve_file(s, base_dir).is_file():
        return FileDefinitions(s, base_dir=base_dir)
    raise ValueError(f"unknown definition source {s!r}; valid: {[n for n in definition_source_names() if n != 'file']} "
                     "or the path of a definitions file (JSON or TSV)")


# --------------------------------------------------------------------------- verbaliser
@dataclass(frozen=True)
class Fact:
    """One graph edge ``head --relation--> tail`` (graph ids, in the graph's own direction)."""

    head: int
    relation: int
    tail: int


class Verbalizer:
    """The knowledge text of (question, choice) statements (see the module docstring).

    Args:
        graph: the graph the statements were retrieved from.
        triples: at most this many fact sentences (a direct edge or a path) per statement.
        definitions: ``"answer"`` (definitions of the answer concepts), ``"all"`` (and of the
            question concepts) or ``"none"``.
        max_tokens: token budget of the whole text (``None``: no budget).
        templates: preset name, JSON file, dict or :class:`RelationTemplates`.
        definition_source: see :func:`resolve_definition_source` (``None``: no definitions).
        tokenizer: a Hugging Face tokenizer to count tokens with (else whitespace words).
        base_dir: folder relative file paths are resolved against.

    Calling it with ``(grounding, data)`` returns the sentences (:meth:`units`); :meth:`text`
    joins them with spaces.
    """

    def __init__(self, graph: "KnowledgeGraph", *, triples: int = 5, definitions: str = "answer",
                 max_tokens: int | None = 64, templates: Any = DEFAULT_TEMPLATES, definition_source: Any = "wordnet",
                 tokenizer: Any = None, base_dir: _PathLike | None = None) -> None:
        if int(triples) < 0:
            raise ValueError(f"triples must be >= 0, got {triples}")
        if definitions not in DEFINITION_MODES:
            raise ValueError(f"definitions must be one of {list(DEFINITION_MODES)}, got {definitions!r}")
        if max_tokens is not None and int(max_tokens) < 1:
            raise ValueError(f"max_tokens must be >= 1 or None, got {max_tokens}")
        self.graph = graph
        self.triples = int(triples)
        self.definitions = definitions
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self.templates = RelationTemplates.load(templates, base_dir=base_dir)
        self.source = resolve_definition_source(definition_source, base_dir=base_dir) if definitions != "none" else None
        self.tokenizer = tokenizer
        self._edge_key: np.ndarray | None = None

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able description of everything that decides the text."""
        src = self.source
        return {
            "version": 1,
            "triples": self.triples,
            "definitions": self.definitions,
            "max_tokens": self.max_tokens,
            "templates": self.templates.config,
            "definition_source": None if src is None else dict(getattr(src, "config", {"type": _callable_name(src)})),
            "counter": "tokenizer" if self.tokenizer is not None else "words",
        }

    # ------------------------------------------------------------------ facts
    def candidate_paths(self, grounding: "Grounding", data: Any) -> list[tuple[Fact, ...]]:
        """Every question-answer path of ``data`` as facts, ranked best first (not de-duplicated)."""
        if data is None or int(getattr(data, "num_nodes", 0) or 0) == 0:
            return []
        cids = data.concept_ids.tolist()
        R = self.graph.num_relations
        cands: list[tuple[Fact, ...]] = []
        paths = getattr(data, "paths", None)
        if paths is not None:
            for nodes, rels, L in zip(paths.tolist(), data.path_rels.tolist(), data.path_len.tolist()):
                facts = []
                for k in range(int(L)):
                    u, v, r = cids[nodes[k]], cids[nodes[k + 1]], int(rels[k])
                    facts.append(Fact(u, r, v) if r < R else Fact(v, r - R, u))
                if facts:
                    cands.append(tuple(facts))
        else:
            cands = self._subgraph_paths(data, cids)
        if not cands:
            return []
        weight = self._path_weights(cands)
        order = sorted(range(len(cands)), key=lambda i: (len(cands[i]), -weight[i], i))
        return [cands[i] for i in order]

    @staticmethod
    def _subgraph_paths(data: Any, cids: list[int]) -> list[tuple[Fact, ...]]:
        """Direct question-answer edges, then ``q - x - a`` edge pairs through other nodes."""
        from .retrieval import NODE_ANSWER, NODE_QUESTION

        ntype = data.node_type.tolist()
        ei = data.edge_index.t().tolist() if getattr(data, "edge_index", None) is not None else []
        et = data.edge_type.tolist() if getattr(data, "edge_type", None) is not None else []
        direct: list[tuple[Fact, ...]] = []
        to_q: dict[int, list[Fact]] = {}
        to_a: dict[int, list[Fact]] = {}
        for (h, t), r in zip(ei, et):
            f = Fact(cids[h], int(r), cids[t])
            th, tt = ntype[h], ntype[t]
            if {th, tt} == {NODE_QUESTION, NODE_ANSWER}:
                direct.append((f,))
            elif th == NODE_QUESTION and tt not in (NODE_QUESTION, NODE_ANSWER):
                to_q.setdefault(t, []).append(f)
            elif tt == NODE_QUESTION and th not in (NODE_QUESTION, NODE_ANSWER):
                to_q.setdefault(h, []).append(f)
            elif th == NODE_ANSWER and tt not in (NODE_QUESTION, NODE_ANSWER):
                to_a.setdefault(t, []).append(f)
            elif tt == NODE_ANSWER and th not in (NODE_QUESTION, NODE_ANSWER):
                to_a.setdefault(h, []).append(f)
        two = [(f1, f2) for x in sorted(to_q) if x in to_a for f1 in to_q[x] for f2 in to_a[x]]
        return direct + two

    def _path_weights(self, cands: Sequence[tuple[Fact, ...]]) -> list[float]:
        """Smallest edge weight along each path (0 for an edge not in the graph)."""
        g = self.graph
        if self._edge_key is None:
            N, R = np.int64(max(g.num_concepts, 1)), np.int64(max(g.num_relations, 1))
            self._edge_key = (np.asarray(g.head, np.int64) * R + np.asarray(g.relation, np.int64)) * N + np.asarray(g.tail, np.int64)
        key = self._edge_key
        N, R = np.int64(max(g.num_concepts, 1)), np.int64(max(g.num_relations, 1))
        flat = [f for p in cands for f in p]
        q = (np.fromiter((f.head for f in flat), np.int64, len(flat)) * R
             + np.fromiter((f.relation for f in flat), np.int64, len(flat))) * N + np.fromiter((f.tail for f in flat), np.int64, len(flat))
        if key.size == 0:
            w = np.zeros(len(flat), np.float64)
        else:
            pos = np.minimum(np.searchsorted(key, q), key.size - 1)
            w = np.where(key[pos] == q, np.asarray(g.weight, np.float64)[pos], 0.0)
        out, i = [], 0
        for p in cands:
            out.append(float(w[i:i + len(p)].min()))
            i += len(p)
        return out

    def render_fact(self, fact: Fact) -> str:
        """``plate is found at cupboard``."""
        g = self.graph
        return self.templates.render(g.concept_name(fact.head), g.relation_name(fact.relation), g.concept_name(fact.tail))

    def fact_sentences(self, grounding: "Grounding", data: Any) -> list[str]:
        """The ``triples`` best fact sentences, de-duplicated, each ending with ``.``."""
        if self.triples == 0:
            return []
        out: list[str] = []
        said_facts: set[str] = set()
        said: set[str] = set()
        rendered: dict[Fact, str] = {}
        for path in self.candidate_paths(grounding, data):
            parts = []
            for f in path:
                s = rendered.get(f)
                if s is None:
                    s = rendered[f] = self.render_fact(f)
                parts.append(s)
            sentence = ", ".join(parts) + "."
            if sentence in said or all(p in said_facts for p in parts):
                continue
            said.add(sentence)
            said_facts.update(parts)
            out.append(sentence)
            if len(out) >= self.triples:
                break
        return out

    def definition_sentences(self, concepts: Iterable[int]) -> list[str]:
        """``"<concept>: <definition>."`` for each concept with a definition (in order, once each)."""
        if self.source is None:
            return []
        out: list[str] = []
        for c in dict.fromkeys(int(c) for c in concepts):
            name = self.graph.concept_name(c)
            d = self.source(name)
            if not d:
                continue
            d = " ".join(str(d).split()).rstrip(" .;")
            if d:
                out.append(f"{concept_text(name)}: {d}.")
        return out

    # ------------------------------------------------------------------ text
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text: the tokenizer's (no special tokens) or whitespace words."""
        if not texts:
            return []
        if self.tokenizer is None:
            return [len(t.split()) for t in texts]
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(x) for x in ids]

    def tagged_units(self, grounding: "Grounding", data: Any) -> list[tuple[str, str]]:
        """``(kind, sentence)`` of each knowledge sentence of one statement, in input order,
        within ``max_tokens``; ``kind`` is ``"definition"`` or ``"fact"``."""
        answer = list(grounding.answer_concepts) if grounding is not None else []
        question = list(grounding.question_concepts) if grounding is not None else []
        cand: list[tuple[str, str]] = []
        if self.definitions in ("answer", "all"):
            cand += [("definition", s) for s in self.definition_sentences(answer)]
        cand += [("fact", s) for s in self.fact_sentences(grounding, data)]
        if self.definitions == "all":
            in_answer = set(answer)
            cand += [("definition", s) for s in self.definition_sentences(c for c in question if c not in in_answer)]
        seen: set[str] = set()
        cand = [(k, s) for k, s in cand if not (s in seen or seen.add(s))]
        if self.max_tokens is None:
            return cand
        out, used = [], 0
        for unit, n in zip(cand, self.count_tokens([s for _, s in cand])):
            if used + n <= self.max_tokens:
                out.append(unit)
                used += n
        return out

    def units(self, grounding: "Grounding", data: Any) -> list[str]:
        """The knowledge sentences of one statement, in input order, within ``max_tokens``."""
        return [s for _, s in self.tagged_units(grounding, data)]

    __call__ = units

    def text(self, grounding: "Grounding", data: Any) -> str:
        """:meth:`units` joined by spaces (``""`` when there is no knowledge)."""
        return " ".join(self.units(grounding, data))

    def __repr__(self) -> str:
        return (f"Verbalizer(triples={self.triples}, definitions={self.definitions!r}, max_tokens={self.max_tokens}, "
                f"templates={self.templates.name!r})")


class VerbalizerPart:
    """One kind of a verbaliser's sentences: exactly those of ``verbalizer``'s text that are of
    ``kind`` (``"fact"`` or ``"definition"``), the others left out and nothing added in their
    place (the budget is not refilled). A test-time ablation of a model trained with both
    kinds: which of the sentences it saw does it draw on? Called like a
    :class:`Verbalizer`."""

    KINDS = ("fact", "definition")

    def __init__(self, verbalizer: Verbalizer, kind: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {list(self.KINDS)}, got {kind!r}")
        self.verbalizer = verbalizer
        self.kind = kind

    def units(self, grounding: "Grounding", data: Any) -> list[str]:
        return [s for k, s in self.verbalizer.tagged_units(grounding, data) if k == self.kind]

    __call__ = units

    def text(self, grounding: "Grounding", data: Any) -> str:
        return " ".join(self.units(grounding, data))

    def __repr__(self) -> str:
        return f"VerbalizerPart({self.verbalizer!r}, kind={self.kind!r})"


def _callable_name(fn: Any) -> str:
    mod = getattr(fn, "__module__", type(fn).__module__)
    qual = getattr(fn, "__qualname__", type(fn).__qualname__)
    return f"{mod}.{qual}"
