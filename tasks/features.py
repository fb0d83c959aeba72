"""Features and collation for :class:`kgfuse.fusion.KGFusedForMultipleChoice`.

:func:`build_features` tokenises each (question, choice) pair (question = segment A,
choice = segment B) with a fast tokenizer and aligns every mention to the first sub-token
whose character span overlaps it (from the tokenizer's ``offset_mapping``); that token gets
the local index of the mention's concept in the choice's subgraph. :class:`MultipleChoiceCollator`
pads a list of such features into the flat tensors the model takes (contract 4): text
tensors ``[B, C, L]``, the subgraphs of all ``B * C`` statements concatenated PyG-style
(``torch_geometric.data.Batch``), and ``entity_index`` rewritten to batch-global node indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["build_features", "align_mentions", "MultipleChoiceCollator", "AlignmentStats", "IGNORE_INDEX"]

IGNORE_INDEX = -100
"""The label of a row without an answer: ``torch.nn.functional.cross_entropy`` ignores it and
evaluation does not count it (accuracy is over ``labels >= 0``)."""

_SEGMENT = {"question": 0, "choice": 1}


@dataclass
class AlignmentStats:
    """Counts of mentions that could not be placed on a token (reported, not silent)."""

    aligned: int = 0
    truncated: int = 0  # no token of the mention survived truncation
    not_in_subgraph: int = 0  # the concept is not a node of the choice's subgraph
    shared_token: int = 0  # another mention already took this first sub-token

    def add(self, other: "AlignmentStats") -> None:
        for k in ("aligned", "truncated", "not_in_subgraph", "shared_token"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("aligned", "truncated", "not_in_subgraph", "shared_token")}


def align_mentions(offsets: Sequence[tuple[int, int]], sequence_ids: Sequence[int | None], mentions: Sequence[Any],
                   concept_to_node: Mapping[int, int], stats: AlignmentStats | None = None) -> list[int]:
    """Per-token local node index (``-1`` for none) for one tokenised pair.

    Args:
        offsets: ``offset_mapping`` of the encoding (character spans within each segment).
        sequence_ids: segment of each token (0 question, 1 choice, ``None`` special).
        mentions: objects with ``start``, ``end``, ``concept``, ``source`` (contract 1).
        concept_to_node: global concept id -> local node index in the subgraph.
        stats: counters to update.

    A mention is aligned to the first sub-token of its segment whose span overlaps
    ``[start, end)``.
    """
    st = stats if stats is not None else AlignmentStats()
    out = [-1] * len(offsets)
    for m in mentions:
        seg = _SEGMENT.get(m.source)
        if seg is None:
            raise ValueError(f"mention {m!r} has source {m.source!r}; expected 'question' or 'choice'")
        node = concept_to_node.get(int(m.concept))
        if node is None:
            st.not_in_subgraph += 1
            continue
        tok = next(
            (t for t, ((a, b), s) in enumerate(zip(offsets, sequence_ids))
             if s == seg and b > a and a < m.end and b > m.start),
            None,
        )
        if tok is None:
            st.truncated += 1
        elif out[tok] != -1:
            st.shared_token += 1
        else:
            out[tok] = node
            st.aligned += 1
    return out


def build_features(question: str, choices: Sequence[str], groundings: Sequence[Any], subgraphs: Sequence[Any],
                   tokenizer: Any, *, max_length: int | None = None, label: int | None = None,
                   stats: AlignmentStats | None = None) -> dict[str, Any]:
    """Features of one example (all its choices).

    Args:
        question: question text (segment A).
        choices: answer texts (segment B), one per choice.
        groundings: one :class:`kgfuse.kg.linking.Grounding` per choice (its ``mentions``
            carry character offsets into the question or the choice).
        subgraphs: one :class:`kgfuse.kg.retrieval.KGData` per choice.
        tokenizer: a fast Hugging Face tokenizer (offsets are required).
        max_length: truncate each pair to this many tokens (``"longest_first"``).
        label: index of the right choice, if known.
        stats: alignment counters to update (see :class:`AlignmentStats`).

    Returns:
        ``{"input_ids", "attention_mask", ["token_type_ids"], "entity_local", "graphs",
        ["label"]}``: lists with one entry per choice; ``entity_local[j][t]`` is the local
        node index (in ``graphs[j]``) of the concept aligned to token ``t``, or ``-1``.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("build_features needs a fast tokenizer (offset_mapping)")
    if not (len(choices) == len(groundings) == len(subgraphs)):
        raise ValueError(
            f"got {len(choices)} choices, {len(groundings)} groundings and {len(subgraphs)} subgraphs; "
            "expected one of each per choice"
        )
    if label is not None and not 0 <= int(label) < len(choices):
        raise ValueError(f"label {label} outside [0, {len(choices)})")
    feats: dict[str, Any] = {"input_ids": [], "attention_mask": [], "entity_local": [], "graphs": list(subgraphs)}
    with_tt = None
    for choice, grounding, g in zip(choices, groundings, subgraphs):
        enc = tokenizer(
            question,
            choice,
            truncation="longest_first" if max_length else False,
            max_length=max_length,
            return_offsets_mapping=True,
        )
        cids = g.concept_ids.tolist() if hasattr(g, "concept_ids") else []
        c2n = {}
        for i, c in enumerate(cids):
            c2n.setdefault(int(c), i)
        ent = align_mentions(enc["offset_mapping"], enc.sequence_ids(), grounding.mentions, c2n, stats)
        feats["input_ids"].append(list(enc["input_ids"]))
        feats["attention_mask"].append(list(enc["attention_mask"]))
        feats["entity_local"].append(ent)
        if with_tt is None:
            with_tt = "token_type_ids" in enc
            if with_tt:
                feats["token_type_ids"] = []
        if with_tt:
            feats["token_type_ids"].append(list(enc["token_type_ids"]))
    if label is not None:
        feats["label"] = int(label)
    return feats


