"""Signals of sensitive categories in free text: the reviewable lists of ``policies/signals.toml``
(Finnish and Swedish stems, word groups and patterns per category), validated and compiled
into a pure detector that returns each passage of a text that looks like one of the categories.

The detector only finds what *looks like* a category; it never decides. Which of the found
categories a reader may not receive is the policy engine's answer (see services/sensitive.py).
Structured data items are enforced by the policy; free text is detected, and the sender
answers for what they confirm.

Grammar of one term, written in lower case (see policies/README.md, "Signals in free text"):

* ``stem``      a word that begins with ``stem`` (Finnish and Swedish inflect at the end);
* ``*stem``     a word that contains ``stem`` anywhere (the last part of a compound word);
* ``stem$``     a word that is exactly ``stem`` (``*stem$``: a word that ends in it);
* ``a|b``       either alternative;
* ``%`` ``€``   the symbol itself, a word of its own.

A ``words`` entry is one or more terms separated by single spaces: consecutive words. A
``near`` entry is a list of two to four single-word terms that all occur within ``window``
words of each other, in any order. A ``patterns`` entry is a regular expression for what
stems cannot say (a diagnosis code).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

LANGUAGES: Final = ("fi", "sv")
DEFAULT_WINDOW: Final = 6
_MAX_WINDOW: Final = 12
_MAX_WORDS: Final = 4
_SYMBOLS: Final = frozenset("%€")
# A stem: lower-case letters (any script), digits, an inner hyphen or apostrophe; or a symbol.
_STEM: Final = re.compile(r"^\*?(?:[^\W\d_](?:[^\W_]|[-'])*|[%€])\$?$")
# Invisible format characters that split a word without showing (soft hyphen, zero-width
# space and joiners, word joiner, byte-order mark); the detector reads the text without them.
_FORMAT: Final = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
_CATEGORY_KEYS: Final = frozenset({"description", "fi", "sv", "patterns"})
_LANGUAGE_KEYS: Final = frozenset({"words", "near"})
_PATTERN_KEYS: Final = frozenset({"regex", "note", "case_sensitive"})


@dataclass(frozen=True, slots=True)
class SignalPattern:
    regex: str
    note: str
    case_sensitive: bool


@dataclass(frozen=True, slots=True)
class CategorySignals:
    """The signals of one category as written in the file, validated."""

    category: str
    description: str
    words: Mapping[str, tuple[str, ...]]  # language -> entries
    near: Mapping[str, tuple[tuple[str, ...], ...]]  # language -> groups of terms
    patterns: tuple[SignalPattern, ...]
    window: int  # words within which the terms of a ``near`` group must occur
    source: str
    line: int


@dataclass(frozen=True, slots=True)
class SignalSet:
    """Every category's signals, from one or more signals files."""

    categories: tuple[CategorySignals, ...]


@dataclass(frozen=True, slots=True)
class Passage:
    """A passage of free text that looks like ``category``: ``text[start:end]``. ``signal``
    names the entry of the signals file that found it (file data, never the text itself)."""

    category: str
    start: int
    end: int
    signal: str


# -- validation (called by the loader) ----------------------------------------------------------

ErrorAt = Callable[..., Exception]


def parse_signals(data: Mapping[str, Any], categories: Iterable[str], error: ErrorAt,
                  source: str, line_of: Callable[..., int | None]) -> SignalSet:
    """Validate one signals file's parsed TOML. ``error(message, *needles)`` builds the
    loader's error naming the file and the line of the last needle found."""
    known = frozenset(categories)
    for key in data:
        if key not in ("meta", "signals"):
            raise error(f"unknown key {key!r} in a signals file", key)
    meta = data.get("meta", {})
    for key in meta:
        if key not in ("kind", "description", "window"):
            raise error(f"unknown key {key!r} in [meta]", "[meta]", key)
    window = meta.get("window", DEFAULT_WINDOW)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= _MAX_WINDOW:
        raise error(f"[meta] window must be a whole number of words from 1 to {_MAX_WINDOW}",
                    "[meta]", "window")
    table = data.get("signals")
    if not isinstance(table, dict) or not table:
        raise error("a signals file needs [signals.\"<category>\"] tables", "[meta]")
    found = []
    for category, spec in table.items():
        at = ("[signals", category)
        if category not in known:
            raise error(f"[signals.{category}]: unknown category {category!r} (signals are for "
                        "data-item categories of the taxonomy)", *at)
        found.append(_category(category, spec, error, at, window, source, line_of(*at) or 0))
    return SignalSet(categories=tuple(found))


