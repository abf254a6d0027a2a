"""The alert language: one keyword or exclude entry parsed into a frozen query tree.

This parser is the only definition of the language. Syntax, loosest binding first:

- `a OR b` — either; `a AND b` — both. Operators are written in capitals; lowercase
  "and"/"or"/"not"/"near" are ordinary words of a phrase ("vision and language").
- Two terms side by side mean AND (`"neural collapse" -grokking`), except that plain
  words side by side form ONE phrase: `neural collapse` is `"neural collapse"`, so a
  plain keyword keeps its meaning.
- `NOT a` or `-a` — without; `( ... )` groups.
- `a NEAR/n b` — two phrases in one field (the title, the abstract, one organisation or
  one tag) with at most n words between them, in either order, without overlapping.
  `NEAR` is an operator only with its distance: a bare `NEAR` is an error, never a word.
- `"..."` a quoted phrase; `word*` a prefix (`transform*` matches transformer,
  transformers) — at the end of any word of a phrase, at least two letters.
- `title:`, `abstract:` scope a phrase or a group to one field (unscoped phrases search
  title and abstract); `org:` and `tag:` look for a phrase inside one of the paper's
  organisations or AI keywords (Hugging Face); `author:` a name followed with the same
  rule as `authors:`; `category:cs.LG`, `source:hf-daily` (trailing `*` for a prefix,
  `category:math*`); `votes>=N` / `stars>=N` (`>` too) for sources that count them.

A query must contain a term that is not negated, in every way it can match: `-survey`
alone would match nearly every paper, so it is rejected (use `exclude:` for that).

To add a field: a scope name in `SCOPES` (and the lexer's list), the atom it makes in
`_term`, then where the index and the reference evaluator find that atom in a paper.
(Over 500 lines: tree, lexer and parser are one definition, read together.)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from sys import intern
from typing import Literal

from bot.errors import QueryError as QueryError  # the error's home; imported from here too
from bot.text.fold import AuthorKey, author_key, fold_label, words

PhraseField = Literal["text", "title", "abstract", "org", "tag"]
Counted = Literal["votes", "stars"]
SCOPES = ("title", "abstract", "author", "category", "source", "org", "tag")
MIN_PREFIX = 2
#: the largest count a `votes>=`/`stars>=` comparison accepts: sources keep no larger one
#: (`bot.ingest.sources.checks.MAX_COUNT`; the query language does not import the sources)
MAX_COUNT = 1_000_000_000
#: the largest NEAR distance, in words (an abstract rarely has more)
MAX_NEAR = 1000
#: groups and NOTs inside one another, at most: far above any real alert, far below what
#: would exhaust Python's recursion (parsing and matching both walk the tree)
MAX_NESTING = 32

# ------------------------------------------------------------------------------- tree


# Phrases and authors, the commonest atoms, keep their hash (made once, with the atom):
# the index looks atoms up some 1.5 million times to build and match a bench day, and
# hashing their words each time (strings all over memory) cost 0.1-0.25 s of it (best of
# 8-12 runs each). Pickled by their fields: another process hashes strings differently.


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive folded words in `field`; a word ending in `*` is a prefix."""

    words: tuple[str, ...]
    field: PhraseField = "text"
    hashed: int = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hashed", hash((self.words, self.field)))

    def __hash__(self) -> int:
        return self.hashed

    def __reduce__(self) -> tuple[type[Phrase], tuple[tuple[str, ...], PhraseField]]:
        return Phrase, (self.words, self.field)


@dataclass(frozen=True, slots=True)
class Near:
    """Both phrases (of one field) with at most `distance` words between them."""

    first: Phrase
    second: Phrase
    distance: int


@dataclass(frozen=True, slots=True)
class Author:
    """A paper author designated by this name (see `bot.text.fold.same_author`)."""

    key: AuthorKey
    hashed: int = dataclasses.field(init=False, repr=False, compare=False)  # see Phrase

    def __post_init__(self) -> None:
        object.__setattr__(self, "hashed", hash(self.key))

    def __hash__(self) -> int:
        return self.hashed

    def __reduce__(self) -> tuple[type[Author], tuple[AuthorKey]]:
        return Author, (self.key,)


