"""How much say BM25 gets in one hybrid query: twelve signals read from the two lists, a logistic model over them,
a rule that mutes BM25, and the fitted coefficients (``fusion_weights.json``, package data, loaded once).

Why per query: when the query's language is not its answer's, BM25 has nothing real to match and its list is
noise (shared function words, loanwords, CJK bigrams), while on a same-language query both lists help. What the
index knows at query time tells the two apart. Every signal is in [0, 1] and read from the top ``depth`` of each
list:

- ``bm25_peak``: how far BM25's best score stands above its ``depth``-th (0 = flat list, no real lexical match;
  1 = one chunk matches and nothing else scores, e.g. a product code);
- ``overlap``: the share of the two top lists that agree;
- ``dense_same_lang`` / ``bm25_same_lang``: the share of each top list in the query's detected language;
- ``bm25_top_cross`` / ``dense_top_cross``: the list's best hit is in another language than the query (dense
  crossing languages is the cross-lingual case BM25 cannot follow; BM25 crossing them means a shared name or code);
- ``bm25_top_in_dense`` / ``dense_top_in_bm25``: each list's best hit is in the other's top list;
- ``bm25_cross_script`` / ``bm25_top_cross_script`` / ``dense_top_cross_script``: the same questions one level up,
  by *script* (:func:`script_of`): BM25 matching a Latin package name inside Japanese or Russian text is a hit in
  another script, noise for the query, while a German query's BM25 hit in an English text shares real words;
- ``dense_cross_alone``: ``1 / rank`` of dense's best hit in another script than the query that BM25's top list
  lacks (0 if none): dense found across scripts what BM25 cannot see, so BM25 can only push it down.

The BM25 weight is ``sigmoid(bias + Σ coef_i · signal_i)``, except that it is 0 when dense's best hit is in
another script, BM25's best hit is not in dense's top list and BM25's list is flat (peak below ``mute_bm25_peak``):
then BM25 has no real match and dense has crossed scripts. In the combination, a dense hit in another script that
BM25's list lacks gets BM25's ``depth``-th score rather than 0 (:func:`bm25_to_combine`: BM25 cannot see it, so
its score is unknown), and the lexical guarantee reads a lower peak for a query of unknown language, a name or a
code (:func:`keeps_bm25_top`). The coefficients are fitted on dev splits only, by
``bench/fit_fusion.py``, which writes ``fusion_weights.json``; this module only reads them.

Non-goals: a language *prior* (boosting candidates for being in another language than the query fits a test set's
mix of queries, not the query); anything that needs the query text or the model (the caller passes the query's
detected language and the candidates' languages).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from indexer.config import FUSION_CHOICES, FusionMode
from indexer.errors import ConfigError
from indexer.ingest.langdetect import UNDETERMINED

Scored = Sequence[tuple[int, float]]  # (chunk id, score), best first
Combine = Literal["convex", "rrf"]  # how the weighted lists are added: normalised scores, or reciprocal ranks
FEATURES: tuple[str, ...] = (
    "bm25_peak",
    "overlap",
    "dense_same_lang",
    "bm25_same_lang",
    "bm25_top_cross",
    "dense_top_cross",
    "bm25_top_in_dense",
    "dense_top_in_bm25",
    "bm25_cross_script",
    "bm25_top_cross_script",
    "dense_top_cross_script",
    "dense_cross_alone",
)
# ISO 639-1 code -> script, for the languages not written in Latin letters (``langdetect.KNOWN_LANGUAGES``).
# ``ja`` (Kana with Han) and ``zh`` (Han) count as two scripts: BM25 matches few words between them.
_SCRIPTS: dict[str, str] = {
    **dict.fromkeys(("ru", "uk", "bg", "be", "mk", "sr", "kk", "ky", "mn", "tg", "tt", "ba"), "Cyrl"),
    **dict.fromkeys(("ar", "fa", "ur", "ps", "ug"), "Arab"),
    **dict.fromkeys(("hi", "mr", "ne", "sa"), "Deva"),
    **dict.fromkeys(("bn", "as"), "Beng"),
    **{"el": "Grek", "he": "Hebr", "hy": "Armn", "ka": "Geor", "am": "Ethi", "dz": "Tibt", "th": "Thai"},
    **{"lo": "Laoo", "km": "Khmr", "my": "Mymr", "si": "Sinh", "gu": "Gujr", "pa": "Guru", "ta": "Taml"},
    **{"te": "Telu", "kn": "Knda", "ml": "Mlym", "or": "Orya", "ko": "Hang", "ja": "Jpan", "zh": "Hani"},
}
WEIGHTS_FILE = Path(__file__).with_name("fusion_weights.json")


@dataclass(frozen=True)
class FusionConfig:
    """How hybrid search fuses dense and BM25; ``coef`` is (bias, one coefficient per name in :data:`FEATURES`).

    The default ``coef`` is all zeros, weight 0.5 for every query; :func:`fitted_config` is the shipped fit.
    """

    mode: FusionMode = "weighted"
    combine: Combine = "convex"
    rrf_k: int = 60  # Cormack et al. 2009; used by mode "rrf" and by combine "rrf"
    depth: int = 10  # how much of each list the signals read
    coef: tuple[float, ...] = (0.0,) * (1 + len(FEATURES))
    min_weight: float = 0.0  # clamps on the BM25 weight; (0, 1) leaves the model free
    max_weight: float = 1.0
    # Lexical guarantee: when BM25's list is this peaked (one hit standing out, e.g. a product code or a name),
    # its best hit is moved up to rank ``keep_bm25_top`` if the fusion put it lower. 0 turns it off.
    keep_bm25_top: int = 1
    keep_bm25_peak: float = 0.75
    # The same for a query whose language is undetermined: too short to tell, a name or a code (:func:`keeps_bm25_top`).
    keep_bm25_peak_und: float = 0.5
    # BM25's weight is 0 when dense's best hit crosses scripts, BM25's best is not in dense's top list and BM25's
    # peak is below this (module docstring). 0 turns it off.
    mute_bm25_peak: float = 0.5
    # A dense top-``depth`` hit in another script than the query that BM25's list lacks gets BM25's ``depth``-th
    # score instead of 0 in the combination (:func:`bm25_to_combine`).
    fill_cross_script: bool = True

    def __post_init__(self) -> None:
        if self.mode not in FUSION_CHOICES:
            raise ConfigError(f"mode={self.mode!r}: use one of {', '.join(FUSION_CHOICES)}")
        if self.combine not in get_args(Combine):
            raise ConfigError(f"combine={self.combine!r}: use one of {', '.join(get_args(Combine))}")
        if self.rrf_k < 1 or self.depth < 1:
            raise ConfigError(f"rrf_k={self.rrf_k}, depth={self.depth}: both must be >= 1")
        if len(self.coef) != 1 + len(FEATURES):
            raise ConfigError(f"coef has {len(self.coef)} values: give a bias and one per feature {FEATURES}")
        peaks = (self.keep_bm25_peak, self.keep_bm25_peak_und)
        if self.keep_bm25_top < 0 or not all(0.0 <= p <= 1.0 for p in peaks):
            raise ConfigError(
                f"keep_bm25_top={self.keep_bm25_top}, keep_bm25_peak={self.keep_bm25_peak}, keep_bm25_peak_und="
                f"{self.keep_bm25_peak_und}: need a rank >= 0 (0 = off) and peaks between 0 and 1"
            )
        if not 0.0 <= self.mute_bm25_peak <= 1.0:
            raise ConfigError(f"mute_bm25_peak={self.mute_bm25_peak}: need a peak between 0 and 1 (0 = off)")
        if not 0.0 <= self.min_weight <= self.max_weight <= 1.0:
            raise ConfigError(
                f"min_weight={self.min_weight}, max_weight={self.max_weight}: need 0 <= min <= max <= 1"
            )

    def to_dict(self) -> dict:
        """What ``fusion_weights.json`` stores under ``"config"`` (the mode is the search's choice, not data)."""
        values = dataclasses.asdict(self)
        del values["mode"]
        return {**values, "coef": list(self.coef), "features": list(FEATURES)}


def load_config(path: str | Path = WEIGHTS_FILE, **overrides: object) -> FusionConfig:
    """A :class:`FusionConfig` from a weights file written by ``bench/fit_fusion.py`` (its ``"config"``)."""
    data = dict(json.loads(Path(path).read_text(encoding="utf-8"))["config"])
    features = tuple(data.pop("features", FEATURES))
    if features != FEATURES:
        raise ConfigError(f"{path}: fitted for features {features}, this code computes {FEATURES}; refit it")
    known = {f.name for f in dataclasses.fields(FusionConfig)} - {"mode"}
    if set(data) - known:
        raise ConfigError(f"{path}: unknown keys {sorted(set(data) - known)}; refit with bench/fit_fusion.py")
    data["coef"] = tuple(data["coef"])
    return FusionConfig(**{**data, **overrides})  # type: ignore[arg-type]


@functools.cache
def fitted_config() -> FusionConfig:
    """The shipped fit (``fusion_weights.json`` beside this module), read once per process."""
    return load_config(WEIGHTS_FILE)


def fusion_config(mode: FusionMode = "weighted", rrf_k: int = 60) -> FusionConfig:
    """The config hybrid search uses: the shipped fit, in ``mode``, with ``rrf_k``."""
    return dataclasses.replace(fitted_config(), mode=mode, rrf_k=rrf_k)


def _same_lang(ranked: Scored, depth: int, query_lang: str, cand_langs: Mapping[int, str]) -> float:
    """Share of the top ``depth`` in the query's language; 1.0 when the language is unknown (assume it matches)."""
    top = ranked[:depth]
    if not top or query_lang == UNDETERMINED:
        return 1.0
    return sum(cand_langs.get(cid) == query_lang for cid, _ in top) / len(top)


def script_of(lang: str) -> str:
    """The script a language is written in (``"Latn"`` for all not in the table), from its detected code.

    An undetermined language counts as Latin: :func:`indexer.ingest.langdetect.detect_language` names CJK text by
    its script however short, and the other scripts pin a text to a few languages, so what it leaves ``"und"`` is
    short Latin-script text (names, codes, two or three words of English).

    >>> script_of("ru"), script_of("de"), script_of("und"), script_of("ja")
    ('Cyrl', 'Latn', 'Latn', 'Jpan')
    """
    return _SCRIPTS.get(lang, "Latn")


def _cross_script(ranked: Scored, depth: int, query_script: str, cand_langs: Mapping[int, str]) -> float:
    """Share of the top ``depth`` in another script than the query's; candidates of unknown language don't count."""
    top = ranked[:depth]
    if not top:
        return 0.0
    return sum(cid in cand_langs and script_of(cand_langs[cid]) != query_script for cid, _ in top) / len(top)


def _dense_cross_alone(
    dense: Scored, bm25_top: set[int], depth: int, query_script: str, cand_langs: Mapping[int, str]
) -> float:
    """``1 / rank`` of dense's best hit in another script than the query's that BM25's top list lacks; 0 if none."""
    for rank, (cid, _) in enumerate(dense[:depth], start=1):
        if cid in cand_langs and script_of(cand_langs[cid]) != query_script and cid not in bm25_top:
            return 1.0 / rank
    return 0.0


def query_features(
    dense: Scored, bm25: Scored, query_lang: str, cand_langs: Mapping[int, str], depth: int = 10
) -> dict[str, float]:
    """The per-query signals in :data:`FEATURES`, each in [0, 1] (the module docstring says what each means).

    >>> f = query_features([(1, 0.9), (2, 0.8)], [(1, 5.0)], "en", {1: "en", 2: "de"}, depth=2)
    >>> f["bm25_peak"], f["overlap"], f["dense_same_lang"], f["bm25_same_lang"], f["bm25_top_in_dense"]
    (1.0, 0.5, 0.5, 1.0, 1.0)
    """
    peak = 0.0
    if bm25 and bm25[0][1] > 0:
        floor = bm25[depth - 1][1] if len(bm25) >= depth else 0.0  # fewer hits: the rest scored nothing
        peak = (bm25[0][1] - floor) / bm25[0][1]
    d_top = {cid for cid, _ in dense[:depth]}
    b_top = {cid for cid, _ in bm25[:depth]}
    script = script_of(query_lang)
    return {
        "bm25_peak": peak,
        "overlap": len(d_top & b_top) / depth,
        "dense_same_lang": _same_lang(dense, depth, query_lang, cand_langs),
        "bm25_same_lang": _same_lang(bm25, depth, query_lang, cand_langs),
        "bm25_top_cross": 1.0 - _same_lang(bm25, 1, query_lang, cand_langs) if bm25 else 0.0,
        "dense_top_cross": 1.0 - _same_lang(dense, 1, query_lang, cand_langs) if dense else 0.0,
        "bm25_top_in_dense": float(bool(bm25) and bm25[0][0] in d_top),
        "dense_top_in_bm25": float(bool(dense) and dense[0][0] in b_top),
        "bm25_cross_script": _cross_script(bm25, depth, script, cand_langs),
        "bm25_top_cross_script": _cross_script(bm25, 1, script, cand_langs),
        "dense_top_cross_script": _cross_script(dense, 1, script, cand_langs),
        "dense_cross_alone": _dense_cross_alone(dense, b_top, depth, script, cand_langs),
    }


def muted(features: Mapping[str, float], config: FusionConfig) -> bool:
    """Dense's best hit crosses scripts, BM25's best is not in dense's top list and BM25's list is flat."""
    return (
        features["dense_top_cross_script"] == 1.0
        and features["bm25_top_in_dense"] == 0.0
        and features["bm25_peak"] < config.mute_bm25_peak
    )


def bm25_weight(features: Mapping[str, float], config: FusionConfig) -> float:
    """``sigmoid(bias + Σ coef_i · feature_i)``, clamped to ``[min_weight, max_weight]``; ``min_weight`` when
    :func:`muted`."""
    if muted(features, config):
        return config.min_weight
    z = config.coef[0] + sum(c * features[name] for c, name in zip(config.coef[1:], FEATURES))
    w = 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0
    return min(config.max_weight, max(config.min_weight, w))


def keeps_bm25_top(features: Mapping[str, float], query_lang: str, config: FusionConfig) -> bool:
    """Whether the lexical guarantee moves BM25's best hit up to ``keep_bm25_top``: BM25's list is peaked, by
    ``keep_bm25_peak``, or by ``keep_bm25_peak_und`` when the query's language is unknown: undetermined (a name or
    a code, too short for :func:`indexer.ingest.langdetect.detect_language` to tell), or one that no hit of either
    top list shares (a name misread as a language).

    >>> cfg = FusionConfig(keep_bm25_peak=0.75, keep_bm25_peak_und=0.5)
    >>> f = {"bm25_peak": 0.6, "dense_same_lang": 0.1, "bm25_same_lang": 0.0}
    >>> keeps_bm25_top(f, "en", cfg), keeps_bm25_top(f, "und", cfg), keeps_bm25_top({**f, "dense_same_lang": 0}, "qu", cfg)
    (False, True, True)
    """
    unknown = query_lang == UNDETERMINED or features["dense_same_lang"] == features["bm25_same_lang"] == 0.0
    peak = config.keep_bm25_peak_und if unknown else config.keep_bm25_peak
    return bool(config.keep_bm25_top) and features["bm25_peak"] >= peak


def bm25_to_combine(
    dense: Scored, bm25: Scored, query_lang: str, cand_langs: Mapping[int, str], config: FusionConfig
) -> list[tuple[int, float]]:
    """BM25's list as the combination reads it: with ``fill_cross_script``, each of dense's top ``depth`` hits in
    another script than the query that BM25's list lacks is added at BM25's ``depth``-th score, after BM25's own
    hits (so its best stays first). BM25 cannot match across scripts, so its score for such a hit is unknown, not
    0; 0 let BM25's same-script noise push dense's cross-script answers down. A list shorter than ``depth`` (its
    ``depth``-th score is 0) is left as it is. A new list; ``bm25`` is not changed.

    >>> bm25_to_combine([(7, 0.9), (3, 0.8)], [(3, 4.0), (4, 2.0)], "en", {7: "ja", 3: "en"}, FusionConfig(depth=2))
    [(3, 4.0), (4, 2.0), (7, 2.0)]
    """
    depth = config.depth
    if not config.fill_cross_script or len(bm25) < depth:
        return list(bm25)
    floor, script, seen = bm25[depth - 1][1], script_of(query_lang), {cid for cid, _ in bm25}
    unseen = [
        (cid, floor)
        for cid, _ in dense[:depth]
        if cid in cand_langs and script_of(cand_langs[cid]) != script and cid not in seen
    ]
    return [*bm25, *unseen]
