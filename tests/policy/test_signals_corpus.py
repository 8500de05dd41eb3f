"""The free-text signals reach their goals on the labelled corpus tests/data/signals_corpus.tsv:
at least 95 % of the sentences of a withheld category are flagged with their category, and at
most 5 % of ordinary service questions are flagged at all."""

from __future__ import annotations

from bench.signals_bench import CORPUS, load_corpus, score
from consult.policy.signals import SignalDetector, SignalSet

from .support import shipped_policy


def _detector() -> SignalDetector:
    return SignalDetector(shipped_policy().signals)


def test_the_corpus_is_large_bilingual_and_mostly_ordinary_questions():
    corpus = load_corpus(CORPUS)
    ordinary = [s for s in corpus if not s.labels]
    assert len(corpus) >= 200
    assert len(ordinary) >= 0.4 * len(corpus)
    for lang in ("fi", "sv"):
        assert sum(s.lang == lang for s in corpus) >= 0.3 * len(corpus)
    for category in _detector().categories:
        labelled = [s for s in corpus if category in s.labels]
        assert len(labelled) >= 15, category
        assert {s.lang for s in labelled} == {"fi", "sv"}, category
    assert len({s.text for s in corpus}) == len(corpus), "duplicate sentences"


def test_withheld_category_sentences_are_flagged_with_their_category():
    result = score(_detector(), load_corpus(CORPUS))
    missed = [s.text for s, got in result.misses if s.labels and not (got & s.labels)]
    assert result.recall >= 0.95, missed
    for category, (tp, _fp, fn) in result.per_category.items():
        assert tp / (tp + fn) >= 0.9, category


def test_ordinary_service_questions_are_rarely_flagged():
    result = score(_detector(), load_corpus(CORPUS))
    flagged = [s.text for s, _ in result.misses if not s.labels]
    assert result.ordinary_rate <= 0.05, flagged
    assert result.other_flagged <= 0.05 * max(result.other, 1) + 0.5


def test_the_goal_is_measured_not_assumed():
    """Without the signals of one category its sentences are missed and the goal fails."""
    shipped = shipped_policy().signals
    crippled = SignalSet(categories=tuple(c for c in shipped.categories if c.category != "health"))
    result = score(SignalDetector(crippled), load_corpus(CORPUS),
                   categories=[c.category for c in shipped.categories])
    assert result.per_category["health"][0] == 0
    assert result.recall < 0.95