@dataclass(frozen=True, slots=True)
class Label:
    """A category or source name (folded); `prefix` when written with a trailing `*`."""

    field: Literal["category", "source"]
    value: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class AtLeast:
    """The paper's count (`votes` or `stars`) is known and at least `minimum`."""

    field: Counted
    minimum: int


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not match."""

    child: Node


@dataclass(frozen=True, slots=True)
class And:
    """Every child matches."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child matches."""

    children: tuple[Node, ...]


Atom = Phrase | Near | Author | Label | AtLeast
Node = Atom | Not | And | Or


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed alert: the text as the user wrote it and its tree."""

    text: str
    root: Node


def atoms(node: Node, positive: bool = True) -> Iterator[tuple[Atom, bool]]:
    """Every atom of the tree with its polarity (False under an odd number of NOTs)."""
    if isinstance(node, Not):
        yield from atoms(node.child, not positive)
    elif isinstance(node, And | Or):
        for child in node.children:
            yield from atoms(child, positive)
    else:
        yield node, positive


def evaluate(node: Node, holds: set[Atom] | frozenset[Atom]) -> bool:
    """The query's truth when exactly the atoms in `holds` match the paper."""
    if isinstance(node, Not):
        return not evaluate(node.child, holds)
    if isinstance(node, And):
        return all(evaluate(c, holds) for c in node.children)
    if isinstance(node, Or):
        return any(evaluate(c, holds) for c in node.children)
    return node in holds


# ----------------------------------------------------------------------------- tokens

# A token: (kind, text, place); kind is word, quoted, neg, scope, count, near, ( or ), or
# the operator itself (AND, OR, NOT); "end" closes every token list. A count's text is
# "field minimum" and a near's its distance, both checked. Its place is its number among
# the lexer's matches: the column is worked out only for an error (`_column`).
_Token = tuple[str, str, int]

# One alternative per token kind, tried in this order at each position after the spaces
# (group 1); the group that matched says the kind. A "special" word is an operator, a
# NEAR, a stray `-` (not right before a term) or an unknown `field:`.
_LEX = re.compile(
    r"""(\s*+)(?:
    ([()])
    |("[^"]*"|“[^”]*”)
    |((?i:votes|stars)\s*(?:>=|=>|>|<=|=<|<|==|=)\s*[^\s()]*)
    |((?i:title|abstract|author|category|source|org|tag):)
    |(-(?=[^\s)]))
    |((?:AND|OR|NOT|NEAR(?:/[^\s()"“”]*)?)(?![^\s()"“”])|-|[A-Za-z]+:[^\s()"“”]+)
    |([^\s()"“”]+)
    |(.))""",
    re.VERBOSE,
)
_COUNT = re.compile(r"([a-z]+)\s*(>=|=>|>|<=|=<|<|==|=)\s*(\S*)", re.IGNORECASE)
_OPERATORS = frozenset({"AND", "OR", "NOT"})
_ENDS_OR = frozenset({"end", ")"})
_PHRASE_START = frozenset({"word", "quoted", "(", "scope"})
_STARTS_TERM = _PHRASE_START | {"count"}
_PHRASE_FIELDS: dict[str, PhraseField] = {
    "title": "title",
    "abstract": "abstract",
    "org": "org",
    "tag": "tag",
}


class _Invalid(Exception):
    """A token or term that means nothing (the caller adds the column)."""


