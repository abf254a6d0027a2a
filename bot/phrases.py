"""Finding every alert phrase in a day's titles and abstracts at once, with numpy.

A phrase is a tuple of folded words (`bot.fold.words`); a word ending in `*` is a prefix
(`transform*`). `PhraseFinder.find` takes many texts and returns every occurrence of
every phrase, with the characters it spans, as arrays.

Most texts are ASCII, and for those no Python object is made per word: the texts are
joined into one byte array, words are the runs of letters and digits, and each word gets a
64-bit polynomial hash of its lower-cased bytes (`_hashes`, all words at once). A hash is
looked up among the phrase words' hashes by binary search, and a word found that way is
compared byte by byte with the phrase word, so a hash collision can never make a match.
Then one-word phrases are one array look-up per word, and longer phrases one binary search
of their first two words among every phrase's first two (both numbers packed in one
integer), the words after those compared in bulk. Texts with other characters are folded
word by word (accents, ligatures: `bot.fold.words`) and join the same arrays. A prefix
(`transform*`) is found the same way from the hashes of the words' first letters; the rare
longer phrases with a prefix word are then checked word by word where they could start.

So a day of 400,000 words costs a handful of numpy passes, however many phrases there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from itertools import chain

import numpy as np
import numpy.typing as npt

from bot.arrays import U64, Bools, Ints, equal_runs, none_in_runs, position, runs
from bot.fold import word_spans, words

_Step = tuple[str, bool]  # a phrase word: folded, and whether it is a prefix
_Prefixed = tuple[int, tuple[_Step, ...]]  # a phrase with a prefix word: (pattern id, steps)

_LOWER = np.arange(256, dtype=np.uint8)
_LOWER[ord("A") : ord("Z") + 1] += 32
_ALNUM = np.zeros(256, dtype=bool)
for _first, _last in (("0", "9"), ("A", "Z"), ("a", "z")):
    _ALNUM[ord(_first) : ord(_last) + 1] = True
_BASES = (0x100000001B3, 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)  # tried in turn (`_dictionaries`)


@dataclass(frozen=True, slots=True)
class Occurrences:
    """Phrases found in texts: for each occurrence, its text, its first and last word (in
    the text's folded words), its pattern, and the characters it spans in the text.

    Two occurrences with the same `spelling` are written alike (64-bit hashes: two
    different spellings share one with a chance of about 2**-64), so a caller can group
    them without making a string of each."""

    text: Ints
    first: Ints
    last: Ints
    pattern: Ints
    begin: Ints
    end: Ints
    spelling: npt.NDArray[np.uint64]  # a hash of the characters as written (case and all)


@dataclass(frozen=True, slots=True)
class _Words:
    """Texts' words laid end to end: their text, place in it, span and phrase-word number."""

    text: Ints
    index: Ints
    begin: Ints
    end: Ints
    number: Ints  # 0: a word that is in no exact phrase


@dataclass(frozen=True, slots=True)
class _Ascii:
    """The ASCII texts laid out as bytes, for what is found from the bytes themselves."""

    data: npt.NDArray[np.uint8]  # the texts as written, one after the other
    starts: Ints  # where each text starts in `data`
    lower: npt.NDArray[np.uint8]  # `data` lower-cased
    begins: Ints  # where each word begins in `data`
    # by stem length: the words that long or longer, and the hash of their first bytes
    prefixes: dict[int, tuple[Ints, U64]]


def _hashes(
    base: int, data: npt.NDArray[np.uint8], begins: Ints, ends: Ints, prefixes: Iterable[int] = ()
) -> tuple[U64, dict[int, tuple[Ints, U64]]]:
    """64-bit polynomial hashes (sum of byte * base**i, modulo 2**64) of the runs
    data[begin:end]; and for each length in `prefixes`, the runs at least that long with
    the hash of their first that many bytes.

    The runs are taken longest first, so that step i adds the i-th byte of the runs that
    have one: numpy work in proportion to the bytes, with a Python step per byte of the
    longest run.
    """
    lengths = ends - begins
    order = np.argsort(-lengths, kind="stable")
    heads = begins[order]
    longest = int(lengths.max(initial=0))
    having = np.searchsorted(-lengths[order], -np.arange(longest + 1), "left")  # runs > i
    wanted = set(prefixes)
    out: dict[int, tuple[Ints, U64]] = {}
    sums = np.zeros(len(order), dtype=np.uint64)
    power = 1
    with np.errstate(over="ignore"):
        for i in range(longest):
            count = having[i]
            sums[:count] += data[heads[:count] + i] * np.uint64(power)
            power = power * base % (1 << 64)
            if i + 1 in wanted:
                out[i + 1] = (order[:count], sums[:count].copy())
    for size in wanted.difference(out):  # longer than any run
        out[size] = (order[:0], sums[:0])
    hashes = np.empty(len(order), dtype=np.uint64)
    hashes[order] = sums
    return hashes, out


def _joined(texts: Sequence[str]) -> tuple[npt.NDArray[np.uint8], Ints, Ints]:
    """ASCII strings as one byte array (a newline after each), with where each starts and ends."""
    data = np.frombuffer("\n".join(texts).encode("ascii") + b"\n", dtype=np.uint8)
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    ends = np.cumsum(lengths + 1) - 1
    return data, ends - lengths, ends


class _Dictionary:
    """Words by hash: a sorted hash table of ASCII words, with their bytes to check a find."""

    def __init__(
        self, base: int, entries: Mapping[str, int], leave: Set[str] = frozenset()
    ) -> None:
        names = [w for w in entries if w.isascii() and w not in leave]
        data, begins, ends = _joined(names)
        hashes = _hashes(base, data, begins, ends)[0]
        order = np.argsort(hashes)
        self.hashes = hashes[order]
        self.values = np.fromiter(map(entries.__getitem__, names), np.int64, len(names))[order]
        self.data = data
        self.begins, self.lengths = begins[order], (ends - begins)[order]
        self.distinct = bool(len(self.hashes) < 2 or (self.hashes[1:] != self.hashes[:-1]).all())
        # a filter by the hash's top bits: most words are ruled out by one array look-up
        self._shift = np.uint64(64 - min(max((64 * len(names)).bit_length(), 8), 24))
        self._filter = np.zeros(1 << (64 - int(self._shift)), dtype=bool)
        self._filter[self.hashes >> self._shift] = True

    def find(self, hashes: U64, data: npt.NDArray[np.uint8], begins: Ints, ends: Ints) -> Ints:
        """The value of each run data[begin:end] that is a word here, else -1."""
        out = np.full(len(hashes), -1, dtype=np.int64)
        if not len(self.hashes):
            return out
        maybe = np.flatnonzero(self._filter[hashes >> self._shift])
        at = position(self.hashes, hashes[maybe])
        size = ends[maybe] - begins[maybe]
        same = (at >= 0) & (self.lengths[at] == size)
        maybe, at, size = maybe[same], at[same], size[same]
        wrong = data[runs(begins[maybe], size)] != self.data[runs(self.begins[at], size)]
        same = none_in_runs(wrong, size)
        out[maybe[same]] = self.values[at[same]]
        return out


class PhraseFinder:
    """Every phrase (folded words → pattern id), found in many texts at once."""

    def __init__(self, patterns: Mapping[tuple[str, ...], int]) -> None:
        vocabulary = dict.fromkeys(chain.from_iterable(patterns))
        # every word of a phrase → a number from 1 (a prefix word `transform*` gets one too,
        # which no text word can have, as they are letters and digits only)
        self._ids = dict(zip(vocabulary, range(1, len(vocabulary) + 1), strict=True))
        stars = {w for w in vocabulary if w.endswith("*")}
        exact = [p for p in patterns if stars.isdisjoint(p)] if stars else list(patterns)
        self._by_word: dict[int, list[_Prefixed]] = {}  # prefix phrases by exact first word
        self._by_stem: dict[str, list[_Prefixed]] = {}  # ... by a first word that is a prefix
        for phrase in (p for p in patterns if not stars.isdisjoint(p)) if stars else ():
            steps = tuple((w[:-1], True) if w in stars else (w, False) for w in phrase)
            entry = (patterns[phrase], steps)
            if steps[0][1]:
                self._by_stem.setdefault(steps[0][0], []).append(entry)
            else:
                self._by_word.setdefault(self._ids[phrase[0]], []).append(entry)
        self._bits = max(len(self._ids).bit_length(), 1)
        self._tables(exact, np.fromiter(map(patterns.__getitem__, exact), np.int64, len(exact)))
        self._stem_list = list(self._by_stem)
        self._stem_ids = {stem: i for i, stem in enumerate(self._stem_list)}
        by_stem = [self._by_stem[stem] for stem in self._stem_list]
        alone = [[pid for pid, steps in entries if len(steps) == 1] for entries in by_stem]
        self._stem_counts = np.array(list(map(len, alone)), dtype=np.int64)
        self._stem_firsts = np.cumsum(self._stem_counts) - self._stem_counts
        self._stem_pids = np.array([pid for pids in alone for pid in pids], dtype=np.int64)
        self._stem_longer = np.array(
            [any(len(steps) > 1 for _, steps in entries) for entries in by_stem],
            dtype=bool,
        )
        self._first_words = np.zeros(len(self._ids) + 1, dtype=bool)
        self._first_words[list(self._by_word)] = True
        self._dictionaries(stars)

    def _tables(self, exact: list[tuple[str, ...]], pids: Ints) -> None:
        """One-word phrases by word; longer ones sorted by their first two words."""
        lengths = np.fromiter(map(len, exact), np.int64, len(exact))
        numbers = np.fromiter(
            map(self._ids.__getitem__, chain.from_iterable(exact)), np.int64, int(lengths.sum())
        )
        starts = np.cumsum(lengths) - lengths
        self._single = np.full(len(self._ids) + 1, -1, dtype=np.int64)
        one = lengths == 1
        self._single[numbers[starts[one]]] = pids[one]
        starts, lengths, pids = starts[~one], lengths[~one], pids[~one]
        keys = self._pair(numbers[starts], numbers[starts + 1])
        order = np.argsort(keys, kind="stable")
        self._keys, self._pids = keys[order], pids[order]
        self._rest_len = lengths[order] - 2
        self._rest_start = np.cumsum(self._rest_len) - self._rest_len
        self._rest = numbers[runs(starts[order] + 2, self._rest_len)]

    def _dictionaries(self, stars: set[str]) -> None:
        """Hash tables of the phrase words and of the stems, by stem length (no collision)."""
        stems = self._stem_ids
        for base in _BASES:
            self._base = base
            self._words = _Dictionary(base, self._ids, stars)
            self._stems = {
                size: _Dictionary(base, {s: i for s, i in stems.items() if len(s) == size})
                for size in {len(s) for s in stems}
            }
            if self._words.distinct and all(d.distinct for d in self._stems.values()):
                return
        raise ValueError("phrase words collide under every hash base")  # about 2**-100

    def _pair(self, first: Ints, second: Ints) -> Ints:
        """Two word numbers packed in one integer (both are below 2**bits)."""
        return first << self._bits | second

    # ----------------------------------------------------------------- finding

    def find(self, texts: Sequence[str]) -> Occurrences:
        """Every occurrence of every phrase in `texts`."""
        plain = [i for i, text in enumerate(texts) if text.isascii()]
        other = [i for i, text in enumerate(texts) if not text.isascii()]
        ascii_words, raw = self._ascii_words([texts[i] for i in plain], plain)
        parts = [ascii_words, *(self._folded_words(texts[i], i) for i in other)]
        laid = _Words(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Words.__slots__))
        found = [self._singles(laid), self._longer(laid), self._prefixed(laid, raw, texts)]
        first, after, pattern = (np.concatenate([f[k] for f in found]) for k in range(3))
        text, begin, end = laid.text[first], laid.begin[first], laid.end[after - 1]
        offsets = np.full(len(texts), -1, dtype=np.int64)
        offsets[plain] = raw.starts
        spelling = self._spellings(texts, text, begin, end, raw.data, offsets[text])
        last = laid.index[after - 1]
        return Occurrences(text, laid.index[first], last, pattern, begin, end, spelling)

    def _spellings(
        self,
        texts: Sequence[str],
        text: Ints,
        begin: Ints,
        end: Ints,
        data: npt.NDArray[np.uint8],
        offset: Ints,
    ) -> npt.NDArray[np.uint64]:
        """A hash of each span as written: the polynomial hash of its bytes when it is ASCII
        (ASCII texts' spans are hashed in bulk, at their `offset` in `data`), else Python's."""
        out = np.empty(len(text), dtype=np.uint64)
        plain = offset >= 0
        out[plain] = _hashes(
            self._base, data, offset[plain] + begin[plain], offset[plain] + end[plain]
        )[0]
        other = np.flatnonzero(~plain)
        spans = zip(text[other].tolist(), begin[other].tolist(), end[other].tolist(), strict=True)
        quotes = [texts[t][b:e] for t, b, e in spans]
        out[other] = [hash(quote) % (1 << 64) for quote in quotes]
        some = [i for i, quote in enumerate(quotes) if quote.isascii()]  # as ASCII texts' are
        out[other[some]] = _hashes(self._base, *_joined([quotes[i] for i in some]))[0]
        return out

    def _ascii_words(self, texts: list[str], numbers: list[int]) -> tuple[_Words, _Ascii]:
        """The words of ASCII texts, numbered by hash (no Python object per word); and the
        texts as bytes."""
        data, starts, _ = _joined(texts)
        low = _LOWER[data]
        edges = np.diff(_ALNUM[data].astype(np.int8), prepend=np.int8(0))
        begins, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        owner = np.searchsorted(starts, begins, "right") - 1
        first_word = np.searchsorted(begins, starts)  # each text's first word
        hashes, prefixes = _hashes(self._base, low, begins, ends, self._stems)
        laid = _Words(
            np.array(numbers, dtype=np.int64)[owner],
            np.arange(len(begins)) - first_word[owner],
            begins - starts[owner],
            ends - starts[owner],
            np.maximum(self._words.find(hashes, low, begins, ends), 0),
        )
        return laid, _Ascii(data, starts, low, begins, prefixes)

    def _folded_words(self, text: str, number: int) -> _Words:
        """The words of one text with other characters, folded (`bot.fold.words`)."""
        folded = words(text)
        spans = np.array(word_spans(text), dtype=np.int64).reshape(-1, 2)
        size = len(folded)
        return _Words(
            np.full(size, number, dtype=np.int64),
            np.arange(size, dtype=np.int64),
            spans[:, 0],
            spans[:, 1],
            np.fromiter((self._ids.get(w, 0) for w in folded), np.int64, size),
        )

    def _singles(self, laid: _Words) -> tuple[Ints, Ints, Ints]:
        """Occurrences of one-word phrases: (first word, end, pattern)."""
        pids = self._single[laid.number]
        starts = np.flatnonzero(pids >= 0)
        return starts, starts + 1, pids[starts]

    def _longer(self, laid: _Words) -> tuple[Ints, Ints, Ints]:
        """Occurrences of exact phrases of two words or more."""
        ids, text = laid.number, laid.text
        starts = np.flatnonzero((ids[:-1] > 0) & (ids[1:] > 0) & (text[:-1] == text[1:]))
        keys = self._pair(ids[starts], ids[starts + 1])
        low, counts = equal_runs(self._keys, keys)
        starts = np.repeat(starts, counts)  # each candidate phrase at each start
        entries = runs(low, counts)
        rest = self._rest_len[entries]
        ends = starts + 2 + rest
        ok = self._rest_agrees(laid, starts + 2, entries, rest)
        return starts[ok], ends[ok], self._pids[entries[ok]]

    def _rest_agrees(self, laid: _Words, after: Ints, entries: Ints, rest: Ints) -> Bools:
        """Do the words from `after` on (in the same text) spell each candidate's rest?"""
        places = runs(after, rest)
        at = np.minimum(places, len(laid.number) - 1)
        wanted = self._rest[runs(self._rest_start[entries], rest)]
        text = np.repeat(laid.text[after - 2], rest)
        wrong = (laid.number[at] != wanted) | (laid.text[at] != text) | (places != at)
        return none_in_runs(wrong, rest)

    def _prefixed(self, laid: _Words, raw: _Ascii, texts: Sequence[str]) -> tuple[Ints, Ints, Ints]:
        """Occurrences of phrases with a prefix word.

        A one-word prefix phrase occurs wherever a word starts with its stem; longer ones
        are checked word by word where they may start.
        """
        none = np.zeros(0, dtype=np.int64)
        if not self._by_word and not self._by_stem:
            return none, none, none
        checks: list[tuple[int, Sequence[_Prefixed]]] = [
            (start, self._by_word[int(laid.number[start])])
            for start in np.flatnonzero(self._first_words[laid.number]).tolist()
        ]
        starts, stems = self._stem_starts(laid, raw, texts)
        counts = self._stem_counts[stems]
        alone = np.repeat(starts, counts)
        pids = self._stem_pids[runs(self._stem_firsts[stems], counts)]
        longer = np.flatnonzero(self._stem_longer[stems])
        checks += [
            (start, self._by_stem[self._stem_list[stem]])
            for start, stem in zip(starts[longer].tolist(), stems[longer].tolist(), strict=True)
        ]
        token = _Tokens(laid, texts)
        found = [
            (start, start + len(steps), pid)
            for start, entries in checks
            for pid, steps in entries
            if len(steps) > 1 and _spells(steps, token, start)
        ]
        columns = np.array(found, dtype=np.int64).reshape(-1, 3)
        return (
            np.concatenate((alone, columns[:, 0])),
            np.concatenate((alone + 1, columns[:, 1])),
            np.concatenate((pids, columns[:, 2])),
        )

    def _stem_starts(self, laid: _Words, raw: _Ascii, texts: Sequence[str]) -> tuple[Ints, Ints]:
        """(word, stem) arrays: every word that starts with a stem of a prefix phrase."""
        low, begins, prefixes = raw.lower, raw.begins, raw.prefixes
        words: list[int | Ints] = []
        stems: list[int | Ints] = []
        for size, dictionary in self._stems.items():
            long_enough, hashes = prefixes[size]
            heads = begins[long_enough]
            found = dictionary.find(hashes, low, heads, heads + size)
            words.append(long_enough[found >= 0])
            stems.append(found[found >= 0])
        token = _Tokens(laid, texts)
        for at in range(len(begins), len(laid.number)):  # the folded texts: word by word
            word = token(at)
            for size in self._stems:
                stem = self._stem_ids.get(word[:size])
                if stem is not None and len(self._stem_list[stem]) == size:
                    words.append(at)
                    stems.append(stem)
        return np.hstack([np.zeros(0, dtype=np.int64), *words]), np.hstack(
            [np.zeros(0, dtype=np.int64), *stems]
        )


