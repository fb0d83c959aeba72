"""The linker's lazy pattern index and its on-disk cache (``pattern_cache``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from kgfuse.kg.linking import EntityLinker, PatternCacheError, _read_patterns

TEXT = "Where would you put a plate after drying it? In the kitchen cupboard."
LINKS = [("plate", "plate"), ("drying", "dry"), ("kitchen", "kitchen"), ("cupboard", "cupboard")]


def _links(linker: EntityLinker, text: str = TEXT) -> list[tuple[str, str]]:
    return [(m.text, linker.graph.concept_name(m.concept)) for m in linker.link(text)]


def _index(linker: EntityLinker) -> tuple:
    return (linker._allowed_mask.tolist(), dict(linker._surface_extra), dict(linker._lemma_index), linker._max_tokens)


def test_nothing_is_built_until_first_use(sample_kg):
    linker = EntityLinker(sample_kg, pattern_cache=False)
    assert not linker.is_built and linker._nlp is None
    built = EntityLinker(sample_kg, pattern_cache=False).build()
    assert linker.config == built.config  # the default pipeline is described without creating it
    assert _links(linker) == _links(built) == LINKS
    assert linker.is_built and linker.patterns_source == "built"


def test_cache_round_trip_gives_the_same_index(sample_kg, tmp_path):
    first = EntityLinker(sample_kg, pattern_cache=tmp_path).build()
    assert first.patterns_source == "built"
    files = list(tmp_path.glob("*.npz"))
    assert files == [first.pattern_cache_path]
    second = EntityLinker(sample_kg, pattern_cache=tmp_path).build()
    assert second.patterns_source == "cache"
    assert _index(second) == _index(first)
    assert second.num_patterns == first.num_patterns
    assert _links(second) == _links(first) == LINKS
    g = second.ground("Where is a plate?", "cupboard")
    assert g == first.ground("Where is a plate?", "cupboard")
    assert ([sample_kg.concept_name(c) for c in g.question_concepts], [sample_kg.concept_name(c) for c in g.answer_concepts]) == (
        ["plate"], ["cupboard"])


def test_cache_key_follows_graph_and_settings(sample_kg, tiny_kg, tmp_path):
    a = EntityLinker(sample_kg, pattern_cache=tmp_path)
    assert EntityLinker(sample_kg, pattern_cache=tmp_path).pattern_cache_path == a.pattern_cache_path
    assert EntityLinker(sample_kg, pattern_cache=tmp_path, max_words=3).pattern_cache_path != a.pattern_cache_path
    assert EntityLinker(tiny_kg, pattern_cache=tmp_path).pattern_cache_path != a.pattern_cache_path
    # small graphs: no cache by default; a user pipeline: never
    assert EntityLinker(sample_kg).pattern_cache_path is None
    assert EntityLinker(sample_kg, a.nlp, pattern_cache=tmp_path).pattern_cache_path is None


def test_damaged_cache_is_rebuilt_with_a_warning(sample_kg, tmp_path, caplog):
    good = EntityLinker(sample_kg, pattern_cache=tmp_path).build()
    path = good.pattern_cache_path
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(PatternCacheError):
        _read_patterns(path, good._pattern_key(), sample_kg.num_concepts)
    with caplog.at_level(logging.WARNING, logger="kgfuse.kg.linking"):
        again = EntityLinker(sample_kg, pattern_cache=tmp_path).build()
    assert again.patterns_source == "built" and "rebuilding" in caplog.text
    assert _index(again) == _index(good)
    # ... and the file was replaced by a good one
    assert EntityLinker(sample_kg, pattern_cache=tmp_path).build().patterns_source == "cache"
    path.write_bytes(b"not a zip file")
    assert EntityLinker(sample_kg, pattern_cache=tmp_path).build().patterns_source == "built"


def test_cache_of_other_settings_is_refused(sample_kg, tmp_path):
    a = EntityLinker(sample_kg, pattern_cache=tmp_path).build()
    b = EntityLinker(sample_kg, pattern_cache=tmp_path, max_words=2)
    b.pattern_cache_path.write_bytes(a.pattern_cache_path.read_bytes())  # a file under the wrong name
    with pytest.raises(PatternCacheError, match="other settings"):
        _read_patterns(b.pattern_cache_path, b._pattern_key(), sample_kg.num_concepts)
    assert b.build().patterns_source == "built"
    assert np.array_equal(b._allowed_mask, EntityLinker(sample_kg, pattern_cache=False, max_words=2)._allowed_mask)