def _tokens(text: str, lexed: list[tuple[str, ...]]) -> list[_Token]:
    """A query's tokens (from its lexer matches), closed by an "end" token."""
    out: list[_Token] = []
    append = out.append
    place = 0
    try:
        for place, (_, paren, quoted, count, scope, neg, special, word, bad) in enumerate(lexed):
            if word:
                append(("word", word, place))
            elif paren:
                append((paren, paren, place))
            elif quoted:
                append(("quoted", quoted[1:-1], place))
            elif neg:
                append(("neg", neg, place))
            elif special:
                append(_special(special, place))
            elif scope:
                append(("scope", scope[:-1].lower(), place))
            elif count:
                append(_count_token(count, place))
            else:
                closing = bad == "”"
                raise _Invalid(
                    "closing quote without an opening one" if closing else "unterminated quote"
                )
    except _Invalid as exc:
        raise QueryError(str(exc), _column(text, lexed, place)) from None
    append(("end", "", len(lexed)))
    return out


def _column(text: str, lexed: list[tuple[str, ...]], place: int) -> int:
    """The 1-based column of the token at this place (after the last one: past the end)."""
    if place >= len(lexed):
        return len(text) + 1
    before = sum(len("".join(groups)) for groups in lexed[:place])
    return before + len(lexed[place][0]) + 1


def _special(word: str, place: int) -> _Token:
    """An operator or a NEAR/n; a stray `-` or an unknown `field:` is an error."""
    if word in _OPERATORS:
        return (word, word, place)
    if word.startswith("NEAR"):
        distance = word[5:]
        if not _whole(distance, MAX_NEAR):
            raise _Invalid(f"NEAR needs a distance of 0 to {MAX_NEAR} words, e.g. NEAR/5")
        return ("near", distance, place)
    if word == "-":
        raise _Invalid("'-' must be written right before the term it excludes")
    known = ", ".join(sorted(SCOPES))
    raise _Invalid(f"unknown field '{word.split(':')[0]}:' (known: {known})")


def _count_token(text: str, place: int) -> _Token:
    """A `votes>=N` / `stars>N` token, or the error that says what a comparison must be."""
    found = _COUNT.fullmatch(text)
    field, op, number = found.groups() if found else ("", "", "")
    field = field.lower()
    if op not in (">=", "=>", ">"):
        raise _Invalid(f"{field} supports only '>=' and '>', not '{op}'")
    if not (number.isascii() and number.isdigit()):
        raise _Invalid(f"{field} must be compared with a whole number, e.g. {field}>=10")
    if not _whole(number, MAX_COUNT):
        raise _Invalid(f"{field} must be compared with a number up to {MAX_COUNT:,}")
    return ("count", f"{field} {int(number) + (1 if op == '>' else 0)}", place)


def _whole(digits: str, largest: int) -> bool:
    """Is this a whole number in ASCII digits (int() takes "²" and "٣"), 0 to `largest`?"""
    return digits.isascii() and digits.isdigit() and len(digits) <= 12 and int(digits) <= largest