def _pad_paths(p: Tensor, width: int) -> Tensor:
    if p.shape[1] == width:
        return p
    return torch.cat((p, p[:, -1:].expand(-1, width - p.shape[1])), 1)


@dataclass
class MultipleChoiceCollator:
    """Batch features into the model's inputs (contract 4).

    Features are the dicts of :func:`build_features`, or raw dicts with ``question``,
    ``choices``, ``groundings``, ``subgraphs`` (and optional ``label``), which are
    tokenised here with ``max_length``. Text is padded to the longest pair of the batch
    (or to ``pad_to_multiple_of``).

    Returns a dict of tensors: ``input_ids``, ``attention_mask``, (``token_type_ids``),
    ``entity_index`` ``[B, C, L]``; ``node_concept_ids``, ``node_type``, ``node_batch`` ``[N]``;
    ``edge_index`` ``[2, E]``, ``edge_type`` ``[E]``; ``paths``/``path_rels``/``path_len``
    when any subgraph has paths; ``labels`` ``[B]`` when any feature has a ``label``, with
    :data:`IGNORE_INDEX` (``-100``) for the rows without one, so a row without an answer
    never changes the loss or the accuracy of the others.
    """

    tokenizer: Any
    max_length: int | None = None
    pad_to_multiple_of: int | None = None
    stats: AlignmentStats = field(default_factory=AlignmentStats)

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Tensor]:
        from torch_geometric.data import Batch, Data

        if not features:
            raise ValueError("MultipleChoiceCollator got an empty batch")
        feats = [self._tokenised(f) for f in features]
        B = len(feats)
        C = len(feats[0]["input_ids"])
        for i, f in enumerate(feats):
            if len(f["input_ids"]) != C:
                raise ValueError(f"feature {i} has {len(f['input_ids'])} choices, feature 0 has {C}")
        L = max(len(ids) for f in feats for ids in f["input_ids"])
        if self.max_length is not None and L > self.max_length:
            raise ValueError(
                f"a tokenised pair has {L} tokens > max_length={self.max_length}; pass max_length to build_features"
            )
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            L = (L + m - 1) // m * m
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        with_tt = all("token_type_ids" in f for f in feats)
        input_ids = torch.full((B, C, L), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((B, C, L), dtype=torch.long)
        token_type_ids = torch.zeros((B, C, L), dtype=torch.long)
        entity_index = torch.full((B, C, L), -1, dtype=torch.long)
        graphs: list[Any] = []
        offset = 0
        for b, f in enumerate(feats):
            for c in range(C):
                n = len(f["input_ids"][c])
                input_ids[b, c, :n] = torch.tensor(f["input_ids"][c], dtype=torch.long)
                attention_mask[b, c, :n] = torch.tensor(f["attention_mask"][c], dtype=torch.long)
                if with_tt:
                    token_type_ids[b, c, :n] = torch.tensor(f["token_type_ids"][c], dtype=torch.long)
                g = f["graphs"][c]
                nn_ = int(g.num_nodes or 0)
                ent = torch.tensor(f["entity_local"][c], dtype=torch.long)
                if ent.numel() and int(ent.max()) >= nn_:
                    raise ValueError(f"feature {b} choice {c}: entity_local points to node {int(ent.max())} "
                                     f"of a subgraph with {nn_} nodes")
                entity_index[b, c, :n] = torch.where(ent >= 0, ent + offset, ent)
                offset += nn_
                graphs.append(g)
        slim = []
        for g in graphs:
            n = int(g.num_nodes or 0)
            ei = g.edge_index if getattr(g, "edge_index", None) is not None else torch.zeros(2, 0, dtype=torch.long)
            et = g.edge_type if getattr(g, "edge_type", None) is not None else torch.zeros(0, dtype=torch.long)
            slim.append(Data(concept_ids=g.concept_ids.view(-1).long(), node_type=g.node_type.view(-1).long(),
                             edge_index=ei.long(), edge_type=et.long(), num_nodes=n))
        batch = Batch.from_data_list(slim)
        out = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "entity_index": entity_index,
            "node_concept_ids": batch.concept_ids,
            "node_type": batch.node_type,
            "node_batch": batch.batch if batch.batch is not None else torch.zeros(0, dtype=torch.long),
            "edge_index": batch.edge_index,
            "edge_type": batch.edge_type,
        }
        if with_tt:
            out["token_type_ids"] = token_type_ids
        if any(getattr(g, "paths", None) is not None for g in graphs):
            out.update(self._paths(graphs))
        if any(f.get("label") is not None for f in feats):
            out["labels"] = torch.tensor([IGNORE_INDEX if f.get("label") is None else int(f["label"]) for f in feats],
                                         dtype=torch.long)
        return out

    def _tokenised(self, f: Mapping[str, Any]) -> Mapping[str, Any]:
        if "input_ids" in f:
            return f
        missing = [k for k in ("question", "choices", "groundings", "subgraphs") if k not in f]
        if missing:
            raise ValueError(f"feature lacks {missing}: give build_features output or raw question/choices/groundings/subgraphs")
        return build_features(f["question"], f["choices"], f["groundings"], f["subgraphs"], self.tokenizer,
                              max_length=self.max_length, label=f.get("label"), stats=self.stats)

    @staticmethod
    def _paths(graphs: Sequence[Any]) -> dict[str, Tensor]:
        width = max((g.paths.shape[1] for g in graphs if getattr(g, "paths", None) is not None), default=1)
        ps, rs, ls = [], [], []
        offset = 0
        for g in graphs:
            p = getattr(g, "paths", None)
            if p is not None and p.shape[0]:
                p = _pad_paths(p.long(), width)
                r = g.path_rels.long()
                if r.shape[1] < width - 1:
                    r = torch.cat((r, r.new_zeros(r.shape[0], width - 1 - r.shape[1])), 1)
                ps.append(p + offset)
                rs.append(r)
                ls.append(g.path_len.long().view(-1))
            offset += int(g.num_nodes or 0)
        if not ps:
            return {"paths": torch.zeros(0, width, dtype=torch.long),
                    "path_rels": torch.zeros(0, max(width - 1, 0), dtype=torch.long),
                    "path_len": torch.zeros(0, dtype=torch.long)}
        return {"paths": torch.cat(ps), "path_rels": torch.cat(rs), "path_len": torch.cat(ls)}