def _category(category: str, spec: Any, error: ErrorAt, at: tuple[str, ...], window: int,
              source: str, line: int) -> CategorySignals:
    where = f"[signals.{category}]"
    if not isinstance(spec, dict):
        raise error(f"{where} must be a table", *at)
    for key in spec:
        if key not in _CATEGORY_KEYS:
            raise error(f"unknown key {key!r} in {where}", *at, key)
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise error(f"{where}: description must be a string", *at, "description")
    words: dict[str, tuple[str, ...]] = {}
    near: dict[str, tuple[tuple[str, ...], ...]] = {}
    for lang in LANGUAGES:
        part = spec.get(lang, {})
        if not isinstance(part, dict):
            raise error(f"{where}.{lang} must be a table", *at, lang)
        for key in part:
            if key not in _LANGUAGE_KEYS:
                raise error(f"unknown key {key!r} in {where}.{lang}", *at, lang, key)
        words[lang] = tuple(_words(part.get("words", []), error, f"{where}.{lang} words", at))
        near[lang] = tuple(_near(part.get("near", []), error, f"{where}.{lang} near", at))
    patterns = tuple(_pattern(p, error, f"{where} patterns", at) for p in _list(
        spec.get("patterns", []), error, f"{where} patterns", at))
    if not any(words.values()) and not any(near.values()) and not patterns:
        raise error(f"{where} has no signals", *at)
    return CategorySignals(category, description.strip(), words, near, patterns, window, source,
                           line)


def _list(value: Any, error: ErrorAt, where: str, at: tuple[str, ...]) -> list[Any]:
    if not isinstance(value, list):
        raise error(f"{where} must be a list", *at)
    return value


def _words(value: Any, error: ErrorAt, where: str, at: tuple[str, ...]) -> list[str]:
    out = []
    for entry in _list(value, error, where, at):
        if not isinstance(entry, str) or not entry or entry != entry.strip() or "  " in entry:
            raise error(f"{where}: an entry must be terms separated by single spaces", *at,
                        repr(entry) if isinstance(entry, str) else "")
        terms = entry.split(" ")
        if len(terms) > _MAX_WORDS:
            raise error(f"{where}: {entry!r} has more than {_MAX_WORDS} words; a signal is a "
                        "term or a short word group, never a sentence", *at, entry.split(" ")[0])
        for term in terms:
            _term(term, error, where, at, entry)
        out.append(entry)
    return out


