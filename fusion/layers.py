r"""ERNIE knowledgeable-encoder (K-Encoder) layer.

Zhang et al., "ERNIE: Enhanced Language Representation with Informative Entities", ACL 2019.

A K-Encoder layer takes token states :math:`w_1..w_n` and entity states
:math:`e_1..e_m` (here: the GNN states of the linked concepts, projected to the LM width)
and computes

.. math::
    \tilde w &= \mathrm{MH\text{-}ATT}(w) \quad \text{(the pretrained layer's self-attention block)}\\
    \tilde e &= \mathrm{LN}(e + \mathrm{MH\text{-}ATT}(e)) \quad \text{(new entity self-attention)}\\
    h_j &= \sigma(\tilde W_t \tilde w_j + \tilde W_e \tilde e_k + \tilde b) \quad \text{token } j \text{ aligned to entity } k\\
    h_j &= \sigma(\tilde W_t \tilde w_j + \tilde b) \quad \text{token } j \text{ with no entity}\\
    w_j &= \mathrm{LN}(\tilde w_j + W_t h_j + b_t) \\
    e_k &= \mathrm{LN}(\tilde e_k + \sigma(W_e h_{j(k)} + b_e))

:math:`\tilde W_t, \tilde b` are the pretrained layer's first FFN matrix (``intermediate.dense``),
:math:`\sigma` its activation, and :math:`W_t, b_t` + LayerNorm its output block, so tokens
with no entity take *exactly* the pretrained layer's computation. :math:`\tilde W_e` is new and
zero-initialised (``zero_init=True``): at initialisation every token follows the pretrained
layer, and the fused model starts as the pretrained LM. The residual + LayerNorm around the
entity output mirror BERT's sub-layer structure (ERNIE's released code does the same). When a
concept is mentioned by several tokens, :math:`h_{j(k)}` is the mean of their :math:`h_j`;
an entity no token is aligned to (truncated away) keeps :math:`\tilde e_k`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .backbone import feed_forward_parts, token_attention

__all__ = ["KnowledgeableLayer"]


class KnowledgeableLayer(nn.Module):
    """The fusion parameters of one ERNIE K-Encoder layer.

    The pretrained text layer is *not* a sub-module (its weights stay in the text encoder,
    under their original names, so the state dict holds each weight once); it is passed to
    :meth:`forward`, which wraps it.

    Args:
        hidden_size: LM width ``H`` (entities live at the same width).
        intermediate_size: width of the LM layer's FFN.
        num_heads: heads of the entity self-attention.
        dropout: dropout probability.
        layer_norm_eps: LayerNorm epsilon.
        zero_init: zero-initialise :math:`\\tilde W_e` (see module docstring).

    Shapes:
        hidden: ``[S, L, H]``; entities: ``[S, K, H]``; entity_mask: ``[S, K]`` bool;
        token_entity: ``[S, L]`` long slot in ``0..K-1`` or ``-1``.
    """

    def __init__(self, hidden_size: int, intermediate_size: int, num_heads: int, dropout: float = 0.1,
                 layer_norm_eps: float = 1e-12, zero_init: bool = True) -> None:
        super().__init__()
        self.entity_attention = nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)
        self.entity_attention_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.entity_to_intermediate = nn.Linear(hidden_size, intermediate_size, bias=False)  # \tilde W_e
        self.entity_to_intermediate._kgfuse_zero_init = zero_init
        self.intermediate_to_entity = nn.Linear(intermediate_size, hidden_size)  # W_e, b_e
        self.entity_output_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        if zero_init:
            nn.init.zeros_(self.entity_to_intermediate.weight)

    def forward(self, lm_layer: nn.Module, hidden: Tensor, attention_mask: Tensor | None, entities: Tensor,
                entity_mask: Tensor, token_entity: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(token states [S, L, H], entity states [S, K, H])``."""
        dense, act, output_block = feed_forward_parts(lm_layer)
        w_tilde = token_attention(lm_layer, hidden, attention_mask)
        pre = dense(w_tilde)  # \tilde W_t \tilde w_j + \tilde b
        S, K = entities.shape[0], entities.shape[1]
        if K == 0:
            return output_block(act(pre), w_tilde), entities
        # Entity self-attention; a statement with no entity attends to its (zero) padding so
        # that no row is fully masked (its outputs are masked out below).
        pad = ~entity_mask
        pad = pad & entity_mask.any(dim=1, keepdim=True)
        att, _ = self.entity_attention(entities, entities, entities, key_padding_mask=pad, need_weights=False)
        e_tilde = self.entity_attention_norm(entities + self.dropout(att))
        # Information fusion. \tilde W_e \tilde e is computed once per entity ([S, K, I]) and
        # added at the aligned tokens only, instead of a [S, L, H] x [H, I] product over every
        # token: the same sum, a K/L share of the work, no [S, L, H] activation kept.
        S_L, I = S * hidden.shape[1], pre.shape[-1]
        aligned = token_entity >= 0  # [S, L]
        slot = token_entity.clamp(min=0)
        flat = (torch.arange(S, device=slot.device).unsqueeze(1) * K + slot)[aligned]  # [A] entity rows
        tok = aligned.reshape(-1).nonzero().squeeze(1)  # [A] token rows, same (row-major) order
        ent_i = self.entity_to_intermediate(e_tilde).reshape(S * K, I)
        pre = pre.reshape(S_L, I).index_add(0, tok, ent_i.index_select(0, flat).to(pre.dtype)).view_as(pre)
        h = act(pre)  # [S, L, I]
        tokens = output_block(h, w_tilde)
        # Entity output from the hidden state of the aligned token(s), mean over mentions:
        # W_e mean(h) + b_e = mean(W_e h + b_e), so project the A aligned rows, then average.
        y = self.intermediate_to_entity(h.reshape(S_L, I).index_select(0, tok))  # [A, H]
        Hd = y.shape[-1]
        summed = y.new_zeros(S * K, Hd).index_add_(0, flat, y)
        count = y.new_zeros(S * K).index_add_(0, flat, y.new_ones(flat.shape[0]))
        has = (count > 0).view(S, K, 1)
        mean = (summed / count.clamp(min=1).unsqueeze(-1)).view(S, K, Hd)
        e_new = self.entity_output_norm(e_tilde + self.dropout(act(mean)))
        e_out = torch.where(has, e_new, e_tilde)
        e_out = e_out * entity_mask.unsqueeze(-1).to(e_out.dtype)
        return tokens, e_out
