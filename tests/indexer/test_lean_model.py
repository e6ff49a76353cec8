"""Loading a model folder without sentence-transformers (indexer/models/lean.py, indexer/models/bert.py): which
folders qualify, the lean forward against transformers' BERT and XLM-R models, and that a lean model gives the
token ids and the vectors sentence-transformers gives, on a tiny BERT and on the real default model; an index run
then imports neither sentence-transformers nor transformers' modelling code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.models.lean import LeanModel, folder_pipeline, load_lean
from tests.indexer.test_encoder_backends import MULTILINGUAL

ROOT = Path(__file__).resolve().parents[2]
EDGE_CASES = [
    "",  # an empty chunk text
    "   leading and trailing spaces   ",
    "Zero\u200bwidth and\u00a0no-break spaces, tabs\tand\nnew lines",
    "🐝 emoji, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 letters and an Arabic\u200f mark",
    "Truncated: " + "langer Satz über Bienen und Honig. " * 200,  # beyond max_seq_length
]


# ------------------------------------------------------------------------------------- which folders qualify
def _folder(tmp_path: Path, **change) -> Path:
    """A sentence-transformers 6 folder of a BERT with mean pooling (configs only), with ``change`` applied:
    ``modules`` / ``pooling`` / ``st_config`` / ``config`` replace a file's content, ``drop`` removes a file,
    ``add`` writes one."""
    files = {
        "modules.json": change.get(
            "modules",
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "",
                    "type": "sentence_transformers.base.modules.transformer.Transformer",
                },
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Pooling",
                    "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
                },
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.base.modules.normalize.Normalize",
                },
            ],
        ),
        "1_Pooling/config.json": change.get(
            "pooling", {"embedding_dimension": 8, "pooling_mode": "mean", "include_prompt": True}
        ),
        "sentence_bert_config.json": change.get(
            "st_config",
            {
                "transformer_task": "feature-extraction",
                "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
                "module_output_name": "token_embeddings",
            },
        ),
        "config.json": change.get("config", {"model_type": "bert", "hidden_act": "gelu"}),
        "model.safetensors": {},
        "tokenizer.json": {},
        **change.get("add", {}),
    }
    for name, content in files.items():
        if name in change.get("drop", ()):
            continue
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps(content), encoding="utf-8")
    return tmp_path


OLD_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]
OLD_CLS = {"word_embedding_dimension": 8, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}


def test_plain_folders_qualify_in_both_config_formats(tmp_path):
    assert folder_pipeline(_folder(tmp_path / "new")) == ("mean", None)
    old = _folder(
        tmp_path / "old",
        modules=OLD_MODULES,
        pooling=OLD_CLS,
        st_config={"max_seq_length": 128, "do_lower_case": False},
        config={"model_type": "xlm-roberta", "hidden_act": "gelu"},
    )
    assert folder_pipeline(old) == ("cls", 128)


@pytest.mark.parametrize(
    "change",
    [
        {"pooling": {"pooling_mode": "max", "include_prompt": True}},
        {"pooling": {"pooling_mode": "mean", "include_prompt": False}},  # prompt tokens left out of the mean
        {
            "pooling": {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}
        },  # two modes concatenated
        {"st_config": {"max_seq_length": 256, "do_lower_case": True}},
        {"st_config": {"max_seq_length": 256, "tokenizer_args": {"add_prefix_space": True}}},
        {"st_config": {"transformer_task": "text-generation"}},
        {
            "modules": [
                *OLD_MODULES,
                {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
            ]
        },
        {"config": {"model_type": "t5"}},
        {"drop": ["tokenizer.json"]},
        {"drop": ["model.safetensors"]},  # pytorch_model.bin only
        {"drop": ["modules.json"]},
        {"add": {"adapter_config.json": {"peft_type": "LORA"}}},
    ],
    ids=[
        "max",
        "no-prompt",
        "two-modes",
        "lower-case",
        "tokenizer-args",
        "task",
        "dense",
        "t5",
        "no-tokenizer-json",
        "no-safetensors",
        "no-modules",
        "peft",
    ],
)
def test_anything_beyond_the_plain_text_path_loads_through_sentence_transformers(tmp_path, change):
    assert folder_pipeline(_folder(tmp_path, **change)) is None


def test_a_hub_id_or_a_gpu_device_is_not_loaded_lean(tmp_path):
    assert load_lean("intfloat/multilingual-e5-small", None) is None
    assert load_lean(str(_folder(tmp_path)), "cuda") is None


# ----------------------------------------------------------------------------- the forward vs transformers'
@pytest.mark.parametrize("model_type", ["bert", "xlm-roberta"])
def test_the_lean_forward_equals_transformers_model_on_padded_batches(tmp_path, model_type):
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    from indexer.models.bert import BertEncoder, unsupported

    config_class, model_class = (
        (BertConfig, BertModel) if model_type == "bert" else (XLMRobertaConfig, XLMRobertaModel)
    )
    config = config_class(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
        pad_token_id=1,
        type_vocab_size=2,
        hidden_act="gelu",
    )
    torch.manual_seed(0)
    model_class(config).eval().save_pretrained(tmp_path)
    reference = model_class.from_pretrained(tmp_path).eval()
    saved = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert unsupported(saved, tmp_path) is None
    ours = BertEncoder(tmp_path, saved)
    lengths = [30, 17, 3]  # padded to the longest, as the CPU batches are
    ids = torch.full((3, 30), 1, dtype=torch.long)
    mask = torch.zeros((3, 30), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(3, 99, (n,))
        mask[row, :n] = 1
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state  # (3, 30, 32)
        got = ours(ids, mask)
        alone = ours(ids[1:2, :17], None)  # one unpadded text, unmasked attention
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(alone[0], expected[1, :17], atol=2e-5, rtol=1e-4)


def test_configs_the_lean_forward_cannot_run_are_named(tmp_path):
    from indexer.models.bert import unsupported

    (tmp_path / "model.safetensors").write_bytes(b"")
    plain = {"model_type": "bert", "hidden_act": "gelu"}
    assert unsupported(plain, tmp_path) is None
    assert "absolute positions" in unsupported({**plain, "position_embedding_type": "relative_key"}, tmp_path)
    assert "exact GELU" in unsupported({**plain, "hidden_act": "gelu_new"}, tmp_path)
    assert "fp32 weights" in unsupported({**plain, "dtype": "float16"}, tmp_path)
    assert "an encoder only" in unsupported({**plain, "is_decoder": True}, tmp_path)
    assert "model type" in unsupported({**plain, "model_type": "mpnet"}, tmp_path)
    assert "one safetensors file" in unsupported(plain, tmp_path / "elsewhere")


# ---------------------------------------------------------------------------------- same ids, same vectors
def _agree(lean: LeanModel, st, texts: list[str], tolerance: float) -> None:
    from indexer.encoding.runners import TorchRunner
    from indexer.tokens import token_ids

    assert (lean.prompts, lean.max_seq_length) == (st.prompts, st.max_seq_length)
    assert lean.get_embedding_dimension() == st.get_embedding_dimension()
    prompted = [lean.prompts["passage"] + t for t in texts]
    lean_ids, st_ids = token_ids(lean, prompted), token_ids(st, prompted)
    assert [ids.tolist() for ids in lean_ids] == [ids.tolist() for ids in st_ids]
    assert max(len(ids) for ids in lean_ids) == lean.max_seq_length  # the long text was truncated
    ours = TorchRunner(lean, "mean").embed(lean_ids)  # (n, dim)
    reference = st.encode(prompted, normalize_embeddings=True, convert_to_numpy=True)  # (n, dim)
    assert np.sum(ours * reference, axis=1).min() > tolerance


def test_a_tiny_bert_gives_sentence_transformers_ids_and_vectors(tmp_path):
    from sentence_transformers import SentenceTransformer

    from tests.trainer.tiny import make_tiny_model

    folder = make_tiny_model(tmp_path / "tiny", MULTILINGUAL + EDGE_CASES, dropout=0.1)
    lean = load_lean(str(folder), "cpu")
    assert isinstance(lean, LeanModel) and not lean.auto_model.training  # dropout off
    _agree(lean, SentenceTransformer(str(folder), device="cpu"), MULTILINGUAL + EDGE_CASES, 0.99999)


def test_weights_the_lean_forward_cannot_read_load_through_sentence_transformers(tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from indexer.encoding.encoder import _load
    from tests.trainer.tiny import make_tiny_model

    folder = make_tiny_model(tmp_path / "tiny", MULTILINGUAL, dropout=0.0)
    renamed = tmp_path / "renamed"
    shutil.copytree(folder, renamed)
    weights = load_file(str(folder / "model.safetensors"))
    save_file(
        {k.replace("intermediate.dense", "ffn.up"): v for k, v in weights.items()},
        str(renamed / "model.safetensors"),
    )
    assert folder_pipeline(renamed) is not None  # the configs qualify; the weights do not
    assert load_lean(str(renamed), "cpu") is None
    assert type(_load(str(renamed), "cpu")).__name__ == "SentenceTransformer"


@pytest.mark.model
def test_the_default_model_gives_sentence_transformers_ids_and_vectors(default_model_path):
    from sentence_transformers import SentenceTransformer

    lean = load_lean(str(default_model_path), "cpu")
    assert isinstance(lean, LeanModel)
    _agree(
        lean, SentenceTransformer(str(default_model_path), device="cpu"), MULTILINGUAL + EDGE_CASES, 0.99999
    )


@pytest.mark.model
def test_an_index_run_never_imports_sentence_transformers(default_model_path, tmp_path):
    """The whole CLI path (start-up, model, encoding, writing, a search) under ``-X importtime``."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bees.md").write_text("# Bienen\n\nBienen machen Honig aus Nektar.", encoding="utf-8")
    (docs / "mi.txt").write_text("蜜蜂采集花蜜并酿成蜂蜜。", encoding="utf-8")
    env = {"E5SEARCH_HOME": str(default_model_path.parents[1]), "PATH": "/usr/bin:/bin"}
    runs = [
        ["index", str(docs), "--index", str(tmp_path / "idx"), "--backend", "torch"],
        ["search", "how do bees make honey", "--index", str(tmp_path / "idx"), "--mode", "dense", "--json"],
    ]
    for args in runs:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "e5search", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        imported = {
            line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "import time:" in line
        }
        assert "transformers" in imported  # the check sees the model's own imports
        assert not {m for m in imported if m.split(".")[0] in ("sentence_transformers", "sklearn")}, args
        assert "transformers.modeling_utils" not in imported, args  # the lean forward runs the model
    assert "bees.md" in done.stdout
