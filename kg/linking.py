"""Entity linking: ground spans of a question and an answer choice to concepts of a graph.

The linker follows the grounding of KagNet (Lin et al., 2019) and MHGRN (Feng et al., 2020):
every concept name of the graph becomes a pattern (underscores read as spaces, lemmatised),
the text is tokenised and lemmatised with spaCy, and the pattern set is matched against the
token n-grams. kgfuse keeps the **longest non-overlapping** matches and reports each with its
exact character span, so that downstream code can align it to sub-word tokens.

Matching is "spaCy tokenisation + lemmatisation, then an n-gram dictionary lookup": for
every token n-gram (``n`` up to the longest allowed concept, in tokens) the linker builds

- the *surface key*: the lower-cased tokens, joined by ``_`` where the text had whitespace
  and by nothing where it had none (``"T-shirt"`` -> ``t-shirt``, ``"running shoes"`` ->
  ``running_shoes``), which is exactly how ConceptNet names its concepts;
- the *lemma key*: the same with each token replaced by its lemma (``run_shoe``).

A key is looked up in the graph's own name index (no copy of 800k names) and in a small
dictionary from the lemma key of every concept whose name is not already its own lemma
form (``running_shoes`` -> ``run_shoe``). Building the linker for ~800k ConceptNet names
takes a few seconds (see docs/benchmarks.md); spaCy's ``PhraseMatcher`` would need a Doc per
pattern.

MHGRN's pattern filters are applied to concept names (``mhgrn_filters=True``): concepts of
more than ``max_words`` words, concepts whose first or last word is a pronoun, concepts made
only of stopwords (NLTK's English list) or blacklisted lemmas, and MHGRN's blacklist
(``make``, ``want``, ``one``...). With ``drop_stopword_concepts=True`` (MHGRN's ``prune``
step), concepts that contain any stopword are dropped too, before matching, so that
``in the house`` falls back to ``house`` instead of being linked then discarded.

The spaCy pipeline component ``"kgfuse_linker"`` lives in :mod:`kgfuse.kg.spacy_component`
(importing this module does not import spaCy, so groundings can be read without it), the
pattern cache in :mod:`kgfuse.kg.pattern_cache`. The rest is one module because building the
pattern index, matching n-grams against it and the linker's config (the cache key) are one
algorithm over one index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from ..fingerprint import source_fingerprint
from .pattern_cache import (  # noqa: F401  (importable from here as before)
    PATTERN_CACHE_FORMAT,
    PATTERN_CACHE_MIN_CONCEPTS,
    PatternCacheError,
    _digest,
    _pack_keys,
    _read_patterns,
    _spacy_version,
    _unpack_keys,
    _write_patterns,
    default_pattern_cache_dir,
)

if TYPE_CHECKING:  # pragma: no cover
    from spacy.language import Language
    from spacy.tokens import Doc

    from .graph import KnowledgeGraph

__all__ = [
    "Mention",
    "Grounding",
    "EntityLinker",
    "NLTK_STOPWORDS",
    "PRONOUNS",
    "MHGRN_BLACKLIST",
    "default_nlp",
    "default_pattern_cache_dir",
    "PatternCacheError",
]

SOURCES = ("question", "choice")

#: NLTK's English stopword list (179 words), the list MHGRN filters concepts with.
NLTK_STOPWORDS = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them their
    theirs themselves what which who whom this that that'll these those am is are was were be
    been being have has had having do does did doing a an the and but if or because as until
    while of at by for with about against between into through during before after above below
    to from up down in out on off over under again further then once here there when where why
    how all any both each few more most other some such no nor not only own same so than too
    very s t can will just don don't should should've now d ll m o re ve y ain aren aren't
    couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
    mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't weren
    weren't won won't wouldn wouldn't""".split()
)

#: Pronouns that may not begin or end a concept (MHGRN ``create_pattern``).
PRONOUNS = frozenset("my you it its your i he she his her they them their our we".split())

