"""Access to the layers of a Hugging Face text encoder, per architecture family.

ERNIE fusion needs to run the text encoder layer by layer: embeddings, the lower
``L - M`` layers unchanged, then the top ``M`` layers through knowledgeable layers that
reuse each layer's pretrained token self-attention and feed-forward weights. This module
hides the module names of each family behind four operations:

- :func:`embed`: token embeddings and the attention mask in the form the layers expect;
- :func:`encoder_layers`: the list of transformer layers;
- :func:`token_attention`: a layer's self-attention sub-block (with its residual and
  LayerNorm), giving ERNIE's :math:`\\tilde w`;
- :func:`feed_forward_parts`: the layer's FFN split into its first linear map, its
  activation and its output sub-block (second linear map + residual + LayerNorm).

Supported families:

- ``"bert"``: ``embeddings`` + ``encoder.layer`` with BERT-style layers (``attention``,
  ``intermediate.dense``, ``output``): BERT, RoBERTa, MiniLM/TinyBERT (BERT checkpoints),
  ELECTRA (with its ``embeddings_project``), XLM-RoBERTa, CamemBERT;
- ``"distilbert"``: ``embeddings`` + ``transformer.layer`` with ``attention``,
  ``sa_layer_norm``, ``ffn.lin1/lin2``, ``output_layer_norm``;
- ``"albert"``: ``embeddings`` + ``encoder.embedding_hidden_mapping_in`` +
  ``encoder.albert_layer_groups[g].albert_layers[0]`` (ALBERT, Lan et al. 2020), whose
  ``num_hidden_layers`` layer positions share the weights of ``num_hidden_groups`` groups
  (one shared layer for the released checkpoints). :func:`encoder_layers` lists the layer
  *used at each position* (the same module repeated); the fused model gives its ERNIE
  positions their own copies (:func:`shares_layers`). Groups of several inner layers
  (``inner_group_num > 1``) get late fusion.

Other architectures (GPT-2, XLNet, T5's encoder...) get late fusion; encoder-decoder
configurations (T5, mT5, UMT5) are built as their encoder-only model
(:func:`text_model_class`).
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

__all__ = ["family", "supports_layer_fusion", "shares_layers", "text_model_class", "build_text_model", "embed", "encoder_layers",
           "token_attention", "feed_forward_parts", "pooled_text"]


def text_model_class(config: Any) -> type:
    """The class that builds a text encoder from ``config``: ``AutoModel``'s choice, except
    for encoder-decoder models, whose encoder-only class is used (``T5EncoderModel`` for
    T5, likewise mT5 and UMT5): kgfuse reads text, it generates nothing.

    Raises:
        ValueError: an encoder-decoder family without an encoder-only class.
    """
    import transformers
    from transformers import AutoModel

    try:
        full = AutoModel._model_mapping[type(config)]
    except KeyError:
        return AutoModel  # AutoModel itself says which configurations it knows
    # T5EncoderModel sets is_encoder_decoder=False on its config (so a saved config says
    # False): the encoder-only class, where there is one, decides.
    name = full.__name__.removesuffix("Model") + "EncoderModel"
    cls = getattr(transformers, name, None) if full.__name__.endswith("Model") else None
    if cls is not None:
        return cls
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(
            f"{full.__name__} is an encoder-decoder model without an encoder-only class ({name}); "
            "kgfuse needs an encoder (use a T5/mT5/UMT5 checkpoint or any encoder model)"
        )
    return AutoModel


def build_text_model(config: Any) -> nn.Module:
    """A randomly initialised text encoder for ``config`` (see :func:`text_model_class`)."""
    from transformers import AutoModel

    cls = text_model_class(config)
    return AutoModel.from_config(config) if cls is AutoModel else cls._from_config(config)


def _albert_groups(model: nn.Module) -> nn.ModuleList | None:
    groups = getattr(getattr(model, "encoder", None), "albert_layer_groups", None)
    return groups if isinstance(groups, nn.ModuleList) and len(groups) else None


def family(model: nn.Module) -> str | None:
    """``"bert"``, ``"distilbert"``, ``"albert"`` or ``None`` (no layer fusion possible)."""
    if getattr(model, "embeddings", None) is None:
        return None
    groups = _albert_groups(model)
    if groups is not None:
        if all(len(g.albert_layers) == 1 for g in groups):
            return "albert"
        return None
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if isinstance(layers, nn.ModuleList) and len(layers):
        lay = layers[0]
        if all(hasattr(lay, a) for a in ("attention", "intermediate", "output")) and hasattr(lay.intermediate, "dense"):
            return "bert"
    layers = getattr(getattr(model, "transformer", None), "layer", None)
    if isinstance(layers, nn.ModuleList) and len(layers):
        lay = layers[0]
        if all(hasattr(lay, a) for a in ("attention", "sa_layer_norm", "ffn", "output_layer_norm")):
            return "distilbert"
    return None


def supports_layer_fusion(model: nn.Module) -> bool:
    """Whether ERNIE layers can be placed inside ``model`` (else only late fusion)."""
    return family(model) is not None


def shares_layers(model: nn.Module) -> bool:
    """Whether several layer positions of ``model`` run the same module (ALBERT)."""
    layers = encoder_layers(model) if supports_layer_fusion(model) else []
    return len({id(m) for m in layers}) < len(layers)


def _require(model: nn.Module) -> str:
    fam = family(model)
    if fam is None:
        raise ValueError(
            f"ERNIE fusion layers need a BERT-family encoder (embeddings + encoder.layer, or DistilBERT); "
            f"{type(model).__name__} is not one. Use num_fusion_layers=0 (late fusion) for this encoder."
        )
    return fam


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """The layer run at each of the ``num_hidden_layers`` positions, bottom to top (for ALBERT
    the shared layer of each position's group, so the same module may appear several times)."""
    fam = _require(model)
    if fam == "bert":
        return list(model.encoder.layer)
    if fam == "distilbert":
        return list(model.transformer.layer)
    groups = model.encoder.albert_layer_groups
    n = model.config.num_hidden_layers
    # ALBERT's own assignment of positions to groups (AlbertTransformer.forward)
    return [groups[int(i / (n / len(groups)))].albert_layers[0] for i in range(n)]


def embed(model: nn.Module, input_ids: Tensor, attention_mask: Tensor | None,
          token_type_ids: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Embeddings ``[S, L, H]`` and the prepared attention mask for the layers."""
    from transformers.masking_utils import create_bidirectional_mask

    if _require(model) == "distilbert":
        hidden = model.embeddings(input_ids)
    else:
        hidden = model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    proj = getattr(model, "embeddings_project", None)  # ELECTRA when embedding_size != hidden_size
    if proj is None:
        proj = getattr(model.encoder, "embedding_hidden_mapping_in", None) if hasattr(model, "encoder") else None  # ALBERT
    if proj is not None:
        hidden = proj(hidden)
    mask = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention_mask)
    return hidden, mask


def token_attention(layer: nn.Module, hidden: Tensor, mask: Tensor | None) -> Tensor:
    """The layer's self-attention block output (after its residual and LayerNorm)."""
    if hasattr(layer, "sa_layer_norm"):  # DistilBERT
        out = layer.attention(hidden, attention_mask=mask)
        out = out[0] if isinstance(out, tuple) else out
        return layer.sa_layer_norm(out + hidden)
    out = layer.attention(hidden, mask)
    return out[0] if isinstance(out, tuple) else out


def feed_forward_parts(layer: nn.Module) -> tuple[nn.Linear, Callable[[Tensor], Tensor], Callable[[Tensor, Tensor], Tensor]]:
    """``(first_linear, activation, output_block)`` of a BERT-style layer, where
    ``output_block(h, residual) = LayerNorm(residual + Dropout(W_2 h + b_2))``."""
    if hasattr(layer, "sa_layer_norm"):  # DistilBERT
        ffn = layer.ffn
        return ffn.lin1, ffn.activation, lambda h, res: layer.output_layer_norm(ffn.dropout(ffn.lin2(h)) + res)
    if hasattr(layer, "full_layer_layer_norm"):  # ALBERT (AlbertLayer.ff_chunk: no dropout on the FFN output)
        return layer.ffn, layer.activation, lambda h, res: layer.full_layer_layer_norm(layer.ffn_output(h) + res)
    return layer.intermediate.dense, layer.intermediate.intermediate_act_fn, layer.output


def pooled_text(model: nn.Module, sequence: Tensor, attention_mask: Tensor | None = None,
                mode: str = "model") -> Tensor:
    """The text vector of each sequence.

    ``mode="model"``: the model's pooler over ``[CLS]`` when it has one (BERT, RoBERTa: a
    module over the sequence; ALBERT: ``tanh(Linear(h_[CLS]))``); else the ``[CLS]`` state for
    the BERT-style families (ELECTRA, DistilBERT); for any other architecture (GPT-2, XLNet, T5
    encoder...), the mean over the non-padding tokens (a first-token state means nothing for a
    causal model). ``mode="cls"``: the first token's state. ``mode="mean"``: the mean over the
    non-padding tokens (all tokens when ``attention_mask`` is ``None``)."""
    if mode not in ("model", "cls", "mean"):
        raise ValueError(f"pooled_text mode must be 'model', 'cls' or 'mean', not {mode!r}")
    if mode == "model":
        pooler = getattr(model, "pooler", None)
        if isinstance(pooler, nn.Linear):  # ALBERT: pooler + pooler_activation over [CLS]
            out = pooler(sequence[:, 0])
            act = getattr(model, "pooler_activation", None)
            return act(out) if act is not None else out
        if pooler is not None:
            return pooler(sequence)
        mode = "cls" if family(model) is not None or attention_mask is None else "mean"
    if mode == "cls":
        return sequence[:, 0]
    if attention_mask is None:
        return sequence.mean(1)
    m = attention_mask.unsqueeze(-1).to(sequence.dtype)
    return (sequence * m).sum(1) / m.sum(1).clamp(min=1.0)
