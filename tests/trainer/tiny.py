"""A tiny random BERT saved as a sentence-transformers folder (mean pooling, L2 norm, E5 prompts), for tests.

Its word-level tokenizer knows every word of the texts it is built from (CJK ideographs one per token, as BERT
splits them), so training on those texts changes embeddings the way it would for a real model, in milliseconds.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _tokenizer(texts: Iterable[str], max_length: int):
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(handle_chinese_chars=True, lowercase=True, strip_accents=False)
    pre = pre_tokenizers.BertPreTokenizer()
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t))})
    vocab = {w: i for i, w in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )
    return fast


def make_tiny_model(
    folder: Path,
    texts: Iterable[str],
    seed: int = 0,
    dim: int = 32,
    layers: int = 2,
    max_length: int = 128,
    dropout: float = 0.1,
) -> Path:
    """Write a tiny sentence-transformers model to ``folder`` and return it."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from transformers import BertConfig, BertModel

    texts = list(texts) + list(PROMPTS.values()) + ["Instruct: Query:"]
    tokenizer = _tokenizer(texts, max_length)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=dim,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * dim,
        max_position_embeddings=max_length,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=0,
        architectures=["BertModel"],
    )
    parts = folder.parent / f".{folder.name}-parts"
    BertModel(config).save_pretrained(parts)
    tokenizer.save_pretrained(parts)
    model = SentenceTransformer(
        modules=[
            modules.Transformer(str(parts), max_seq_length=max_length),
            modules.Pooling(dim, "mean"),
            modules.Normalize(),
        ],
        prompts=dict(PROMPTS),
        device="cpu",
        similarity_fn_name="cosine",
    )
    model.save(str(folder), create_model_card=False)
    shutil.rmtree(parts)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg))
    return folder