#: MHGRN's blacklist of uninformative concepts and lemmas.
MHGRN_BLACKLIST = frozenset(
    [
        "-PRON-", "actually", "likely", "possibly", "want", "make", "my", "someone",
        "sometimes_people", "sometimes", "would", "want_to", "one", "something",
        "everybody", "somebody", "could", "could_be",
    ]
)

_SIMPLE_WORD = re.compile(r"[a-z]+\Z")

logger = logging.getLogger(__name__)

#: ``nlp`` part of :attr:`EntityLinker.config` for the default pipeline (:func:`default_nlp`),
#: known without building it.
_DEFAULT_NLP_META = {"lang": "en", "name": "pipeline", "version": "0.0.0", "pipeline": ["lemmatizer"]}

#: Name/text normalisation policies of :class:`EntityLinker` (``normalize=``): what is
#: dropped before names and text are compared. Recorded in the linker's config, hence in
#: every preprocessing cache key and in a saved pipeline.
NORMALIZERS: dict[str, dict[str, bool]] = {
    "lemma": {"drop_stopwords": False},
    "conceptnet4": {"drop_stopwords": True},
}


# --------------------------------------------------------------------------- data classes
@dataclass(frozen=True)
class Mention:
    """A span of a source text linked to one concept.

    Attributes:
        start, end: character offsets into the source text; ``text == source_text[start:end]``.
        text: the mentioned text, as written.
        concept: concept id in the linker's graph.
        source: ``"question"`` or ``"choice"``.
    """

    start: int
    end: int
    text: str
    concept: int
    source: str = "question"

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "concept": self.concept, "source": self.source}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Mention":
        try:
            return cls(int(d["start"]), int(d["end"]), str(d["text"]), int(d["concept"]), str(d["source"]))
        except KeyError as e:
            raise ValueError(f"mention record lacks field {e.args[0]!r}: {dict(d)!r}") from None


