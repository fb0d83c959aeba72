"""The ``"kgfuse_linker"`` spaCy pipeline component.

Importing this module registers the factory (it imports spaCy; :mod:`kgfuse.kg.linking`
does not, so that groundings can be read without spaCy). Constructing an
:class:`~kgfuse.kg.EntityLinker` imports it too.

>>> import spacy, kgfuse.kg.spacy_component  # registers "kgfuse_linker"
>>> nlp = spacy.blank("en")
>>> linker = nlp.add_pipe("kgfuse_linker", config={"graph_path": "path/to/compiled_graph"})
>>> doc = nlp("Where do children keep running shoes?")
>>> [(s.text, s.label_, s._.kg_concept) for s in doc.spans["kgfuse_concepts"]]

Without a compiled graph on disk, add the component with no ``graph_path`` and hand it a
graph at run time: ``linker.set_graph(kg)``.

The component writes a span group ``doc.spans[spans_key]`` (default ``"kgfuse_concepts"``):
one span per mention, ``span.label_`` = concept name, ``span.kb_id_`` = concept id as a
string, and the extension ``span._.kg_concept`` = concept id as an int.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from spacy.language import Language
from spacy.tokens import Doc, Span

from .linking import EntityLinker, Mention

__all__ = ["KGFuseLinkerComponent", "make_kgfuse_linker", "SPANS_KEY"]

SPANS_KEY = "kgfuse_concepts"

if not Span.has_extension("kg_concept"):
    Span.set_extension("kg_concept", getter=lambda span: int(span.kb_id_) if span.kb_id_ else None)


class KGFuseLinkerComponent:
    """Pipeline component wrapping an :class:`~kgfuse.kg.EntityLinker`.

    Args:
        nlp: the pipeline (its tokenizer and, if present, its lemmatizer are used).
        name: component name.
        graph_path: a compiled graph directory (:meth:`KnowledgeGraph.load`), or ``None``
            to :meth:`set_graph` later.
        spans_key: span group to write.
        max_words, blacklist, mhgrn_filters, drop_stopword_concepts, prefer: as for
            :class:`~kgfuse.kg.EntityLinker`.
    """

    def __init__(
        self,
        nlp: Language,
        name: str = "kgfuse_linker",
        *,
        graph_path: Optional[str] = None,
        spans_key: str = SPANS_KEY,
        max_words: int = 4,
        blacklist: Iterable[str] = (),
        mhgrn_filters: bool = True,
        drop_stopword_concepts: bool = True,
        prefer: str = "surface",
    ) -> None:
        self.nlp = nlp
        self.name = name
        self.spans_key = spans_key
        self.linker_kwargs = dict(
            max_words=max_words,
            blacklist=tuple(blacklist),
            mhgrn_filters=mhgrn_filters,
            drop_stopword_concepts=drop_stopword_concepts,
            prefer=prefer,
        )
        self.linker: EntityLinker | None = None
        self.graph_path = graph_path
        if graph_path is not None:
            from .graph import KnowledgeGraph

            self.set_graph(KnowledgeGraph.load(graph_path))

    def set_graph(self, graph: Any) -> "KGFuseLinkerComponent":
        """Use ``graph`` (a :class:`~kgfuse.kg.KnowledgeGraph`) from now on."""
        self.linker = EntityLinker(graph, self.nlp, **self.linker_kwargs)
        return self

    @property
    def graph(self):
        return None if self.linker is None else self.linker.graph

    def mentions(self, doc: Doc) -> list[Mention]:
        if self.linker is None:
            raise RuntimeError(
                f"spaCy component {self.name!r} has no graph: add it with "
                "config={'graph_path': <compiled graph directory>} or call .set_graph(kg)"
            )
        return self.linker.link_doc(doc, "question")

    def __call__(self, doc: Doc) -> Doc:
        graph = self.linker.graph if self.linker is not None else None
        spans = []
        for m in self.mentions(doc):
            span = doc.char_span(m.start, m.end, label=graph.concept_name(m.concept), kb_id=str(m.concept))
            if span is not None:  # always aligned: mentions are token spans of this doc
                spans.append(span)
        doc.spans[self.spans_key] = spans
        return doc


@Language.factory(
    "kgfuse_linker",
    default_config={
        "graph_path": None,
        "spans_key": SPANS_KEY,
        "max_words": 4,
        "blacklist": [],
        "mhgrn_filters": True,
        "drop_stopword_concepts": True,
        "prefer": "surface",
    },
)
def make_kgfuse_linker(
    nlp: Language,
    name: str,
    graph_path: Optional[str],
    spans_key: str,
    max_words: int,
    blacklist: list,
    mhgrn_filters: bool,
    drop_stopword_concepts: bool,
    prefer: str,
) -> KGFuseLinkerComponent:
    """Factory of the ``"kgfuse_linker"`` component (config is JSON/config serialisable)."""
    return KGFuseLinkerComponent(
        nlp,
        name,
        graph_path=graph_path,
        spans_key=spans_key,
        max_words=max_words,
        blacklist=blacklist,
        mhgrn_filters=mhgrn_filters,
        drop_stopword_concepts=drop_stopword_concepts,
        prefer=prefer,
    )
