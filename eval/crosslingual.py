"""A mixed-language, folder-style retrieval set from Debian DDTP: how hybrid search fares when a query's answer
may be in another language (``e5search eval --suite multilingual``, part ``folder``; issue 14).

:mod:`eval.ddtp` measures one direction at a time against a one-language corpus. A user's folder is different: it
holds documents in several languages at once, and a query in language X may be answered by a document in X or in
another language Y. This builder writes that situation in BEIR layout:

- **corpus**: long descriptions of packages, *each package in one language only* (never its translation too, so
  exactly one document answers each query), mixing ``LANGUAGES``; titles are empty, so only the text leads to a
  package;
- **queries**: a package's short description in language X, whose answer is the package's long description in Y,
  for every pair in ``PAIRS`` (same-language, X → English, English → Y, and non-English cross pairs, same script
  and cross script);
- **splits**: ``dev`` and ``test`` qrels over disjoint packages and one shared corpus (so one index serves both),
  plus ``distractors_per_lang`` packages per language that no query asks for; and ``exact``: one-token queries
  (a name or code such as ``libunwind8`` that only one document contains), the case a lexical retriever must
  keep winning inside hybrid search.

Query ids are ``"{X}.{Y}.{md5}"``, so a per-pair breakdown needs no side table; ``meta.json`` also records
every document's language and every query's pair.

Filters (as in :mod:`eval.ddtp`, extended to all languages): non-empty texts; a translation that equals the
English is dropped (an untranslated entry would hand BM25 a free match); a short or long text that occurs under
two md5s in any language is dropped (near-duplicate package families would make a query's answer ambiguous).

Sampling is seeded (``random.Random(seed)``) and never "first N": each pair draws from the sorted pool of packages
that have both languages and are still unused, scarcest pair first so that small languages (zh_CN has ~1k
translations) are not exhausted by large ones.

Non-goals: graded relevance (one answer per query), several chunks per package (descriptions are short).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from eval.datasets import write_beir
from indexer.cache import file_sha256
from indexer.errors import ConfigError
from indexer.types import Corpus, Qrels, Queries

logger = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "ru", "ja", "zh_CN")
# (query language, document language): 7 same-language, 6 into English, 6 out of English, 6 non-English cross
# pairs (de/fr/es share a script; ru/ja/zh_CN do not share one with their partner, except ja↔zh_CN's Han).
PAIRS: tuple[tuple[str, str], ...] = (
    *((lang, lang) for lang in LANGUAGES),
    *((lang, "en") for lang in LANGUAGES if lang != "en"),
    *(("en", lang) for lang in LANGUAGES if lang != "en"),
    ("de", "fr"), ("fr", "es"), ("es", "de"), ("ru", "de"), ("ja", "zh_CN"), ("zh_CN", "ru"),
)  # fmt: skip
SPLITS: tuple[str, ...] = ("dev", "test")
EXACT_SPLIT = "exact"
# A "name or product code": starts with a letter, then letters, digits, . + - _; must hold a digit or an inner
# capital (libunwind8, GNUstep, SDL2, x86_64-linux) so it is a name rather than a dictionary word.
_NAME = re.compile(r"(?<![\w.+-])[A-Za-z][\w.+-]*[\w+](?![\w+-])")
_NAMELIKE = re.compile(r"\d|[a-z][A-Z]")
# DDTP file codes → ISO 639-1, as indexer.langdetect labels chunks and queries.
ISO: dict[str, str] = {"zh_CN": "zh", "pt_BR": "pt"}


@dataclass(frozen=True)
class CrossLingualConfig:
    """Sizes and seed of one build; saved in ``build.json`` next to the data."""

    languages: tuple[str, ...] = LANGUAGES
    pairs: tuple[tuple[str, str], ...] = PAIRS
    queries_per_pair: int = 40  # per split: 25 pairs x 40 x 2 splits = 2,000 answer documents
    distractors_per_lang: int = 80
    exact_queries: int = 200  # one-word queries naming a token only one document has (split "exact")
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted({lang for pair in self.pairs for lang in pair} - set(self.languages))
        if unknown:
            raise ConfigError(
                f"pairs use languages {unknown} that are not in languages={list(self.languages)}"
            )
        if self.queries_per_pair < 1 or self.distractors_per_lang < 0:
            raise ConfigError(
                f"queries_per_pair={self.queries_per_pair}, distractors_per_lang="
                f"{self.distractors_per_lang}: need >= 1 and >= 0"
            )


def pair_of(qid: str) -> str:
    """The language pair a query id names, ``"ja.en.<md5>"`` → ``"ja>en"`` (DDTP codes, as in :data:`PAIRS`).

    >>> pair_of("zh_CN.ru.0123abcd")
    'zh_CN>ru'
    """
    x, y, _ = qid.split(".", 2)
    return f"{x}>{y}"


def iso(lang: str) -> str:
    """A DDTP language code as the ISO 639-1 code langdetect uses: ``"zh_CN"`` → ``"zh"``."""
    return ISO.get(lang, lang)


def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_texts(root: Path, languages: tuple[str, ...]) -> dict[str, dict[str, tuple[str, str]]]:
    """``texts[lang][md5] = (short, long)`` for the records that pass the filters (module docstring)."""
    raw: dict[str, dict[str, tuple[str, str]]] = {}
    for lang in dict.fromkeys(("en", *languages)):
        records = _read(root / f"descriptions.{lang}.jsonl.gz")
        raw[lang] = {r["md5"]: (r["short"].strip(), r["long"].strip()) for r in records if r.get("md5")}
    english = raw["en"]
    texts = {}
    for lang in languages:
        counts = Counter(t for short, long in raw[lang].values() for t in (short, long))
        texts[lang] = {
            md5: (short, long)
            for md5, (short, long) in raw[lang].items()
            if short
            and long
            and counts[short] == 1
            and counts[long] == 1
            and (lang == "en" or (md5 in english and english[md5][0] != short and english[md5][1] != long))
        }
        logger.info("ddtp %s: %d of %d records usable", lang, len(texts[lang]), len(raw[lang]))
    return texts


def _draw(pool: set[str], n: int, rng: random.Random, what: str) -> list[str]:
    if len(pool) < n:
        raise ConfigError(
            f"{what}: only {len(pool)} unused packages, {n} wanted; lower queries_per_pair or "
            "distractors_per_lang"
        )
    return rng.sample(sorted(pool), n)


def sample(
    texts: dict[str, dict[str, tuple[str, str]]],
    config: CrossLingualConfig,
) -> tuple[Corpus, Queries, dict[str, Qrels], dict]:
    """Draw the corpus, queries and per-split qrels; the last value is ``meta.json``'s content."""
    rng = random.Random(config.seed)
    used: set[str] = set()
    n_query = config.queries_per_pair * len(SPLITS)

    def pool(x: str, y: str) -> set[str]:
        return (set(texts[x]) & set(texts[y])) - used

    corpus: Corpus = {}
    queries: Queries = {}
    qrels: dict[str, Qrels] = {split: {} for split in SPLITS}
    doc_lang: dict[str, str] = {}
    query_pair: dict[str, list[str]] = {}
    for x, y in sorted(config.pairs, key=lambda p: (len(pool(*p)), p)):  # scarcest pair first
        drawn = _draw(pool(x, y), n_query, rng, f"pair {x}->{y}")
        used.update(drawn)
        for i, md5 in enumerate(drawn):
            split = SPLITS[i // config.queries_per_pair]
            qid = f"{x}.{y}.{md5}"
            corpus[md5] = {"title": "", "text": texts[y][md5][1]}
            queries[qid] = texts[x][md5][0]
            qrels[split][qid] = {md5: 1}
            doc_lang[md5] = iso(y)
            query_pair[qid] = [iso(x), iso(y)]
    for lang in config.languages:
        for md5 in _draw(set(texts[lang]) - used, config.distractors_per_lang, rng, f"distractors {lang}"):
            used.add(md5)
            corpus[md5] = {"title": "", "text": texts[lang][md5][1]}
            doc_lang[md5] = iso(lang)
    qrels[EXACT_SPLIT] = {}
    for md5, name in exact_matches(corpus, config.exact_queries, rng):
        qid = f"{EXACT_SPLIT}.{md5}"
        queries[qid] = name
        qrels[EXACT_SPLIT][qid] = {md5: 1}
    meta = {"doc_lang": doc_lang, "query_pair": query_pair}
    return corpus, queries, qrels, meta


def exact_matches(corpus: Corpus, n: int, rng: random.Random) -> list[tuple[str, str]]:
    """``n`` (document id, name) pairs where the name-like token occurs in that document only (case-folded).

    These are the queries a lexical retriever must win: a product code or a name, which a dense model may not
    place. One token per document at most, drawn with ``rng``.
    """
    df: Counter[str] = Counter()
    names: dict[str, list[str]] = {}
    for doc_id in sorted(corpus):
        tokens = set(_NAME.findall(corpus[doc_id]["text"]))
        df.update({t.casefold() for t in tokens})
        names[doc_id] = sorted(t for t in tokens if len(t) >= 4 and _NAMELIKE.search(t))
    eligible = [(d, [t for t in ts if df[t.casefold()] == 1]) for d, ts in names.items()]
    eligible = [(d, ts) for d, ts in eligible if ts]
    picked = rng.sample(eligible, min(n, len(eligible)))
    return sorted((d, rng.choice(ts)) for d, ts in picked)


def build(root: str | Path, out_dir: str | Path, config: CrossLingualConfig = CrossLingualConfig()) -> Path:
    """Write the BEIR folder ``out_dir`` (corpus, queries, qrels/dev.tsv, qrels/test.tsv, meta.json, build.json).

    >>> build("../shared/data/debian-ddtp", "/tmp/xling")           # doctest: +SKIP
    PosixPath('/tmp/xling')
    """
    root, out_dir = Path(root), Path(out_dir)
    texts = load_texts(root, config.languages)
    corpus, queries, qrels, meta = sample(texts, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_beir(out_dir, corpus, queries, qrels)
    (out_dir / "meta.json").write_text(
        json.dumps(meta, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    manifest = {
        "config": asdict(config),
        "source": str(root),
        "n_docs": len(corpus),
        "n_queries": len(queries),
        "docs_per_lang": dict(sorted(Counter(meta["doc_lang"].values()).items())),
        "queries_per_split": {split: len(q) for split, q in qrels.items()},
        "source_sha256": {
            lang: file_sha256(root / f"descriptions.{lang}.jsonl.gz")[:16]
            for lang in dict.fromkeys(("en", *config.languages))
        },
    }
    (out_dir / "build.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("crosslingual: %d docs, %d queries -> %s", len(corpus), len(queries), out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data/debian-ddtp"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--queries-per-pair", type=int, default=CrossLingualConfig.queries_per_pair)
    parser.add_argument("--distractors-per-lang", type=int, default=CrossLingualConfig.distractors_per_lang)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = CrossLingualConfig(queries_per_pair=args.queries_per_pair,
                                distractors_per_lang=args.distractors_per_lang, seed=args.seed)  # fmt: skip
    build(args.data_root, args.out, config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
