"""Cross-lingual retrieval datasets from the Debian Description Translation Project (DDTP), in BEIR layout.

Each DDTP record is a package description: a one-line ``short`` and a paragraph-long ``long``. The translations
are joined to the English originals by ``md5`` (the hash of the English description). For a language X with at
least ``MIN_TRANSLATIONS`` translations this builds two datasets:

- ``X-en``: queries are X short descriptions, the corpus is the English long descriptions;
- ``en-X``: queries are English short descriptions, the corpus is the X long descriptions;

with one relevant document per query: the same package's long description. Titles are left empty, so the only
way to a package is through its long text.

Sampling (seeded, ``random.Random(seed)``): the candidate *pool* is every package translated into X after
filtering (non-empty texts; translation differs from the English, so an untranslated entry cannot hand BM25 a
free match; no duplicate short or long text on either side, so each query has exactly one right answer). From
the shuffled pool the first ``n_docs`` packages form the corpus of both directions (the same packages, so the two
directions are comparable), and the first ``n_queries`` of those are the queries; the others are distractors.
Defaults (1,000 queries, 2,000 documents) keep a language's two directions to ~6k short texts to encode, about
5 minutes on a 2-core CPU with multilingual-e5-small.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from pathlib import Path

from eval.datasets import write_beir
from indexer.cache import file_sha256

logger = logging.getLogger(__name__)

MIN_TRANSLATIONS = 1000
N_QUERIES = 1000
N_DOCS = 2000
SPLIT = "test"


def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def translation_counts(root: str | Path) -> dict[str, int]:
    """Language code → number of translated descriptions, for every ``descriptions.{lang}.jsonl.gz`` but English."""
    out = {}
    for path in sorted(Path(root).glob("descriptions.*.jsonl.gz")):
        lang = path.name.split(".")[1]
        if lang != "en":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                out[lang] = sum(1 for line in f if line.strip())
    return out


def eligible_languages(root: str | Path, min_translations: int = MIN_TRANSLATIONS) -> list[str]:
    return [lang for lang, n in translation_counts(root).items() if n >= min_translations]


def _pool(english: dict[str, dict], translated: list[dict]) -> list[tuple[str, dict[str, dict]]]:
    """``(package, {"en": English record, "x": translated record})`` that pass the filters, in file order."""
    seen: set[tuple[str, str]] = set()
    pool = []
    for tr in translated:
        en = english.get(tr.get("md5", ""))
        if en is None:
            continue
        texts = [en["short"].strip(), en["long"].strip(), tr["short"].strip(), tr["long"].strip()]
        if not all(texts) or texts[0] == texts[2] or texts[1] == texts[3]:
            continue
        keys = [("en-short", texts[0]), ("en-long", texts[1]), ("x-short", texts[2]), ("x-long", texts[3])]
        if any(k in seen for k in keys):
            continue
        seen.update(keys)
        pool.append((en["package"], {"en": en, "x": tr}))
    return pool


def _sample(english: dict[str, dict], translated: list[dict], n_docs: int, seed: int) -> list:
    """The ``n_docs`` packages of a language's datasets (both directions): a seeded shuffle of the pool."""
    pool = _pool(english, translated)
    random.Random(seed).shuffle(pool)
    return pool[:n_docs]


def eval_md5s(
    root: str | Path,
    languages: list[str] | None = None,
    n_docs: int = N_DOCS,
    seed: int = 0,
    min_translations: int = MIN_TRANSLATIONS,
) -> set[str]:
    """The English ``md5`` of every package in any language's datasets: what training data must leave out."""
    root = Path(root)
    languages = languages or eligible_languages(root, min_translations)
    english = {r["md5"]: r for r in _read(root / "descriptions.en.jsonl.gz")}
    out: set[str] = set()
    for lang in languages:
        docs = _sample(english, _read(root / f"descriptions.{lang}.jsonl.gz"), n_docs, seed)
        out.update(sides["en"]["md5"] for _, sides in docs)
    return out


def build_language(
    root: str | Path,
    lang: str,
    out_dir: str | Path,
    n_queries: int = N_QUERIES,
    n_docs: int = N_DOCS,
    seed: int = 0,
    english: dict[str, dict] | None = None,
) -> dict[str, Path]:
    """Write ``out_dir/{lang}-en`` and ``out_dir/en-{lang}``; returns ``{"X-en": path, "en-X": path}``."""
    root, out_dir = Path(root), Path(out_dir)
    if english is None:
        english = {r["md5"]: r for r in _read(root / "descriptions.en.jsonl.gz")}
    docs = _sample(english, _read(root / f"descriptions.{lang}.jsonl.gz"), n_docs, seed)
    query_rows = docs[:n_queries]
    qrels = {SPLIT: {pkg: {pkg: 1} for pkg, _ in query_rows}}
    paths = {}
    for name, query_side, doc_side in ((f"{lang}-en", "x", "en"), (f"en-{lang}", "en", "x")):
        queries = {pkg: sides[query_side]["short"].strip() for pkg, sides in query_rows}
        corpus = {pkg: {"title": "", "text": sides[doc_side]["long"].strip()} for pkg, sides in docs}
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        paths[name] = write_beir(folder, corpus, queries, qrels)
    logger.info("ddtp %s: %d docs, %d queries", lang, len(docs), len(query_rows))
    return paths


def build_all(
    root: str | Path,
    out_dir: str | Path,
    languages: list[str] | None = None,
    n_queries: int = N_QUERIES,
    n_docs: int = N_DOCS,
    seed: int = 0,
    min_translations: int = MIN_TRANSLATIONS,
) -> dict[str, Path]:
    """Build both directions for every eligible language; writes ``out_dir/build.json`` describing the build."""
    root, out_dir = Path(root), Path(out_dir)
    counts = translation_counts(root)
    languages = languages or [lang for lang, n in counts.items() if n >= min_translations]
    if not languages:
        logger.warning("ddtp: no language has >= %d translations under %s", min_translations, root)
    english = {r["md5"]: r for r in _read(root / "descriptions.en.jsonl.gz")}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for lang in languages:
        paths.update(build_language(root, lang, out_dir, n_queries, n_docs, seed, english))
    manifest = {
        "source": str(root),
        "languages": languages,
        "translations": {lang: counts.get(lang) for lang in languages},
        "n_queries": n_queries,
        "n_docs": n_docs,
        "seed": seed,
        "min_translations": min_translations,
        "source_sha256": {
            p.name: file_sha256(p)[:16]
            for p in sorted(root.glob("descriptions.*.jsonl.gz"))
            if p.name.split(".")[1] in {"en", *languages}
        },
        "datasets": sorted(paths),
    }
    (out_dir / "build.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return paths