@dataclass
class Grounding:
    """Concepts of one (question, choice) pair.

    Attributes:
        question_concepts: concept ids mentioned in the question and not among the answer
            concepts, in order of first mention.
        answer_concepts: concept ids of the choice, in order of first mention.
        mentions: question mentions, then choice mentions (offsets into their own text).
    """

    question_concepts: list[int] = field(default_factory=list)
    answer_concepts: list[int] = field(default_factory=list)
    mentions: list[Mention] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; :meth:`from_dict` reverses it."""
        return {
            "question_concepts": [int(c) for c in self.question_concepts],
            "answer_concepts": [int(c) for c in self.answer_concepts],
            "mentions": [m.to_dict() for m in self.mentions],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Grounding":
        for key in ("question_concepts", "answer_concepts", "mentions"):
            if key not in d:
                raise ValueError(f"grounding record lacks field {key!r}")
        return cls(
            [int(c) for c in d["question_concepts"]],
            [int(c) for c in d["answer_concepts"]],
            [Mention.from_dict(m) for m in d["mentions"]],
        )

    def describe(self, graph: "KnowledgeGraph") -> str:
        """One line per mention: ``source [start:end] 'text' -> concept``."""
        return "\n".join(
            f"{m.source} [{m.start}:{m.end}] {m.text!r} -> {graph.concept_name(m.concept)}" for m in self.mentions
        )


# --------------------------------------------------------------------------- spaCy helpers
def default_nlp() -> "Language":
    """``spacy.blank("en")`` with spaCy's lookup lemmatizer (tables from spacy-lookups-data).

    No model is downloaded; the tables ship in the ``spacy-lookups-data`` package.
    """
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    return nlp


def _lookup_table(nlp: "Language"):
    """The English ``lemma_lookup`` table: from ``nlp``'s lookup lemmatizer when it has one,
    else from spacy-lookups-data."""
    if nlp.has_pipe("lemmatizer"):
        lem = nlp.get_pipe("lemmatizer")
        lookups = getattr(lem, "lookups", None)
        if lookups is not None and lookups.has_table("lemma_lookup"):
            return lookups.get_table("lemma_lookup")
    from spacy.lookups import load_lookups

    try:
        return load_lookups("en", ["lemma_lookup"]).get_table("lemma_lookup")
    except Exception as e:  # pragma: no cover - depends on installation
        raise RuntimeError(
            "spaCy's English lemma lookup table is missing; install it with "
            "`pip install spacy-lookups-data`"
        ) from e


def _norm_name(name: str) -> str:
    """Concept name -> surface key: lower case, whitespace runs become ``_``."""
    return "_".join(name.lower().replace("_", " ").split())


# --------------------------------------------------------------------------- pattern cache
#: Attributes of the pattern index, created on first use (see ``EntityLinker._ensure``).
_INDEX_ATTRS = frozenset(
    ["_allowed_mask", "_surface_extra", "_lemma_index", "_max_tokens", "_names", "_rules", "_num_patterns"]
)


# --------------------------------------------------------------------------- the linker
class EntityLinker:
    """Link text spans to the concepts of a :class:`~kgfuse.kg.KnowledgeGraph`.

    Args:
        graph: the knowledge graph; its concept names are the patterns.
        nlp: a spaCy pipeline used to tokenise (and, when it has a lemmatizer, to lemmatise)
            the text. Default: :func:`default_nlp` (``spacy.blank("en")`` + lookup
            lemmatizer), run as tokenizer + table lookup on lower-cased tokens.
        blacklist: concept names (or lemmas) never linked, on top of MHGRN's.
        max_words: concepts with more words are not patterns (MHGRN: 4).
        mhgrn_filters: apply MHGRN's pattern filters (pronoun at either end, stopword-only,
            :data:`MHGRN_BLACKLIST`). ``max_words`` and ``blacklist`` apply regardless.
        drop_stopword_concepts: drop concepts that contain any stopword (MHGRN's ``prune``).
        prefer: when a span's surface form and its lemma form are both concepts
            (``children`` and ``child``), link ``"surface"`` (default; exact names win) or
            ``"lemma"``.
        answer_fallback: when the choice matches nothing, try the whole choice as one
            concept (surface, then lemma form), then its single words (MHGRN's
            ``hard_ground``).
        cache_size: questions linked once are remembered (a question is shared by all
            its choices).
        normalize: how concept names and text are put in the same form, applied identically
            to both. ``"lemma"`` (default): lower case and lemmas, every token kept.
            ``"conceptnet4"``: also drop stopwords (NLTK's list), as ConceptNet 4 names its
            concepts (``dine room`` for "dining room", ``glass water`` for "a glass of
            water"); a mention may then span stopwords inside it ("glass of water") but
            never starts or ends on one. See :data:`NORMALIZERS`.
        pattern_cache: where the pattern index (built from every concept name: seconds on
            ConceptNet) is kept between processes: ``"auto"`` (default) the default folder
            (:func:`default_pattern_cache_dir`, ``$KGFUSE_HOME/cache/linker``) for graphs of
            at least :data:`PATTERN_CACHE_MIN_CONCEPTS` concepts, ``True`` that folder always,
            a folder, or ``False`` (never). Files are ``<key>.npz`` with ``key`` a hash of
            the graph's content hash and :attr:`config` (spaCy and spacy-lookups-data
            versions included); each is verified on read (SHA-256 of its arrays, key, shapes),
            and a damaged one is rebuilt and replaced with a warning. Not used with a
            user-given ``nlp`` (its tokenizer is not part of the key).

    The spaCy pipeline and the pattern index are created on first use (linking), not in
    the constructor: a linker whose groundings all come from a cache costs nothing.

    Example:
        >>> linker = EntityLinker(kg)
        >>> linker.link("Where do children keep running shoes?")
        [Mention(start=9, end=17, text='children', concept=..., source='question'), ...]
    """

    def __init__(
        self,
        graph: "KnowledgeGraph",
        nlp: "Language | None" = None,
        *,
        blacklist: Iterable[str] = (),
        max_words: int = 4,
        mhgrn_filters: bool = True,
        drop_stopword_concepts: bool = True,
        prefer: str = "surface",
        answer_fallback: bool = True,
        cache_size: int = 4096,
        normalize: str = "lemma",
        pattern_cache: str | os.PathLike | bool = "auto",
    ) -> None:
        if normalize not in NORMALIZERS:
            raise ValueError(f"normalize must be one of {list(NORMALIZERS)}, not {normalize!r}")
        if prefer not in ("surface", "lemma"):
            raise ValueError(f"prefer must be 'surface' or 'lemma', not {prefer!r}")
        if max_words < 1:
            raise ValueError(f"max_words must be >= 1, got {max_words}")
        self.graph = graph
        self._user_nlp = nlp is not None
        self._nlp = nlp
        self._table_obj = None
        self.max_words = int(max_words)
        if isinstance(blacklist, (str, bytes)):
            raise TypeError(f"blacklist must be a list of concept names, not the string {blacklist!r} "
                            f"(write [{blacklist!r}] for one name)")
        self.blacklist = frozenset(blacklist)
        self.mhgrn_filters = bool(mhgrn_filters)
        self.drop_stopword_concepts = bool(drop_stopword_concepts)
        self.prefer = prefer
        self.answer_fallback = bool(answer_fallback)
        self.normalize = normalize
        self._drop_stop = NORMALIZERS[normalize]["drop_stopwords"]
        self._cache_size = int(cache_size)
        self._cache: dict[tuple[str, str], list[Mention]] = {}
        if pattern_cache is not True and pattern_cache is not False and pattern_cache != "auto":
            pattern_cache = Path(pattern_cache)
        self.pattern_cache = pattern_cache
        #: how the patterns were obtained: ``None`` (not yet: they are built on first use),
        #: ``"built"`` or ``"cache"`` (read from :attr:`pattern_cache_path`)
        self.patterns_source: str | None = None
        if self._user_nlp:
            from . import spacy_component  # noqa: F401  (registers the "kgfuse_linker" factory)

    # ------------------------------------------------------------------ lazy parts
    @property
    def nlp(self) -> "Language":
        """The spaCy pipeline (the default one is created on first use)."""
        if self._nlp is None:
            self._nlp = default_nlp()
            from . import spacy_component  # noqa: F401  (registers the "kgfuse_linker" factory)
        return self._nlp

    @property
    def _table(self):
        if self._table_obj is None:
            self._table_obj = _lookup_table(self.nlp)
        return self._table_obj

    @property
    def is_built(self) -> bool:
        """Whether the pattern index exists (it is built, or read from the pattern cache, the
        first time something is linked)."""
        return self.patterns_source is not None

    def build(self) -> "EntityLinker":
        """Create the spaCy pipeline and the pattern index now (e.g. before worker processes
        fork, so that they share them); otherwise the first link does."""
        self._ensure()
        return self

    def _ensure(self) -> None:
        if self.patterns_source is None:
            self._load_or_build()

    def __getattr__(self, name: str) -> Any:
        # the pattern index (``_allowed_mask``, ``_lemma_index``, ...) appears on first use
        if name in _INDEX_ATTRS and "patterns_source" in self.__dict__ and self.patterns_source is None:
            self._load_or_build()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def pattern_cache_path(self) -> Path | None:
        """``<folder>/<key>.npz`` where the patterns are cached, or ``None`` (no cache: disabled,
        a user-given spaCy pipeline, or ``"auto"`` on a small graph)."""
        pc = self.pattern_cache
        if pc is False or self._user_nlp:
            return None
        if pc == "auto" and self.graph.num_concepts < PATTERN_CACHE_MIN_CONCEPTS:
            return None
        folder = default_pattern_cache_dir() if pc in (True, "auto") else Path(pc)
        return folder / f"{self._pattern_key()}.npz"

    def _pattern_key(self) -> str:
        blob = json.dumps({"format": PATTERN_CACHE_FORMAT, "code": source_fingerprint("kgfuse.kg"),
                           "graph": self.graph.hash, "linker": self.config}, sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]

    def _load_or_build(self) -> None:
        path = self.pattern_cache_path
        if path is not None and path.is_file():
            try:
                self._set_index(_read_patterns(path, self._pattern_key(), self.graph.num_concepts))
                self.patterns_source = "cache"
                return
            except PatternCacheError as e:
                logger.warning("%s; rebuilding it", e)
        self._build()
        self.patterns_source = "built"
        if path is not None:
            try:
                _write_patterns(path, self._pattern_key(), self._index_arrays())
            except (OSError, ValueError) as e:  # a read-only or full disk: link without the cache
                logger.warning("linker pattern cache %s not written: %s", path, e)

    def _set_index(self, idx: Mapping[str, Any]) -> None:
        self._allowed_mask = idx["allowed"]
        self._surface_extra = idx["surface_extra"]
        self._lemma_index = idx["lemma_index"]
        self._max_tokens = int(idx["max_tokens"])
        self._rules = getattr(self.nlp.tokenizer, "rules", None) or {}
        self._names = self.graph._names()
        self._num_patterns = int(self._allowed_mask.sum())

    def _index_arrays(self) -> dict[str, Any]:
        return {"allowed": self._allowed_mask, "surface_extra": self._surface_extra,
                "lemma_index": self._lemma_index, "max_tokens": self._max_tokens}

    @property
    def num_patterns(self) -> int:
        """Concepts that can be linked (builds the pattern index if needed)."""
        self._ensure()
        return self._num_patterns

    # ------------------------------------------------------------------ building
    def _lemma(self, word: str) -> str:
        return self._table.get(word, word)

    def _name_tokens(self, norm: str) -> tuple[list[str], list[str], list[bool]] | None:
        """Tokens of a normalised name as the tokenizer sees them: (lower texts, lemmas,
        whitespace-after flags)."""
        words = norm.split("_")
        rules = self._rules
        if all(_SIMPLE_WORD.match(w) and w not in rules for w in words):
            return words, [self._lemma(w) for w in words], [True] * (len(words) - 1) + [False]
        doc = self.nlp.make_doc(norm.replace("_", " "))
        if any(t.is_space for t in doc):
            return None
        low = [t.lower_ for t in doc]
        return low, [self._lemma(w) for w in low], [bool(t.whitespace_) for t in doc]

    def _build(self) -> None:
        """Compute the allowed-concept mask, the lemma index and the longest pattern."""
        g = self.graph
        self._rules = getattr(self.nlp.tokenizer, "rules", None) or {}
        names = g.concepts
        n = len(names)
        allowed = np.zeros(n, dtype=bool)
        surface_extra: dict[str, int] = {}  # normalised name -> id, when it differs from the name
        lemma_index: dict[str, tuple[int, int]] = {}  # lemma key -> (name length, id)
        max_tokens = 1
        max_words = self.max_words
        lemma = self._table.get
        stop, pron = NLTK_STOPWORDS, PRONOUNS
        simple = _SIMPLE_WORD.match
        rules = self._rules
        mhgrn, drop_stop, bl = self.mhgrn_filters, self.drop_stopword_concepts, self.blacklist
        if self._drop_stop:
            # names that still hold a stopword can never equal a stopword-free text key
            drop_stop = True
        for i, name in enumerate(names):
            norm = name if (name.islower() and " " not in name and "__" not in name) else _norm_name(name)
            words = norm.split("_")
            if not norm or len(words) > max_words or norm in bl:
                continue
            # Cheap MHGRN checks on words first (no lemmatisation needed).
            if mhgrn and (norm in MHGRN_BLACKLIST or words[0] in pron or words[-1] in pron):
                continue
            if drop_stop and any(w in stop for w in words):
                continue
            if all(simple(w) and w not in rules for w in words):
                lems = [lemma(w, w) for w in words]
                seps = None
            else:
                toks = self._name_tokens(norm)
                if toks is None:
                    continue
                _, lems, ws = toks
                seps = ws
            if mhgrn and all(
                (w in stop or l in stop or l in MHGRN_BLACKLIST or l in bl)
                for w, l in zip(words if seps is None else lems, lems)
            ):
                continue
            if seps is None:
                lkey = "_".join(lems)
                ntok = len(words)
            else:
                lkey = "".join(l + ("_" if s else "") for l, s in zip(lems, seps))
                ntok = len(lems)
            allowed[i] = True
            if ntok > max_tokens:
                max_tokens = ntok
            if norm != name:
                prev = surface_extra.get(norm)
                if prev is None:
                    surface_extra[norm] = i
            if lkey != norm:
                cand = (len(norm), i)
                prev2 = lemma_index.get(lkey)
                if prev2 is None or cand < prev2:
                    lemma_index[lkey] = cand
        self._set_index({"allowed": allowed, "surface_extra": surface_extra,
                         "lemma_index": {k: v[1] for k, v in lemma_index.items()}, "max_tokens": max_tokens})

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able configuration (part of every preprocessing cache key)."""
        from importlib.metadata import version

        try:
            lookups_version = version("spacy-lookups-data")
        except Exception:  # pragma: no cover
            lookups_version = None
        if self._nlp is None:  # the default pipeline, described without creating it
            nlp_meta = dict(_DEFAULT_NLP_META)
        else:
            nlp = self._nlp
            nlp_meta = {"lang": nlp.lang, "name": nlp.meta.get("name"), "version": nlp.meta.get("version"),
                        "pipeline": list(nlp.pipe_names)}
        return {
            "class": "EntityLinker",
            "version": 1,
            "max_words": self.max_words,
            "blacklist": sorted(self.blacklist),
            "mhgrn_filters": self.mhgrn_filters,
            "drop_stopword_concepts": self.drop_stopword_concepts,
            "prefer": self.prefer,
            "answer_fallback": self.answer_fallback,
            "normalize": self.normalize,
            "nlp": {**nlp_meta, "user": self._user_nlp},
            "spacy": _spacy_version(),
            "spacy_lookups_data": lookups_version,
        }

    # ------------------------------------------------------------------ lookups
    def _lookup(self, key: str) -> int:
        i = self._names.get(key)
        if i is None:
            i = self._surface_extra.get(key)
            if i is None:
                return -1
        return i if self._allowed_mask[i] else -1

    def _match_key(self, surface: str, lemma_keys: Sequence[str]) -> int:
        """Concept for one n-gram: surface name, name equal to a lemma key, lemma index."""
        lookup = self._lookup
        if self.prefer == "surface":
            c = lookup(surface)
            if c >= 0:
                return c
        for lk in lemma_keys:
            if lk != surface or self.prefer == "lemma":
                c = lookup(lk)
                if c >= 0:
                    return c
        if self.prefer == "lemma":
            c = lookup(surface)
            if c >= 0:
                return c
        for lk in lemma_keys:
            c = self._lemma_index.get(lk, -1)
            if c >= 0:
                return c
        return -1

    def _doc_tokens(self, doc: "Doc") -> tuple[list[str], list[list[str]], list[bool], list[bool], list[int], list[int]]:
        lows, lems, ws, ok, starts, ends = [], [], [], [], [], []
        use_doc_lemmas = self._user_nlp
        lemma = self._table.get
        for t in doc:
            low = t.lower_
            lows.append(low)
            ll = [lemma(low, low)]
            if use_doc_lemmas:
                dl = t.lemma_.lower()
                if dl and dl != ll[0] and dl != "-pron-":
                    ll.insert(0, dl)
            lems.append(ll)
            ws.append(bool(t.whitespace_))
            ok.append(not (t.is_punct or t.is_space))
            starts.append(t.idx)
            ends.append(t.idx + len(t.text))
        return lows, lems, ws, ok, starts, ends

    def link_doc(self, doc: "Doc", source: str = "question") -> list[Mention]:
        """Longest non-overlapping matches in an already processed Doc."""
        self._ensure()
        lows, lems, ws, ok, starts, ends = self._doc_tokens(doc)
        text = doc.text
        n = len(lows)
        maxn = self._max_tokens
        cands: list[tuple[int, int, int, int]] = []  # (-length, start, end, concept)
        if self._drop_stop:
            return self._mentions(self._stopword_free_candidates(lows, lems, ok), n, starts, ends, text, source)
        for i in range(n):
            if not ok[i]:
                continue
            surface = ""
            lkeys = [""]
            for j in range(i, min(n, i + maxn)):
                if j > i:
                    sep = "_" if ws[j - 1] else ""
                    if lows[j].isspace():
                        break
                    surface = surface + sep + lows[j]
                    lkeys = [k + sep + l for k in lkeys for l in lems[j]][:4]
                else:
                    surface = lows[j]
                    lkeys = list(lems[j])
                if not ok[j]:
                    continue
                c = self._match_key(surface, lkeys)
                if c >= 0:
                    cands.append((i - j - 1, i, j + 1, c))
        return self._mentions(cands, n, starts, ends, text, source)

    def _stopword_free_candidates(self, lows, lems, ok) -> list[tuple[int, int, int, int]]:
        """Candidates of the ``conceptnet4`` normalisation: keys of content tokens only, joined
        by ``_``; a span starts and ends on a content token and may hold stopwords or
        punctuation between them (at most ``max_tokens`` content tokens, as many others)."""
        stop = NLTK_STOPWORDS
        n = len(lows)
        content = [ok[k] and lows[k] not in stop and lems[k][-1] not in stop for k in range(n)]
        maxn = self._max_tokens
        cands: list[tuple[int, int, int, int]] = []
        for i in range(n):
            if not content[i]:
                continue
            surface = lows[i]
            lkeys = list(lems[i])
            words = 1
            c = self._match_key(surface, lkeys)
            if c >= 0:
                cands.append((-1, i, i + 1, c))
            j = i + 1
            gap = 0
            while j < n and words < maxn:
                if lows[j].isspace():
                    break
                if not content[j]:
                    gap += 1
                    if gap > 2:
                        break
                    j += 1
                    continue
                gap = 0
                words += 1
                surface = surface + "_" + lows[j]
                lkeys = [k + "_" + l for k in lkeys for l in lems[j]][:4]
                c = self._match_key(surface, lkeys)
                if c >= 0:
                    cands.append((i - j - 1, i, j + 1, c))
                j += 1
        return cands

    @staticmethod
    def _mentions(cands, n, starts, ends, text, source) -> list[Mention]:
        """Longest non-overlapping candidates ``(-length, start, end, concept)`` as mentions."""
        if not cands:
            return []
        cands.sort()
        taken = bytearray(n)
        chosen = []
        for _, i, j, c in cands:
            if any(taken[i:j]):
                continue
            taken[i:j] = b"\x01" * (j - i)
            chosen.append((i, j, c))
        chosen.sort()
        return [Mention(starts[i], ends[j - 1], text[starts[i] : ends[j - 1]], c, source) for i, j, c in chosen]

    def _doc(self, text: str) -> "Doc":
        if not self._user_nlp:
            return self.nlp.make_doc(text)
        # A user pipeline may contain our own component: do not run it (it would link twice).
        skip = [name for name, pipe in self.nlp.pipeline if type(pipe).__name__ == "KGFuseLinkerComponent"]
        return self.nlp(text, disable=skip) if skip else self.nlp(text)

    def link(self, text: str, source: str = "question") -> list[Mention]:
        """Mentions in ``text``: longest non-overlapping concept matches, in text order.

        Args:
            text: the text to link.
            source: ``"question"`` or ``"choice"`` (recorded on each mention).
        """
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        key = (text, source)
        hit = self._cache.get(key)
        if hit is not None:
            return list(hit)
        mentions = self.link_doc(self._doc(text), source)
        if self._cache_size:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = mentions
        return list(mentions)

    def _fallback(self, text: str) -> list[Mention]:
        """MHGRN's hard grounding of a choice that matched nothing: the whole choice as one
        concept (surface then lemma form), else each word (surface then lemma)."""
        doc = self._doc(text)
        lows, lems, ws, ok, starts, ends = self._doc_tokens(doc)
        idx = [k for k in range(len(lows)) if ok[k]]
        if self._drop_stop:
            idx = [k for k in idx if lows[k] not in NLTK_STOPWORDS and lems[k][-1] not in NLTK_STOPWORDS]
        if not idx:
            return []
        i, j = idx[0], idx[-1] + 1
        if self._drop_stop:
            keys = ("_".join(lows[k] for k in idx), "_".join(lems[k][-1] for k in idx))
            for key in keys:
                c = self._fallback_id(key)
                if c >= 0:
                    return [Mention(starts[i], ends[j - 1], text[starts[i] : ends[j - 1]], c, "choice")]
        surface = "".join(lows[k] + ("_" if ws[k] and k < j - 1 else "") for k in range(i, j))
        lemma_key = "".join(lems[k][-1] + ("_" if ws[k] and k < j - 1 else "") for k in range(i, j))
        for key in (surface, lemma_key):
            c = self._fallback_id(key)
            if c >= 0:
                return [Mention(starts[i], ends[j - 1], text[starts[i] : ends[j - 1]], c, "choice")]
        out = []
        for k in idx:
            for key in (lows[k], *lems[k]):
                c = self._fallback_id(key)
                if c >= 0:
                    out.append(Mention(starts[k], ends[k], text[starts[k] : ends[k]], c, "choice"))
                    break
        return out

    def _fallback_id(self, key: str) -> int:
        """A concept by exact normalised name, with the blacklist and stopword pruning only."""
        self._ensure()
        i = self._names.get(key)
        if i is None:
            i = self._surface_extra.get(key, -1)
        if i < 0 or key in self.blacklist or (self.mhgrn_filters and key in MHGRN_BLACKLIST):
            return -1
        words = key.split("_")
        if all(w in NLTK_STOPWORDS for w in words):
            return -1
        if self.drop_stopword_concepts and any(w in NLTK_STOPWORDS for w in words):
            return -1
        return i

    def ground(self, question: str, choice: str) -> Grounding:
        """Ground one (question, choice) pair.

        Answer concepts come from the choice (falling back to :meth:`_fallback` when
        ``answer_fallback`` and nothing matched); question concepts are the question's
        concepts minus the answer concepts. Both lists keep the order of first mention.
        """
        qm = self.link(question, "question")
        cm = self.link(choice, "choice")
        if not cm and self.answer_fallback:
            cm = self._fallback(choice)
        answer = list(dict.fromkeys(m.concept for m in cm))
        aset = set(answer)
        qc = [c for c in dict.fromkeys(m.concept for m in qm) if c not in aset]
        return Grounding(qc, answer, qm + cm)

    def __repr__(self) -> str:
        patterns = self._num_patterns if self.is_built else "not built"
        return f"EntityLinker(graph={self.graph!r}, patterns={patterns}, max_words={self.max_words})"
