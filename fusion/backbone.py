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
  ``sa_layer_norm``, ``ffn.lin1/lin2``, ``output_layer_norm``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

__all__ = ["family", "supports_layer_fusion", "embed", "encoder_layers", "token_attention", "feed_forward_parts", "pooled_text"]


def family(model: nn.Module) -> str | None:
    """``"bert"``, ``"distilbert"`` or ``None`` (no layer fusion possible)."""
    if getattr(model, "embeddings", None) is None:
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


def _require(model: nn.Module) -> str:
    fam = family(model)
    if fam is None:
        raise ValueError(
            f"ERNIE fusion layers need a BERT-family encoder (embeddings + encoder.layer, or DistilBERT); "
            f"{type(model).__name__} is not one. Use num_fusion_layers=0 (late fusion) for this encoder."
        )
    return fam


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    return model.encoder.layer if _require(model) == "bert" else model.transformer.layer


def embed(model: nn.Module, input_ids: Tensor, attention_mask: Tensor | None,
          token_type_ids: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Embeddings ``[S, L, H]`` and the prepared attention mask for the layers."""
    from transformers.masking_utils import create_bidirectional_mask

    if _require(model) == "distilbert":
        hidden = model.embeddings(input_ids)
    else:
        hidden = model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    proj = getattr(model, "embeddings_project", None)  # ELECTRA when embedding_size != hidden_size
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
    return layer.intermediate.dense, layer.intermediate.intermediate_act_fn, layer.output


def pooled_text(model: nn.Module, sequence: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """The text vector of each sequence: the model's pooler over ``[CLS]`` when it has one
    (BERT, RoBERTa); else the ``[CLS]`` state for the BERT-style families (ELECTRA,
    DistilBERT); for any other architecture (GPT-2, XLNet, T5 encoder...), the mean over
    the non-padding tokens (a first-token state means nothing for a causal model)."""
    pooler = getattr(model, "pooler", None)
    if pooler is not None:
        return pooler(sequence)
    if family(model) is not None or attention_mask is None:
        return sequence[:, 0]
    m = attention_mask.unsqueeze(-1).to(sequence.dtype)
    return (sequence * m).sum(1) / m.sum(1).clamp(min=1.0)
