"""The multilingual suite: DDTP cross-lingual retrieval (one direction at a time, and a mixed-language folder),
NTREX-128 bitext mining and STSb-multi-MT, one report.

One encoder is loaded once and shared by the parts. The retrieval parts go through the product's indexer (like
``e5search eval``); bitext and STS call the encoder directly, since they are not retrieval over an index. Sizes
are parameters so CI and a 2-core CPU can run a reduced suite; a reduced size is always a seeded random sample,
never the first N, and the report says which sizes ran.

The ``folder`` part (:mod:`eval.crosslingual`) holds documents of seven languages in one index and asks each
query in language X for its answer in language Y, for 25 pairs: BM25, dense and hybrid nDCG@10 per pair, and the
gate of issue 14 (hybrid >= max(BM25, dense) - 0.5 points on every pair, >= dense on the mean). Its ``test``
split only: ``dev`` fitted the fusion weights (``bench/fit_fusion.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, cast

from eval import bitext, crosslingual, ddtp, folder, sts
from eval.run import EvalConfig, evaluate_config
from indexer.config import DEFAULT_MODEL, EncoderBackend, FusionMode, ModelConfig
from indexer.encoding.encoder import TextEncoder
from indexer.errors import ConfigError

logger = logging.getLogger(__name__)

Part = Literal["xling", "folder", "bitext", "sts"]
PARTS: tuple[Part, ...] = ("xling", "folder", "bitext", "sts")
XLING_METRICS = ("ndcg@10", "recall@100", "mrr@10")


def default_data_root() -> Path:
    """``$E5SEARCH_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("E5SEARCH_DATA", "").strip()
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class SuiteConfig:
    parts: tuple[Part, ...] = PARTS
    model: str = DEFAULT_MODEL
    xling_languages: tuple[str, ...] = ()  # empty: every DDTP language with >= 1k translations
    xling_queries: int = ddtp.N_QUERIES
    xling_docs: int = ddtp.N_DOCS
    xling_min_translations: int = ddtp.MIN_TRANSLATIONS
    xling_retrievers: tuple[str, ...] = ("bm25", "dense")
    folder_queries: int = crosslingual.CrossLingualConfig.queries_per_pair  # per language pair and split
    folder_distractors: int = crosslingual.CrossLingualConfig.distractors_per_lang
    fusion: FusionMode = "weighted"  # how the folder part's hybrid fuses its lists
    bitext_languages: tuple[str, ...] = bitext.DEFAULT_LANGUAGES
    bitext_sentences: int | None = None  # None: all 1,997; else a seeded random sample
    sts_languages: tuple[str, ...] = ()  # empty: all 11
    sts_pairs: int | None = None  # None: all 1,379; else a seeded random sample per language
    seed: int = 0
    batch_size: int = 32
    backend: EncoderBackend = "auto"

    def __post_init__(self) -> None:
        bad = [p for p in self.parts if p not in PARTS]
        if bad or not self.parts:
            raise ConfigError(f"parts={list(self.parts)}: choose from {', '.join(PARTS)}")
        if self.xling_queries < 1 or self.xling_docs < self.xling_queries:
            raise ConfigError(
                f"xling_queries={self.xling_queries}, xling_docs={self.xling_docs}: need 1 <= queries <= docs"
            )


def run_xling(
    encoder: TextEncoder, data_root: Path, work_dir: Path, config: SuiteConfig, show_progress: bool = False
) -> dict[str, dict]:
    """``{"de-en": {retriever: {metric: value}}, ...}`` over the DDTP datasets, built into ``work_dir``."""
    src = data_root / "debian-ddtp"
    folder = work_dir / f"ddtp-q{config.xling_queries}-d{config.xling_docs}-s{config.seed}"
    paths = ddtp.build_all(
        src,
        folder,
        list(config.xling_languages) or None,
        config.xling_queries,
        config.xling_docs,
        config.seed,
        config.xling_min_translations,
    )
    eval_config = EvalConfig(
        retrievers=config.xling_retrievers,
        model=config.model,
        seed=config.seed,
        batch_size=config.batch_size,
        backend=config.backend,
        n_resamples=1000,
    )
    out: dict[str, dict] = {}
    for name in sorted(paths):
        result = evaluate_config(
            paths[name],
            eval_config,
            index_cache_dir=work_dir / "indexes",
            encoder=encoder,
            show_progress=show_progress,
        )
        out[name] = {
            "n_queries": result["n_queries"],
            "n_docs": result["n_docs"],
            **{r: {m: row[m] for m in XLING_METRICS} for r, row in result["results"].items()},
        }
        logger.info(
            "xling %s: %s", name, {r: round(out[name][r]["ndcg@10"], 3) for r in config.xling_retrievers}
        )
    return out


def run_folder(
    encoder: TextEncoder, data_root: Path, work_dir: Path, config: SuiteConfig, show_progress: bool = False
) -> dict:
    """The cross-lingual folder part (:func:`eval.folder.run_folder`) at the sizes ``config`` names."""
    build = crosslingual.CrossLingualConfig(
        queries_per_pair=config.folder_queries,
        distractors_per_lang=config.folder_distractors,
        seed=config.seed,
    )
    eval_config = EvalConfig(
        model=config.model,
        seed=config.seed,
        batch_size=config.batch_size,
        backend=config.backend,
        fusion=config.fusion,
    )
    return folder.run_folder(encoder, data_root / "debian-ddtp", work_dir, build, eval_config, show_progress)


