"""Features and collation for :class:`kgfuse.fusion.KGFusedForMultipleChoice`.

:func:`build_features` tokenises each (question, choice) pair (question = segment A,
choice = segment B) with a fast tokenizer and aligns every mention to the first sub-token
whose character span overlaps it (from the tokenizer's ``offset_mapping``); that token gets
the local index of the mention's concept in the choice's subgraph. With ``knowledge`` (text
from :class:`kgfuse.kg.verbalize.Verbalizer`), the knowledge follows the pair as one more
span (:func:`append_knowledge`). :class:`MultipleChoiceCollator`
pads a list of such features into the flat tensors the model takes (contract 4): text
tensors ``[B, C, L]``, the subgraphs of all ``B * C`` statements concatenated PyG-style
(``torch_geometric.data.Batch``), and ``entity_index`` rewritten to batch-global node indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["build_features", "align_mentions", "append_knowledge", "MultipleChoiceCollator", "AlignmentStats",
           "IGNORE_INDEX"]

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


def append_knowledge(enc: Any, knowledge: str | Sequence[str], tokenizer: Any,
                     max_length: int | None) -> tuple[list[int], list[int], list[int] | None, str]:
    """Append knowledge text to a tokenised (question, choice) pair.

    The pair is ``enc``, the tokenizer's encoding of ``(question, choice)`` (question =
    segment A, choice = segment B). The knowledge follows the choice as a third span, joined
    with the tokenizer's own separators: for BERT ``[CLS] question [SEP] choice [SEP]
    knowledge [SEP]``, for RoBERTa ``<s> question </s></s> choice </s></s> knowledge </s>``
    (the separator between two segments, then the knowledge, then the closing token). With
    ``token_type_ids`` the knowledge shares the choice's segment (type 1): BERT-family
    checkpoints have two token types, and a third would need a new, untrained embedding.

    Only the knowledge is cut to fit ``max_length``: the pair's tokens (and so every
    mention alignment) are exactly those of the pair without knowledge. ``knowledge`` is one
    string or a list of sentences, cut by whole sentences: taken in order while they fit in
    the room left, a sentence that does not fit is skipped (a string is one sentence). A pair
    that leaves no room, or no knowledge, gives the pair unchanged.

    Returns:
        ``(input_ids, attention_mask, token_type_ids or None, knowledge text kept)``; the
        knowledge tokens are inserted right after the last choice token.
    """
    ids = list(enc["input_ids"])
    mask = list(enc["attention_mask"])
    tt = list(enc["token_type_ids"]) if "token_type_ids" in enc else None
    units = [knowledge] if isinstance(knowledge, str) else list(knowledge)
    units = [" ".join(u.split()) for u in units if u and u.strip()]
    seq = enc.sequence_ids()
    seg0 = [i for i, s in enumerate(seq) if s == 0]
    seg1 = [i for i, s in enumerate(seq) if s == 1]
    if not units or not seg0 or not seg1:
        return ids, mask, tt, ""
    last0, first1, last1 = seg0[-1], seg1[0], seg1[-1]
    mid = ids[last0 + 1:first1]  # what separates two segments ([SEP]; </s></s>)
    end = ids[last1 + 1:]  # what closes the last one ([SEP]; </s>)
    room = None if max_length is None else max_length - len(ids) - len(mid)
    if room is not None and room <= 0:
        return ids, mask, tt, ""
    if room is not None:
        counts = [len(x) for x in tokenizer(units, add_special_tokens=False)["input_ids"]]
        chosen, used = [], 0
        for u, n in zip(units, counts):
            if used + n <= room:
                chosen.append(u)
                used += n
        units = chosen
    while units:
        kept = " ".join(units)
        kids = list(tokenizer(kept, add_special_tokens=False)["input_ids"])
        if room is None or len(kids) <= room:
            break
        units = units[:-1]  # joined text tokenised longer than its sentences (rare with BPE)
    if not units or not kids:
        return ids, mask, tt, ""
    ids = ids[:last1 + 1] + mid + kids + end
    mask = mask[:last1 + 1] + [1] * (len(mid) + len(kids)) + mask[last1 + 1:]
    if tt is not None:
        tt = tt[:last1 + 1] + [tt[first1]] * (len(mid) + len(kids)) + tt[last1 + 1:]
    return ids, mask, tt, kept


def build_features(question: str, choices: Sequence[str], groundings: Sequence[Any], subgraphs: Sequence[Any],
                   tokenizer: Any, *, max_length: int | None = None, label: int | None = None,
                   stats: AlignmentStats | None = None,
                   knowledge: Sequence[str | Sequence[str] | None] | None = None) -> dict[str, Any]:
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
        knowledge: knowledge text per choice (a string, a list of sentences or ``None``),
            appended after the pair by :func:`append_knowledge`; the pair is never cut for it.

    Returns:
        ``{"input_ids", "attention_mask", ["token_type_ids"], "entity_local", "graphs",
        ["knowledge"], ["label"]}``: lists with one entry per choice; ``entity_local[j][t]`` is
        the local node index (in ``graphs[j]``) of the concept aligned to token ``t``, or
        ``-1`` (always ``-1`` on knowledge tokens); ``knowledge[j]`` is the knowledge text
        that made it into the input (after cutting), present when ``knowledge`` is given.
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
    if knowledge is not None and len(knowledge) != len(choices):
        raise ValueError(f"got {len(choices)} choices and {len(knowledge)} knowledge texts; expected one per choice")
    feats: dict[str, Any] = {"input_ids": [], "attention_mask": [], "entity_local": [], "graphs": list(subgraphs)}
    if knowledge is not None:
        feats["knowledge"] = []
    with_tt = None
    for j, (choice, grounding, g) in enumerate(zip(choices, groundings, subgraphs)):
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
        seq = enc.sequence_ids()
        ent = align_mentions(enc["offset_mapping"], seq, grounding.mentions, c2n, stats)
        ids, mask, tt = list(enc["input_ids"]), list(enc["attention_mask"]), enc.get("token_type_ids")
        if knowledge is not None:
            n_pair = len(ids)
            ids, mask, tt, kept = append_knowledge(enc, knowledge[j] or (), tokenizer, max_length)
            if len(ids) > n_pair:  # knowledge tokens sit after the last choice token: no entity there
                at = max(i for i, s in enumerate(seq) if s == 1) + 1
                ent = ent[:at] + [-1] * (len(ids) - n_pair) + ent[at:]
            feats["knowledge"].append(kept)
        feats["input_ids"].append(ids)
        feats["attention_mask"].append(mask)
        feats["entity_local"].append(ent)
        if with_tt is None:
            with_tt = "token_type_ids" in enc
            if with_tt:
                feats["token_type_ids"] = []
        if with_tt:
            feats["token_type_ids"].append(list(tt))
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
    ``choices``, ``groundings``, ``subgraphs`` (and optional ``label`` and ``knowledge``), which are
    tokenised here with ``max_length``. Text is padded to the longest pair of the batch
    (or to ``pad_to_multiple_of``).

    Returns a dict of tensors: ``input_ids``, ``attention_mask``, (``token_type_ids``),
    ``entity_index`` ``[B, C, L]``; ``node_concept_ids``, ``node_type``, ``node_batch`` ``[N]``;
    ``edge_index`` ``[2, E]``, ``edge_type`` ``[E]``; ``paths``/``path_rels``/``path_len``
    when any subgraph has paths; ``node_score`` ``[N]`` float32 when the subgraphs carry
    relevance scores (``SubgraphRetriever(ranking="relevance")``; a subgraph with nodes but
    no scores in such a batch is an error); ``labels`` ``[B]`` when any feature has a ``label``, with
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
        missing = [k for k in ("graphs", "entity_local") if any(k not in f for f in feats)]
        if missing:
            raise ValueError(f"features lack {missing}: give the collator whole build_features dicts (with transformers' "
                             "Trainer: TrainingArguments(remove_unused_columns=False))")
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
        scored = any(getattr(g, "node_score", None) is not None for g in graphs)
        slim = []
        for k, g in enumerate(graphs):
            n = int(g.num_nodes or 0)
            ei = g.edge_index if getattr(g, "edge_index", None) is not None else torch.zeros(2, 0, dtype=torch.long)
            et = g.edge_type if getattr(g, "edge_type", None) is not None else torch.zeros(0, dtype=torch.long)
            d = Data(concept_ids=g.concept_ids.view(-1).long(), node_type=g.node_type.view(-1).long(),
                     edge_index=ei.long(), edge_type=et.long(), num_nodes=n)
            if scored:
                d.node_score = self._node_score(g, n, k, C)
            slim.append(d)
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
        if scored:
            out["node_score"] = batch.node_score
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
                              max_length=self.max_length, label=f.get("label"), stats=self.stats,
                              knowledge=f.get("knowledge"))

    @staticmethod
    def _node_score(g: Any, n: int, k: int, C: int) -> Tensor:
        s = getattr(g, "node_score", None)
        if s is None:
            if n:
                raise ValueError(f"feature {k // C} choice {k % C}: a subgraph of {n} nodes without node_score in a "
                                 "batch whose other subgraphs have relevance scores (one retriever for all statements)")
            return torch.zeros(0, dtype=torch.float32)
        s = s.view(-1).float()
        if s.shape[0] != n:
            raise ValueError(f"feature {k // C} choice {k % C}: {s.shape[0]} node scores for {n} nodes")
        return s

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
