"""How well the free-text signals (policies/signals.toml) find the sensitive categories, on the
labelled corpus tests/data/signals_corpus.tsv: precision and recall per category, the share of
sensitive sentences flagged with their category (goal >= 95 %) and of ordinary service
questions flagged at all (goal <= 5 %), and the detector's time per sentence.

Run: python bench/signals_bench.py [--corpus PATH] [--policies DIR] [--misses]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from consult.policy.loader import load_policy  # noqa: E402
from consult.policy.signals import SignalDetector  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "signals_corpus.tsv"
RECALL_GOAL = 0.95
ORDINARY_FLAGGED_GOAL = 0.05


@dataclass(frozen=True)
class Sentence:
    lang: str
    labels: frozenset[str]  # empty: an ordinary service question
    text: str


@dataclass(frozen=True)
class Score:
    sensitive: int
    sensitive_found: int  # flagged with (one of) its own categories
    ordinary: int
    ordinary_flagged: int
    other: int  # client data of categories without signals (permitted ones: status, period...)
    other_flagged: int
    per_category: dict[str, tuple[int, int, int]]  # category -> (true pos, false pos, false neg)
    misses: list[tuple[Sentence, frozenset[str]]]  # wrongly handled sentences and what was found

    @property
    def recall(self) -> float:
        return self.sensitive_found / self.sensitive if self.sensitive else 1.0

    @property
    def ordinary_rate(self) -> float:
        return self.ordinary_flagged / self.ordinary if self.ordinary else 0.0


def load_corpus(path: Path = CORPUS) -> list[Sentence]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or parts[0] not in ("fi", "sv"):
            raise ValueError(f"{path.name}:{number}: expected lang<TAB>label<TAB>sentence")
        labels = frozenset() if parts[1] == "none" else frozenset(parts[1].split(","))
        out.append(Sentence(parts[0], labels, parts[2]))
    return out


def score(detector: SignalDetector, corpus: Iterable[Sentence],
          categories: Iterable[str] | None = None) -> Score:
    """A sensitive sentence counts as found when one of its own categories is flagged; per
    category, a flag of a category the sentence is not labelled with is a false positive.
    Sentences labelled only with categories that have no signals (client data the policy
    lets pass, such as a decision period) are counted apart: any flag on them is a false one."""
    sensitive = found = ordinary = flagged = other = other_flagged = 0
    per: dict[str, list[int]] = {
        c: [0, 0, 0] for c in sorted(detector.categories if categories is None else categories)}
    misses = []
    for s in corpus:
        got = detector.categories_in(s.text)
        for cat in per:
            if cat in got and cat in s.labels:
                per[cat][0] += 1
            elif cat in got:
                per[cat][1] += 1
            elif cat in s.labels:
                per[cat][2] += 1
        if s.labels and not s.labels & per.keys():
            other += 1
            other_flagged += bool(got)
            if got:
                misses.append((s, got))
        elif s.labels:
            sensitive += 1
            hit = bool(got & s.labels)
            found += hit
            if not hit or got - s.labels:
                misses.append((s, got))
        else:
            ordinary += 1
            flagged += bool(got)
            if got:
                misses.append((s, got))
    return Score(sensitive, found, ordinary, flagged, other, other_flagged, {c: tuple(v) for c, v in per.items()},  # type: ignore[misc]
                 misses)


def _ratio(a: int, b: int) -> str:
    return f"{a / b:6.1%}" if b else "     -"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--policies", type=Path, default=ROOT / "policies")
    parser.add_argument("--misses", action="store_true", help="list every wrongly handled sentence")
    args = parser.parse_args()
    detector = SignalDetector(load_policy(args.policies).signals)
    corpus = load_corpus(args.corpus)
    result = score(detector, corpus)
    print(f"corpus: {len(corpus)} sentences ({result.sensitive} sensitive, {result.ordinary} "
          f"ordinary service questions, {result.other} other client data; "
          f"{sum(s.lang == 'fi' for s in corpus)} fi / "
          f"{sum(s.lang == 'sv' for s in corpus)} sv)")
    print(f"{'category':26} {'precision':>9} {'recall':>7}   tp  fp  fn")
    for cat, (tp, fp, fn) in result.per_category.items():
        print(f"{cat:26} {_ratio(tp, tp + fp):>9} {_ratio(tp, tp + fn):>7}  {tp:3} {fp:3} {fn:3}")
    for lang in ("fi", "sv"):
        part = score(detector, [s for s in corpus if s.lang == lang])
        print(f"  {lang}: sensitive found {_ratio(part.sensitive_found, part.sensitive)}, "
              f"ordinary flagged {_ratio(part.ordinary_flagged, part.ordinary)}")
    ok_recall = result.recall >= RECALL_GOAL
    ok_ordinary = result.ordinary_rate <= ORDINARY_FLAGGED_GOAL
    print(f"sensitive sentences flagged with their category: {result.sensitive_found}/"
          f"{result.sensitive} = {result.recall:.1%} (goal >= {RECALL_GOAL:.0%}) "
          f"{'ok' if ok_recall else 'MISSED'}")
    print(f"ordinary service questions flagged: {result.ordinary_flagged}/{result.ordinary} = "
          f"{result.ordinary_rate:.1%} (goal <= {ORDINARY_FLAGGED_GOAL:.0%}) "
          f"{'ok' if ok_ordinary else 'MISSED'}")
    print(f"other client data (categories without signals) flagged: {result.other_flagged}/"
          f"{result.other}")
    texts = [s.text for s in corpus]
    rounds = 50
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            detector.detect(text)
    per_sentence = (time.perf_counter() - started) / (rounds * len(texts))
    print(f"detector: {per_sentence * 1e6:.1f} µs per sentence")
    if args.misses:
        for s, got in result.misses:
            want = ",".join(sorted(s.labels)) or "none"
            print(f"  [{s.lang}] want {want:30} got {','.join(sorted(got)) or 'none':30} {s.text}")
    return 0 if ok_recall and ok_ordinary else 1


if __name__ == "__main__":
    sys.exit(main())