def _near(value: Any, error: ErrorAt, where: str, at: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = []
    for group in _list(value, error, where, at):
        if (not isinstance(group, list) or not 2 <= len(group) <= 4
                or not all(isinstance(t, str) for t in group)):
            raise error(f"{where}: a group is a list of 2 to 4 terms", *at)
        for term in group:
            _term(term, error, where, at, term)
        out.append(tuple(group))
    return out


def _term(term: str, error: ErrorAt, where: str, at: tuple[str, ...], entry: str) -> None:
    for alt in term.split("|"):
        bare = alt.strip("*$")
        if (not _STEM.match(alt) or alt != alt.lower()
                or (len(bare) < 2 and bare not in _SYMBOLS)):
            raise error(f"{where}: {alt!r} in {entry!r} is not a stem (lower case, two "
                        "characters or more, optional leading * and trailing $)", *at,
                        entry.split("|")[0])


def _pattern(value: Any, error: ErrorAt, where: str, at: tuple[str, ...]) -> SignalPattern:
    if not isinstance(value, dict) or set(value) - _PATTERN_KEYS or "regex" not in value:
        raise error(f"{where}: each pattern is {{ regex = '...', note = '...' }}", *at, "patterns")
    regex, note = value.get("regex"), value.get("note", "")
    case_sensitive = value.get("case_sensitive", False)
    if not isinstance(regex, str) or not regex or not isinstance(note, str) or not note.strip():
        raise error(f"{where}: a pattern needs a regex and a note saying what it finds", *at,
                    "patterns")
    if not isinstance(case_sensitive, bool):
        raise error(f"{where}: case_sensitive must be true or false", *at, "case_sensitive")
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise error(f"{where}: invalid regex {regex!r}: {exc}", *at, regex[:20]) from None
    if compiled.search(""):
        raise error(f"{where}: regex {regex!r} matches empty text", *at, regex[:20])
    return SignalPattern(regex, note.strip(), case_sensitive)


# -- the detector -------------------------------------------------------------------------------

class _Word(NamedTuple):
    """One word of the text that satisfies a term: its position among the words, its offsets
    and the terms (indices into the detector's term table)."""

    position: int
    start: int
    end: int
    terms: frozenset[int]


_NO_TERMS: Final = frozenset[int]()


class _TermTable:
    """Every distinct single-word term of the file, indexed so that one word is tested against
    all of them at once: word-start alternatives in a trie walked along the word, whole-word
    alternatives by the word, inner alternatives through one combined search. Nothing of the
    text is kept between calls."""

    _END: Final = ""  # trie key holding the terms whose stem ends at that node

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self._exact: dict[str, set[int]] = {}
        self._trie: dict[str, Any] = {}
        self._inner: list[tuple[str, bool, int]] = []  # stem, whole word end, term id
        self._inner_any: re.Pattern[str] | None = None
        self._start_any: re.Pattern[str] | None = None
        self._alternatives: dict[int, list[str]] = {}

    def add(self, term: str) -> int:
        if term in self.ids:
            return self.ids[term]
        tid = self.ids[term] = len(self.ids)
        self._alternatives[tid] = term.split("|")
        for alt in term.split("|"):
            inner, whole, stem = alt.startswith("*"), alt.endswith("$"), alt.strip("*$")
            if inner:
                self._inner.append((stem, whole, tid))
            elif whole:
                self._exact.setdefault(stem, set()).add(tid)
            else:
                node = self._trie
                for ch in stem:
                    node = node.setdefault(ch, {})
                node.setdefault(self._END, set()).add(tid)
        return tid

    def seal(self, anchors: set[int]) -> None:
        """Build the lookups. ``anchors`` are the terms every signal needs first (the first
        term of each word sequence and near group): a text with none of them has no signal."""
        # Most words begin and contain no stem at all: one match of a compiled pattern says so.
        # The patterns branch letter by letter like the trie, so the regular-expression engine
        # follows one branch instead of trying every stem in turn.
        inner: dict[str, Any] = {}
        for stem, _, _ in self._inner:
            node = inner
            for ch in stem:
                node = node.setdefault(ch, {})
            node[self._END] = True
        self._inner_any = re.compile(_branching(inner)) if inner else None
        self._start_any = re.compile(_branching(self._trie)) if self._trie else None
        # For the whole text, the anchors only: word-start and whole-word stems in one branching
        # pattern after a word boundary (a whole word is taken as a prefix here, which only lets
        # more through), inner stems in another, symbols by themselves.
        beginnings: dict[str, Any] = {}
        within: dict[str, Any] = {}
        self._anchor_symbols = set()
        for tid in anchors:
            for alt in self._alternatives[tid]:
                stem = alt.strip("*$")
                if stem in _SYMBOLS:
                    self._anchor_symbols.add(stem)
                    continue
                node = within if alt.startswith("*") else beginnings
                for ch in stem:
                    node = node.setdefault(ch, {})
                node[self._END] = True
        self._anchor_start = (re.compile(r"(?<![^\W_])" + _branching(beginnings))
                              if beginnings else None)
        self._anchor_inner = re.compile(_branching(within)) if within else None

    def any_in(self, text: str) -> bool:
        """Whether the lower-cased ``text`` holds an anchor term: most texts hold none, and a
        search or two over the whole text says so."""
        return bool((self._anchor_start is not None and self._anchor_start.search(text))
                    or (self._anchor_inner is not None and self._anchor_inner.search(text))
                    or any(symbol in text for symbol in self._anchor_symbols))

    def terms_of(self, word: str) -> frozenset[int]:
        exact = self._exact.get(word)
        starts = self._start_any is not None and self._start_any.match(word)
        inner = self._inner_any is not None and self._inner_any.search(word)
        if not (exact or starts or inner or "-" in word):
            return _NO_TERMS
        found: set[int] = set(exact or ())
        if starts:
            node = self._trie
            for ch in word:
                node = node.get(ch)  # type: ignore[assignment]
                if node is None:
                    break
                found.update(node.get(self._END, ()))
        if inner:
            for stem, whole, tid in self._inner:
                if (word.endswith(stem) if whole else stem in word):
                    found.add(tid)
        if "-" in word:  # each hyphenated part also begins a word
            for part in word.split("-"):
                if part:
                    found |= self.terms_of(part)
        return frozenset(found)


def _branching(node: dict[str, Any]) -> str:
    """A pattern that matches exactly where some stem of the trie ``node`` begins."""
    if _TermTable._END in node:
        return ""  # a stem ends here: whatever follows, it matched
    branches = [re.escape(ch) + _branching(child) for ch, child in sorted(node.items())]
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


# A word: letters and digits, hyphenated parts kept together ("huoli-ilmoitus", "icd-10"), or
# one of the symbols % and €.
_WORD: Final = re.compile(r"[^\W_]+(?:-[^\W_]+)*|[%€]")


@dataclass(frozen=True, slots=True)
class _Sequence:
    category: str
    signal: str
    terms: tuple[int, ...]  # consecutive words


@dataclass(frozen=True, slots=True)
class _Group:
    category: str
    signal: str
    window: int
    terms: tuple[int, ...]  # within ``window`` words, any order


@dataclass(frozen=True, slots=True)
class _Pattern:
    category: str
    signal: str
    regex: re.Pattern[str]


class SignalDetector:
    """Finds the passages of a text that look like a sensitive category. Pure and reusable:
    compiled once from a ``SignalSet``; ``detect`` does no I/O and keeps no state. Each word
    is looked up once against every term of the file, so the cost grows with the length of the
    text, not with the number of signals."""

    def __init__(self, signals: SignalSet) -> None:
        self.categories = frozenset(c.category for c in signals.categories)
        table = _TermTable()
        sequences: list[_Sequence] = []
        groups: list[_Group] = []
        patterns: list[_Pattern] = []
        for cat in signals.categories:
            for lang in LANGUAGES:
                for entry in cat.words.get(lang, ()):
                    sequences.append(_Sequence(cat.category, f"{lang}:{entry}",
                                               tuple(table.add(t) for t in entry.split(" "))))
                for near in cat.near.get(lang, ()):
                    groups.append(_Group(cat.category, f"{lang}:" + " ~ ".join(near), cat.window,
                                         tuple(table.add(t) for t in near)))
            for p in cat.patterns:
                flags = 0 if p.case_sensitive else re.IGNORECASE
                patterns.append(_Pattern(cat.category, f"pattern:{p.note}", re.compile(p.regex, flags)))
        table.seal({seq.terms[0] for seq in sequences} | {g.terms[0] for g in groups})
        self._table = table
        # Indexed by their first term: only the signals whose first term occurs are looked at.
        self._sequences: dict[int, list[_Sequence]] = {}
        for seq in sequences:
            self._sequences.setdefault(seq.terms[0], []).append(seq)
        self._groups: dict[int, list[_Group]] = {}
        for group in groups:
            self._groups.setdefault(group.terms[0], []).append(group)
        self._patterns = tuple(patterns)

    def detect(self, text: str) -> list[Passage]:
        """Every passage that looks like a category, merged per category where passages
        overlap, in order of position."""
        if not text:
            return []
        clean, offsets = _without_format_characters(text)
        found: list[Passage] = []
        for pattern in self._patterns:
            for m in pattern.regex.finditer(clean):
                if m.end() > m.start():
                    found.append(Passage(pattern.category, m.start(), m.end(), pattern.signal))
        if not self._table.any_in(clean.lower()):
            return _merge([Passage(p.category, offsets(p.start), offsets(p.end - 1) + 1, p.signal)
                           for p in found])
        words = self._words(clean)
        where: dict[int, list[_Word]] = {}
        for w in words.values():
            for tid in w.terms:
                where.setdefault(tid, []).append(w)
        for tid in where:
            for seq in self._sequences.get(tid, ()):
                found.extend(_sequence_passages(seq, where, words))
            for group in self._groups.get(tid, ()):
                found.extend(_near_passages(group, where))
        return _merge([Passage(p.category, offsets(p.start), offsets(p.end - 1) + 1, p.signal)
                       for p in found])

    def categories_in(self, text: str) -> frozenset[str]:
        return frozenset(p.category for p in self.detect(text))

    def _words(self, text: str) -> dict[int, _Word]:
        """The words that satisfy a term, by their position among all words."""
        terms_of = self._table.terms_of
        lower = text.lower()
        same = len(lower) == len(text)  # else a letter lower-cased to two characters
        found = {}
        for i, m in enumerate(_WORD.finditer(lower if same else text)):
            terms = terms_of(m.group() if same else m.group().lower())
            if terms:
                found[i] = _Word(i, m.start(), m.end(), terms)
        return found


def _sequence_passages(seq: _Sequence, where: dict[int, list[_Word]], words: dict[int, _Word]
                       ) -> list[Passage]:
    out = []
    for first in where.get(seq.terms[0], ()):
        following = [words.get(first.position + k) for k in range(1, len(seq.terms))]
        if all(w is not None and tid in w.terms for w, tid in zip(following, seq.terms[1:], strict=True)):
            last = following[-1] if following else first
            out.append(Passage(seq.category, first.start, last.end, seq.signal))  # type: ignore[union-attr]
    return out


def _near_passages(group: _Group, where: dict[int, list[_Word]]) -> list[Passage]:
    """Passages where a word of every term lies within the group's window of words of a word
    of the first term. The passage runs over every such word, so that the sender sees the
    whole of it ("perusosaa alennettu 20 %")."""
    hits = [where.get(tid) for tid in group.terms]
    if not all(hits):
        return []
    out = []
    for anchor in hits[0]:  # type: ignore[union-attr]
        chosen = [anchor]
        for others in hits[1:]:
            near = [w for w in others  # type: ignore[union-attr]
                    if abs(w.position - anchor.position) <= group.window and w.position != anchor.position]
            if not near:
                break
            chosen.extend(near)
        else:
            out.append(Passage(group.category, min(w.start for w in chosen),
                               max(w.end for w in chosen), group.signal))
    return out


def _merge(passages: list[Passage]) -> list[Passage]:
    by_category: dict[str, list[Passage]] = {}
    for p in sorted(passages, key=lambda p: (p.category, p.start, p.end)):
        runs = by_category.setdefault(p.category, [])
        if runs and p.start <= runs[-1].end:
            last = runs[-1]
            runs[-1] = Passage(p.category, last.start, max(last.end, p.end), last.signal)
        else:
            runs.append(p)
    return sorted((p for runs in by_category.values() for p in runs),
                  key=lambda p: (p.start, p.end, p.category))


def _without_format_characters(text: str) -> tuple[str, Callable[[int], int]]:
    """``text`` without invisible format characters (soft hyphens, zero-width joiners), which
    would otherwise split a word, and a map from positions in it back to ``text``."""
    if not _FORMAT.search(text):
        return text, lambda i: i
    kept = [i for i, ch in enumerate(text) if unicodedata.category(ch) != "Cf"]
    clean = "".join(text[i] for i in kept)
    return clean, lambda i: kept[i] if i < len(kept) else len(text)