class _Tokens:
    """The folded word at a place in the laid-out words, made only when asked for."""

    def __init__(self, laid: _Words, texts: Sequence[str]) -> None:
        self._laid = laid
        self._texts = texts
        self._folded: dict[int, list[str]] = {}

    def __call__(self, at: int) -> str:
        """The folded word at `at` ("" past the end)."""
        laid = self._laid
        if at >= len(laid.number):
            return ""
        number = int(laid.text[at])
        text = self._texts[number]
        if text.isascii():
            return text[int(laid.begin[at]) : int(laid.end[at])].lower()
        folded = self._folded.get(number)
        if folded is None:
            folded = self._folded[number] = words(text)
        return folded[int(laid.index[at])]

    def text(self, at: int) -> int:
        """The text a word is in (-1 past the end)."""
        return int(self._laid.text[at]) if at < len(self._laid.number) else -1


def _spells(steps: tuple[_Step, ...], token: _Tokens, start: int) -> bool:
    """Do the words from `start` on (in one text) spell these phrase words?

    A prefix word agrees with any word that starts with it.
    """
    text = token.text(start)
    for offset, (word, prefix) in enumerate(steps):
        if token.text(start + offset) != text:
            return False
        got = token(start + offset)
        if got != word and not (prefix and got.startswith(word)):
            return False
    return True
