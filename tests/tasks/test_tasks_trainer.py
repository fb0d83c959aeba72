"""The fused model trains under Hugging Face's ``Trainer`` with kgfuse's dataset and collator
(the recipe of docs/tasks.md, "Training with transformers' Trainer")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgfuse.tasks.cli import data_dir

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    from kgfuse.tasks.config import ModelConfig
    from kgfuse.tasks.datasets import load_examples
    from kgfuse.tasks.features import MultipleChoiceCollator
    from kgfuse.tasks.pipeline import MCFeatureDataset, build_linker, build_model, build_retriever, load_graph, preprocess

    cache = tmp_path_factory.mktemp("cache")
    graph = load_graph({"path": str(data_dir() / "sample_kg/assertions.csv")})
    linker = build_linker(graph)
    retriever = build_retriever(graph, {"type": "path", "max_hops": 2, "max_paths": 10})
    torch.manual_seed(0)
    model, tokenizer = build_model(
        ModelConfig(options={"text_config": TINY, "num_fusion_layers": 1, "node_dim": 16, "graph_hidden_dim": 16}), graph)
    sets = {}
    for split in ("train", "dev"):
        exs, _ = load_examples(data_dir() / f"sample_csqa/{split}.jsonl")
        sets[split] = MCFeatureDataset(exs, preprocess(exs, graph, linker, retriever, cache), tokenizer, max_length=40)
    return model, tokenizer, sets, MultipleChoiceCollator(tokenizer, max_length=40)


def test_fused_model_trains_under_trainer(parts, tmp_path):
    from transformers import Trainer, TrainingArguments

    model, _, sets, collator = parts
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        remove_unused_columns=False,  # keep the subgraphs ("graphs", "entity_local") for the collator
        per_device_train_batch_size=4,
        per_device_eval_batch_size=12,
        gradient_accumulation_steps=2,
        learning_rate=1e-3,
        max_steps=3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )

    def accuracy(p):
        return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())}

    before = {n: t.detach().clone() for n, t in model.named_parameters()}
    trainer = Trainer(model=model, args=args, train_dataset=sets["train"], eval_dataset=sets["dev"],
                      data_collator=collator, compute_metrics=accuracy)
    assert trainer.label_names == ["labels"]
    assert trainer.model_accepts_loss_kwargs is False
    out = trainer.train()
    assert out.global_step == 3 and math.isfinite(out.training_loss)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(x) and 0 < x < 10 for x in losses)  # ~log(5) per question
    changed = {n.split(".")[0] for n, t in model.named_parameters() if not torch.equal(t.detach(), before[n])}
    # every part moves: text encoder, node table, graph encoder, fusion and the scorer
    every = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert changed == every and {"text_encoder", "node_embeddings", "graph_encoder", "classifier"} <= every
    m = trainer.evaluate()
    pred = trainer.predict(sets["dev"])
    assert pred.predictions.shape == (12, 5)
    # the Trainer's evaluation is the model's own on the collated dev set
    model.eval()
    with torch.no_grad():
        direct = model(**collator([sets["dev"][i] for i in range(len(sets["dev"]))]))
    labels = [sets["dev"][i]["label"] for i in range(len(sets["dev"]))]
    assert pred.label_ids.tolist() == labels
    assert np.allclose(pred.predictions, direct.logits.numpy(), atol=1e-5)
    assert m["eval_accuracy"] == pytest.approx(float((direct.logits.argmax(-1).numpy() == np.array(labels)).mean()))
    assert m["eval_loss"] == pytest.approx(direct.loss.item(), rel=1e-5)


def test_trainer_with_kgfuse_learning_rates_saves_an_auto_loadable_model(parts, tmp_path):
    from transformers import AutoModelForMultipleChoice, Trainer, TrainingArguments

    from kgfuse.tasks.config import OptimConfig
    from kgfuse.tasks.train import build_param_groups

    model, _, sets, collator = parts
    opt = torch.optim.AdamW(build_param_groups(model, OptimConfig(lr_lm=1e-4, lr_gnn=1e-3, lr_fusion=1e-3)))
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), remove_unused_columns=False, per_device_train_batch_size=4,
                             max_steps=1, save_strategy="no", report_to="none", use_cpu=True, lr_scheduler_type="constant")
    trainer = Trainer(model=model, args=args, train_dataset=sets["train"], data_collator=collator, optimizers=(opt, None))
    trainer.train()
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["lm"] == pytest.approx(1e-4) and lrs["gnn"] == pytest.approx(1e-3) and lrs["fusion"] == pytest.approx(1e-3)
    trainer.save_model(str(tmp_path / "saved"))
    loaded = AutoModelForMultipleChoice.from_pretrained(str(tmp_path / "saved")).eval()
    assert type(loaded) is type(model)
    batch = collator([sets["dev"][i] for i in range(2)])
    batch.pop("labels")
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(**batch).logits, model(**batch).logits, atol=1e-5)
