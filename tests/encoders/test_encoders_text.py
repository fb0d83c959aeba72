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


def test_a_loaded_encoder_owns_aligned_weights_and_reproduces_its_outputs(tmp_path):
    """Weights read from a file get their own 64-byte-aligned memory, so that a saved and
    reloaded encoder gives the outputs it gave before saving, bit for bit (views at the
    file's offsets take other CPU kernel paths)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=99, hidden_size=36, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                     max_position_embeddings=32)
    model = BertModel(cfg).eval()
    ids = torch.randint(1, 99, (3, 11))
    with torch.no_grad():
        ref = model(input_ids=ids).last_hidden_state
    model.save_pretrained(tmp_path)
    _, loaded = load_text_encoder(tmp_path, with_tokenizer=False)
    loaded.eval()
    for name, p in loaded.named_parameters():
        assert p.data_ptr() % 64 == 0, name
        assert p.untyped_storage().nbytes() == p.numel() * p.element_size(), name
    with torch.no_grad():
        assert torch.equal(loaded(input_ids=ids).last_hidden_state, ref)