# ----------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the tokens: or → and → unary (NOT, NEAR) → primary."""

    __slots__ = ("depth", "lexed", "pos", "text", "tokens")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lexed = _LEX.findall(text)
        self.tokens = _tokens(text, self.lexed)
        self.pos = 0
        self.depth = 0

    def _deeper(self, token: _Token) -> None:
        """One level deeper (a group, a NOT) at `token`; too deep is a QueryError there. The
        caller steps back up (not in a `finally`: an error ends the parse; a context manager
        cost 1.5 µs of a boolean query's 11)."""
        if self.depth == MAX_NESTING:
            raise self.fail(f"nested more than {MAX_NESTING} levels deep", token)
        self.depth += 1

    def fail(self, message: str, token: _Token) -> QueryError:
        """The error to raise about this token."""
        return QueryError(message, _column(self.text, self.lexed, token[2]))

    def take(self) -> _Token:
        """Consume and return the next token."""
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node:
        """The whole query; every token must be used."""
        if len(self.tokens) == 1:
            raise QueryError("empty query", 1)
        node = self.parse_or(None)
        extra = self.tokens[self.pos]
        if extra[0] != "end":
            raise self.fail("unbalanced parenthesis", extra)
        return node

    def parse_or(self, scope: str | None) -> Node:
        """Terms joined by OR, each a run of terms joined by AND (written or implied by
        juxtaposition): AND binds tighter."""
        tokens = self.tokens
        first = self.parse_unary(scope, None)
        if tokens[self.pos][0] in _ENDS_OR:  # one term: the commonest query
            return first
        terms, alternatives = [first], list[Node]()
        while (kind := tokens[self.pos][0]) not in _ENDS_OR:
            after = None
            if kind in ("OR", "AND"):
                after = tokens[self.pos]
                self.pos += 1
            if kind == "OR":
                alternatives.append(terms[0] if len(terms) == 1 else _joined(And, terms))
                terms = []
            terms.append(self.parse_unary(scope, after))
        alternatives.append(terms[0] if len(terms) == 1 else _joined(And, terms))
        return alternatives[0] if len(alternatives) == 1 else _joined(Or, alternatives)

    def parse_unary(self, scope: str | None, after: _Token | None) -> Node:
        """NOT / - before a term, or a term, or two phrases joined by NEAR/n."""
        token = self.tokens[self.pos]
        kind = token[0]
        if kind in _STARTS_TERM:  # the commonest case first
            first = self.parse_primary(scope)
            return (
                self._near(first, self.take(), scope)
                if self.tokens[self.pos][0] == "near"
                else first
            )
        if kind in ("AND", "OR", "near"):
            raise self.fail(f"expected a term before '{_spelled(token)}'", token)
        if kind in ("end", ")") and after is not None:
            raise self.fail(f"expected a term after '{_spelled(after)}'", after)
        if kind in ("neg", "NOT"):
            self.pos += 1
            self._deeper(token)
            node: Node = Not(self.parse_unary(scope, token))
            self.depth -= 1
            return node
        first = self.parse_primary(scope)
        if self.tokens[self.pos][0] != "near":
            return first
        return self._near(first, self.take(), scope)

    def parse_primary(self, scope: str | None) -> Node:
        """A group, a scoped term, a quoted phrase, a run of words or a count comparison."""
        tokens = self.tokens
        token = tokens[self.pos]
        self.pos += 1
        kind = token[0]
        if kind == "word" or kind == "quoted":
            raw = token[1]
            if kind == "word" and scope not in ("category", "source"):
                run = [raw]  # plain words side by side: one phrase
                while tokens[self.pos][0] == "word":
                    run.append(tokens[self.pos][1])
                    self.pos += 1
                raw = " ".join(run)
            try:
                return _term(raw, scope or "text", kind == "quoted")
            except _Invalid as exc:  # the error is at the term's first token
                raise self.fail(str(exc), token) from None
        if kind == "(":
            self._deeper(token)
            node = self._group(token, scope)
            self.depth -= 1
            return node
        if kind in (")", "end"):
            raise self.fail("unbalanced parenthesis", token)
        if kind == "scope":
            return self._scoped(token, scope)
        field, minimum = token[1].split()  # a count: the lexer checked both
        if scope is not None:
            raise self.fail(f"{field} cannot be scoped to '{scope}:'", token)
        return AtLeast("stars" if field == "stars" else "votes", int(minimum))

    def _near(self, first: Node, near: _Token, scope: str | None) -> Near:
        """`first NEAR/n second`: two phrases of one field."""
        if self.tokens[self.pos][0] not in _PHRASE_START:
            raise self.fail(f"expected a phrase after '{_spelled(near)}'", near)
        second = self.parse_primary(scope)
        if not (isinstance(first, Phrase) and isinstance(second, Phrase)):
            raise self.fail(f"'{_spelled(near)}' needs a phrase on each side", near)
        if first.field != second.field:
            message = f"'{_spelled(near)}' needs both phrases in one field, e.g. title:(a NEAR/3 b)"
            raise self.fail(message, near)
        return Near(first, second, int(near[1]))

    def _group(self, opening: _Token, scope: str | None) -> Node:
        """The inside of ( ... )."""
        kind = self.tokens[self.pos][0]
        if kind == "end":
            raise self.fail("unbalanced parenthesis", opening)
        if kind == ")":
            raise self.fail("empty parentheses", opening)
        node = self.parse_or(scope)
        if self.take()[0] != ")":
            raise self.fail("unbalanced parenthesis", opening)
        return node

    def _scoped(self, token: _Token, scope: str | None) -> Node:
        """`field:` applied to the term or group right after it."""
        if scope is not None:
            raise self.fail(f"'{token[1]}:' inside '{scope}:'", token)
        if self.tokens[self.pos][0] not in ("word", "quoted", "("):
            raise self.fail(f"expected a term after '{token[1]}:'", token)
        return self.parse_primary(token[1])


