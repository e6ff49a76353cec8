"""The default reranker's training mixture: groups of (query, positive, 7 hard negatives), licence-clean sources only.

- NFCorpus *train* qrels (graded: a grade-2 document is preferred as the positive; up to ``--nf-per-query``
  positives per query). Negatives come from the product's own retrievers, half BM25 and half dense (the default
  model), ranks 4-60 among documents *not judged at all* for the query (every judged document of the query is
  excluded: the false-negative guard).
- Debian package descriptions (DDTP): short description -> long description, same language and across languages
  (X -> en, en -> X, X -> X). Every package of the DDTP evaluation suite (``eval.ddtp.eval_md5s``, all eligible
  languages) is left out; of the rest a seeded ``--ddtp-dev`` packages are held out as a dev set (written as BEIR
  folders, for choices such as the score interpolation) and the others train. Negatives: BM25 over the English long
  descriptions with the English short one as the query (ranks 4-200), kept only where the negative package exists in
  the document's language; guard: no negative with the positive's short text or a long text sharing more than half
  of its words with the positive's.
- SNLI dev+test (CC BY-SA 4.0): premise -> its entailed hypothesis; the contradiction and neutral hypotheses and
  random hypotheses are the negatives (a small share: sentence-level relevance).

Not used: SciFact, SICK, MSRP, the MS MARCO slice (non-commercial), TrecQA (no licence stated).

    python bench/rerank_mix.py --output artifacts/rerank2/train.jsonl --dev-dir artifacts/rerank2/dev
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import re
from collections import defaultdict
from pathlib import Path

from eval import ddtp
from eval.datasets import write_beir
from trainer.config import MineConfig
from trainer.data import Pair, write_pairs
from trainer.mining import mine_hard_negatives
from trainer.pairs import doc_text, read_beir

logger = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
NEGATIVES = 7


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _overlap(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / max(1, min(len(wa), len(wb)))


# ------------------------------------------------------------------------------------------------ NFCorpus
def nfcorpus_groups(folder: Path, per_query: int, seed: int, encoder) -> list[Pair]:
    corpus, queries, qrels = read_beir(folder, "train")
    texts = {did: doc_text(d) for did, d in corpus.items()}
    rng = random.Random(seed)
    chosen: list[Pair] = []
    judged: list[Pair] = []  # every judged (query, document): all are excluded from that query's negatives
    for qid in sorted(qrels):
        if qid not in queries:
            continue
        docs = [(g, d) for d, g in qrels[qid].items() if d in texts and g >= 1]
        judged += [Pair(queries[qid], texts[d], id=f"{qid}:{d}") for _, d in docs]
        best = max((g for g, _ in docs), default=0)
        top = sorted(d for g, d in docs if g == best)
        for d in rng.sample(top, min(per_query, len(top))):
            chosen.append(Pair(queries[qid], texts[d], source="nfcorpus:train", lang="en", id=f"{qid}:{d}"))
    extra = list(texts.values())
    half = NEGATIVES // 2 + 1
    mined: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {}
    for method in ("bm25", "dense"):
        config = MineConfig(
            method=method, num_negatives=12, range_min=3, range_max=60, relative_margin=None, seed=seed
        )
        out, counts = mine_hard_negatives(
            judged, config, encoder if method == "dense" else None, extra_corpus=extra
        )
        logger.info("nfcorpus %s: %s", method, counts)
        mined[method] = {(p.query, p.passage): p.negatives for p in out}
    groups = []
    for p in chosen:
        bm, de = mined["bm25"].get((p.query, p.passage)), mined["dense"].get((p.query, p.passage))
        if not bm or not de:
            continue
        negs: list[str] = []
        for cand in [*rng.sample(bm, half), *rng.sample(de, len(de))]:  # half BM25, the rest dense
            if cand not in negs and len(negs) < NEGATIVES:
                negs.append(cand)
        if len(negs) == NEGATIVES:
            groups.append(Pair(p.query, p.passage, tuple(negs), source=p.source, lang="en", id=p.id))
    return groups


# ------------------------------------------------------------------------------------------------ DDTP
def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ddtp_groups(
    root: Path, n_groups: int, n_dev: int, seed: int, dev_dir: Path | None
) -> tuple[list[Pair], dict]:
    from indexer.ingest.langdetect import detect_languages
    from indexer.retrieval.bm25 import BM25Index

    held_out = ddtp.eval_md5s(root)
    english = {r["md5"]: r for r in _read(root / "descriptions.en.jsonl.gz")}
    langs = ddtp.eligible_languages(root)
    trans: dict[str, dict[str, dict]] = {}
    for lang in langs:
        trans[lang] = {
            r["md5"]: r
            for r in _read(root / f"descriptions.{lang}.jsonl.gz")
            if r["md5"] in english and r["short"].strip() and r["long"].strip()
        }
    ok = sorted(
        m
        for m, r in english.items()
        if m not in held_out
        and r["short"].strip()
        and r["long"].strip()
        and any(m in trans[x] for x in langs)
    )
    rng = random.Random(seed)
    rng.shuffle(ok)
    dev, train = ok[:n_dev], ok[n_dev:]
    pool = train[: max(20000, n_groups)]  # the BM25 candidate pool: training packages only
    index = BM25Index.build(
        list(range(len(pool))),
        [english[m]["long"] for m in pool],
        detect_languages([english[m]["long"] for m in pool]),
    )

    def text(m: str, lang: str, side: str) -> str:
        return (english[m] if lang == "en" else trans[lang][m])[side].strip()

    groups: list[Pair] = []
    counts: dict[str, int] = defaultdict(int)
    for m in pool:
        if len(groups) >= n_groups:
            break
        have = [x for x in langs if m in trans[x]]
        x = rng.choice(have)
        qlang, dlang = rng.choice([(x, "en"), ("en", x), (x, x), (x, "en"), ("en", x)])
        q, pos = text(m, qlang, "short"), text(m, dlang, "long")
        if q == text(m, "en", "short") and qlang != "en":
            counts["untranslated"] += 1
            continue
        negs: list[str] = []
        for cand, _ in index.search(english[m]["short"], 200)[3:]:
            n = pool[cand]
            if n == m or (dlang != "en" and n not in trans[dlang]):
                continue
            if english[n]["short"].strip() == english[m]["short"].strip():
                counts["guard_short"] += 1
                continue
            if _overlap(english[n]["long"], english[m]["long"]) > 0.5:
                counts["guard_overlap"] += 1
                continue
            negs.append(text(n, dlang, "long"))
            if len(negs) == NEGATIVES:
                break
        if len(negs) < NEGATIVES:
            counts["not_enough_negatives"] += 1
            continue
        counts[f"{qlang}->{dlang}" if qlang == dlang else ("x->en" if dlang == "en" else "en->x")] += 1
        groups.append(Pair(q, pos, tuple(negs), source=f"ddtp:{qlang}-{dlang}", lang=dlang, id=m))
    if dev_dir is not None:
        _write_dev(dev, english, trans, dev_dir, seed)
    return groups, {"held_out_eval": len(held_out), "dev": len(dev), "train_pool": len(train), **counts}


def _write_dev(dev: list[str], english: dict, trans: dict, out: Path, seed: int) -> None:
    """X-en and en-X BEIR folders for the languages with the most held-out dev packages (one right answer each)."""
    for lang in ("de", "fr", "ja", "ru", "pt_BR"):
        docs = [m for m in dev if m in trans[lang]][:600]
        for name, qs, ds in ((f"{lang}-en", lang, "en"), (f"en-{lang}", "en", lang)):
            side = {"en": english, lang: trans[lang]}
            queries = {m: side[qs][m]["short"].strip() for m in docs[:300]}
            corpus = {m: {"title": "", "text": side[ds][m]["long"].strip()} for m in docs}
            (out / name).mkdir(parents=True, exist_ok=True)
            write_beir(out / name, corpus, queries, {"dev": {m: {m: 1} for m in queries}})


# ------------------------------------------------------------------------------------------------ SNLI
def snli_groups(folder: Path, n_groups: int, seed: int) -> list[Pair]:
    rows: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for split in ("dev", "test"):
        s1 = (folder / f"s1.{split}").read_text(encoding="utf-8").splitlines()
        s2 = (folder / f"s2.{split}").read_text(encoding="utf-8").splitlines()
        labels = (folder / f"labels.{split}").read_text(encoding="utf-8").splitlines()
        for a, b, label in zip(s1, s2, labels, strict=True):
            rows[a][label].append(b)
    rng = random.Random(seed)
    hypotheses = sorted({h for r in rows.values() for hs in r.values() for h in hs})
    groups = []
    for premise in sorted(rows):
        r = rows[premise]
        if not r["entailment"]:
            continue
        negs = r["contradiction"][:2] + r["neutral"][:2]
        while len(negs) < NEGATIVES:
            h = rng.choice(hypotheses)
            if h not in r["entailment"] and h not in negs:
                negs.append(h)
        groups.append(Pair(premise, r["entailment"][0], tuple(negs), source="snli", lang="en"))
    rng.shuffle(groups)
    return groups[:n_groups]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output", required=True)
    ap.add_argument("--dev-dir", help="where the held-out DDTP dev folders are written")
    ap.add_argument("--nf-per-query", type=int, default=3)
    ap.add_argument("--ddtp-groups", type=int, default=12000)
    ap.add_argument(
        "--ddtp-dev", type=int, default=3000, help="held-out DDTP packages (dev), before training"
    )
    ap.add_argument("--snli-groups", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from indexer.config import ModelConfig
    from indexer.encoding.encoder import Encoder

    encoder = Encoder(ModelConfig())  # the product's default encoder on this machine, for dense mining
    nf = nfcorpus_groups(DATA / "nfcorpus-beir", args.nf_per_query, args.seed, encoder)
    dd, dd_counts = ddtp_groups(
        DATA / "debian-ddtp",
        args.ddtp_groups,
        args.ddtp_dev,
        args.seed,
        Path(args.dev_dir) if args.dev_dir else None,
    )
    sn = snli_groups(DATA / "sts-nli-en" / "snli-dev-test", args.snli_groups, args.seed)
    everything = nf + dd + sn
    random.Random(args.seed).shuffle(everything)
    write_pairs(args.output, everything)
    report = {
        "nfcorpus": len(nf),
        "ddtp": len(dd),
        "ddtp_counts": dd_counts,
        "snli": len(sn),
        "seed": args.seed,
    }
    Path(args.output + ".report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
