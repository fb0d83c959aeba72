"""After a plain `import kgfuse`, transformers' Auto classes load kgfuse models, in whatever
order kgfuse and transformers are imported, and `import kgfuse` itself stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64, "vocab_size": 99}

CHECK = """
from transformers import AutoConfig, AutoModel, AutoModelForMultipleChoice, AutoModelForPreTraining
cfg = AutoConfig.from_pretrained(FOLDER)
model = AutoModelForMultipleChoice.from_pretrained(FOLDER)
print(type(cfg).__name__, type(model).__name__, AutoModelForPreTraining.from_config(cfg).__class__.__name__,
      type(AutoModel.from_pretrained(FOLDER)).__name__)
leftover = [n for n, m in sys.modules.items() if type(getattr(m, "__loader__", None)).__name__ == "_NotifyingLoader"]
hooks = [f for f in sys.meta_path if type(f).__name__ == "_RegistrationHook"]
print("leftover", leftover, hooks)
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from transformers import BertConfig

    from kgfuse.fusion import KGFusedForMultipleChoice

    d = tmp_path_factory.mktemp("auto") / "model"
    KGFusedForMultipleChoice.from_text_config(BertConfig(**TINY), num_concepts=6, num_relations=3,
                                              num_fusion_layers=1, node_dim=8, graph_hidden_dim=8).save_pretrained(str(d))
    return d


def _run(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def test_plain_import_kgfuse_then_transformers(folder):
    """kgfuse first; transformers' own import chain (BertModel -> modeling_utils -> generation ->
    Auto classes) loads the Auto classes half-way: registration waits for the chain to finish."""
    lines = _run(
        "import sys\n"
        "import kgfuse\n"
        "import transformers\n"
        "print('light', [m for m in ('torch', 'kgfuse.fusion.modeling') if m in sys.modules])\n"
        "from transformers import BertModel\n"
        f"FOLDER = {str(folder)!r}\n" + CHECK
    )
    assert lines[0] == "light []"
    assert lines[1] == "KGFusedConfig KGFusedForMultipleChoice KGFusedForPreTraining KGFusedModel"
    assert lines[2] == "leftover [] []"  # module loaders restored, the import hook removed


def test_transformers_imported_before_kgfuse(folder):
    lines = _run(
        "import sys\n"
        "from transformers import AutoConfig, BertModel\n"
        "import kgfuse\n"
        f"FOLDER = {str(folder)!r}\n" + CHECK
    )
    assert lines[0] == "KGFusedConfig KGFusedForMultipleChoice KGFusedForPreTraining KGFusedModel"
    assert lines[1] == "leftover [] []"


def test_register_auto_classes_explicitly():
    import kgfuse
    from transformers import AutoConfig

    kgfuse.register_auto_classes()
    assert type(AutoConfig.for_model("kgfuse")).__name__ == "KGFusedConfig"


def test_importing_the_model_module_directly(folder):
    """kgfuse.fusion.pretraining imports transformers while it is itself half-imported:
    registration waits for it to finish."""
    lines = _run(
        "import sys\n"
        "import kgfuse.fusion.pretraining\n"
        f"FOLDER = {str(folder)!r}\n" + CHECK
    )
    assert lines == ["KGFusedConfig KGFusedForMultipleChoice KGFusedForPreTraining KGFusedModel", "leftover [] []"]