def run_suite(
    out_dir: str | Path,
    config: SuiteConfig = SuiteConfig(),
    *,
    data_root: str | Path | None = None,
    work_dir: str | Path | None = None,
    encoder: TextEncoder | None = None,
    show_progress: bool = False,
) -> dict:
    """Run the parts ``config`` names; write ``out_dir/multilingual.json`` and ``out_dir/multilingual.md``."""
    from indexer.cache import cache_home

    out_dir = Path(out_dir)
    data_root = Path(data_root) if data_root else default_data_root()
    work_dir = Path(work_dir) if work_dir else cache_home() / "eval-suite"
    if encoder is None:
        from indexer.encoding.encoder import Encoder

        model = ModelConfig(model=config.model, batch_size=config.batch_size, backend=config.backend)
        encoder = cast(TextEncoder, Encoder(model))
    result: dict = {
        "config": {
            **asdict(config),
            "encoder": encoder.describe(),
            "data_root": str(data_root),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        }
    }
    if "xling" in config.parts:
        result["xling"] = run_xling(encoder, data_root, work_dir, config, show_progress)
    if "folder" in config.parts:
        result["folder"] = run_folder(encoder, data_root, work_dir, config, show_progress)
    if "bitext" in config.parts:
        result["bitext"] = bitext.bitext_mining(
            encoder,
            data_root / "ntrex-128",
            config.bitext_languages,
            config.bitext_sentences,
            seed=config.seed,
        )
    if "sts" in config.parts:
        result["sts"] = sts.sts_benchmark(
            encoder,
            data_root / "stsb-multi-mt",
            config.sts_languages or None,
            max_pairs=config.sts_pairs,
            seed=config.seed,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "multilingual.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out_dir / "multilingual.md").write_text(suite_markdown(result) + "\n", encoding="utf-8")
    return result


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _xling_md(xling: dict[str, dict], retrievers: Sequence[str]) -> list[str]:
    head = ["dataset", "queries", "docs"] + [f"{r} {m}" for r in retrievers for m in ("nDCG@10", "R@100")]
    lines = [
        "## Cross-lingual retrieval (DDTP)",
        "",
        "Queries: short descriptions in the first language; corpus: long descriptions in the second; one "
        "relevant document per query. Scores ×100.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, row in sorted(xling.items()):
        cells = [name, str(row["n_queries"]), str(row["n_docs"])]
        cells += [f"{100 * row[r][m]:.1f}" for r in retrievers for m in ("ndcg@10", "recall@100")]
        lines.append("| " + " | ".join(cells) + " |")
    means = [
        f"{100 * _mean([row[r][m] for row in xling.values()]):.1f}"
        for r in retrievers
        for m in ("ndcg@10", "recall@100")
    ]
    lines += ["| **mean** | | | " + " | ".join(means) + " |", ""]
    return lines


def _bitext_md(rows: dict[str, dict]) -> list[str]:
    lines = [
        "## Bitext mining (NTREX-128)",
        "",
        "Accuracy (%) of finding each sentence's translation among all sentences of the other language by "
        "cosine nearest neighbour.",
        "",
        "| language | code | xx→en | en→xx | mean | sentences |",
        "|---|---|---|---|---|---|",
    ]
    for code, r in rows.items():
        lines.append(
            f"| {r['name']} | {code} | {100 * r['xx->en']:.1f} | {100 * r['en->xx']:.1f} | "
            f"{100 * r['mean']:.1f} | {r['n']} |"
        )
    lines += [f"| **mean** | | | | {100 * _mean([r['mean'] for r in rows.values()]):.1f} | |", ""]
    return lines


def _sts_md(rows: dict[str, dict]) -> list[str]:
    lines = [
        "## STS (STSb-multi-MT, test)",
        "",
        "Spearman ×100 between cosine similarity and gold scores.",
        "",
        "| language | Spearman | pairs |",
        "|---|---|---|",
    ]
    lines += [f"| {lang} | {r['spearman']:.1f} | {r['n']} |" for lang, r in rows.items()]
    lines += [f"| **mean** | {_mean([r['spearman'] for r in rows.values()]):.1f} | |", ""]
    return lines


def suite_markdown(result: dict) -> str:
    cfg = result["config"]
    enc = cfg.get("encoder", {})
    lines = [
        "# Multilingual evaluation",
        "",
        f"Model `{enc.get('model')}` (fingerprint `{enc.get('fingerprint')}`); {cfg.get('date')}, "
        f"{cfg.get('machine')}. Sizes: DDTP {cfg['xling_queries']} queries / {cfg['xling_docs']} documents "
        f"per dataset, folder {cfg.get('folder_queries')} queries per pair, NTREX "
        f"{cfg['bitext_sentences'] or 'all'} sentences, STS {cfg['sts_pairs'] or 'all'} pairs per language "
        f"(reduced sizes are seeded random samples, seed {cfg.get('seed')}).",
        "",
    ]
    if "xling" in result:
        lines += _xling_md(result["xling"], cfg["xling_retrievers"])
    if "folder" in result:
        lines += folder.folder_markdown(result["folder"])
    if "bitext" in result:
        lines += _bitext_md(result["bitext"])
    if "sts" in result:
        lines += _sts_md(result["sts"])
    return "\n".join(lines)
