"""Offline resolution and loading of the text encoder."""

from __future__ import annotations

from pathlib import Path

from kgfuse.encoders.text import DEFAULT_TEXT_ENCODER, load_text_encoder, resolve_text_encoder, weights_hash


def test_default_aliases_resolve_to_the_shipped_folder():
    p = resolve_text_encoder(None)
    assert Path(p, "config.json").is_file() and Path(p, "model.safetensors").is_file()
    assert resolve_text_encoder(DEFAULT_TEXT_ENCODER) == p == resolve_text_encoder("all-MiniLM-L6-v2")
    assert resolve_text_encoder("roberta-base") == "roberta-base"


def test_load_default_offline():
    tok, model = load_text_encoder()
    assert tok.is_fast and model.config.hidden_size == 384 and model.config.num_hidden_layers == 6


def test_weights_hash_follows_content(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"abc")
    h1 = weights_hash(tmp_path)
    assert h1 == weights_hash(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"abd")
    assert weights_hash(tmp_path) != h1
    assert resolve_text_encoder(tmp_path) == str(tmp_path.resolve())