def _spelled(token: _Token) -> str:
    """An operator as the user wrote it."""
    return f"NEAR/{token[1]}" if token[0] == "near" else token[1]


def _joined(kind: type[And] | type[Or], children: list[Node]) -> Node:
    """One child, or the node of them all (nested nodes of the same kind merged in)."""
    if len(children) == 1:
        return children[0]
    out: list[Node] = []
    for child in children:
        out.extend(child.children if isinstance(child, kind) else (child,))
    return kind(tuple(out))


# Cached: the same few terms recur in many queries (`x AND (y OR z)`), and queries that
# share a term then share one atom object, which dicts compare by identity first.
@lru_cache(maxsize=65536)
def _term(raw: str, scope: str, quoted: bool) -> Atom:
    """The atom `raw` means in this scope (a phrase, an author, a category or a source)."""
    if scope == "author":
        key = author_key(raw)
        if key is None or "*" in raw:
            raise _Invalid("an author needs a name (no '*')")
        return Author(key)
    if scope in ("category", "source"):
        value = fold_label(raw)
        if not value.rstrip("*"):
            raise _Invalid(f"'{scope}:' needs a name")
        prefix = value.endswith("*")
        return Label("category" if scope == "category" else "source", value.rstrip("*"), prefix)
    return Phrase(_phrase_words(raw, quoted), _PHRASE_FIELDS.get(scope, "text"))


def _phrase_words(raw: str, quoted: bool) -> tuple[str, ...]:
    """Folded words of a phrase; a word written with a trailing `*` keeps it as a prefix."""
    if "*" not in raw:
        plain = tuple(map(intern, words(raw)))  # the same few words in many phrases
        if not plain:
            raise _Invalid("a phrase needs letters or digits")
        return plain
    out: list[str] = []
    for piece in raw.split():
        star = piece.endswith("*")
        body = piece.rstrip("*")
        if "*" in body and not quoted:
            raise _Invalid("'*' is only allowed at the end of a word")
        folded = words(body)
        if star and (not folded or len(folded[-1]) < MIN_PREFIX):
            raise _Invalid(f"prefix '{piece}' needs at least {MIN_PREFIX} letters")
        if star:
            folded[-1] += "*"
        out.extend(map(intern, folded))
    if not out:
        raise _Invalid("a phrase needs letters or digits")
    return tuple(out)


def parse_query(text: str) -> Query:
    """Parse one keyword or exclude entry; raise `QueryError` (message, 1-based column)."""
    return Query(text, parse_tree(text))


def parse_tree(text: str) -> Node:
    """`parse_query`'s tree alone (the index keeps no `Query`: with `_Parser`'s slots, the
    bench's keywords parse in 1.29-1.33 s CPU, not 1.46-1.51)."""
    root = _Parser(text).parse()
    if isinstance(root, (Not, And, Or)) and _true_without_terms(root):
        raise QueryError(
            "the query matches papers without any of its terms: add one not negated", 1
        )
    return root


def _true_without_terms(node: Node) -> bool:
    """Would the query hold for a paper without any of its atoms (as `evaluate` with none)?"""
    if isinstance(node, Not):
        return not _true_without_terms(node.child)
    if isinstance(node, And):
        return all(map(_true_without_terms, node.children))
    if isinstance(node, Or):
        return any(map(_true_without_terms, node.children))
    return False


def parse_follow(name: str) -> AuthorKey:
    """Parse one `authors:` entry; raise `QueryError` when it holds no name."""
    key = author_key(name)
    if key is None:
        raise QueryError("an author needs a name", 1)
    return key
