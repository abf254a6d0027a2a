"""The alert language: one keyword or exclude entry parsed into a frozen query tree.

Syntax, loosest binding first:

- `a OR b` — either; `a AND b` — both. Operators are written in capitals; lowercase
  "and"/"or" are ordinary words of a phrase ("vision and language").
- Two terms side by side mean AND (`"neural collapse" -grokking`), except that plain
  words side by side form ONE phrase: `neural collapse` is `"neural collapse"`, so a
  plain keyword keeps its meaning.
- `NOT a` or `-a` — without; `( ... )` groups.
- `"..."` a quoted phrase; `word*` a prefix (`transform*` matches transformer,
  transformers) — at the end of any word of a phrase, at least two letters.
- `title:`, `abstract:` scope a phrase or a group to one field (unscoped phrases search
  title and abstract); `author:` a name followed with the same rule as `authors:`;
  `category:cs.LG`, `source:hf-daily` (trailing `*` for a prefix, `category:math*`);
  `votes>=N` / `votes>N` for sources that count votes.

A query must contain a term that is not negated, in every way it can match: `-survey`
alone would match nearly every paper, so it is rejected (use `exclude:` for that).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

from bot.errors import PaperbotError
from bot.fold import AuthorKey, author_key, fold_label, words

TextField = Literal["text", "title", "abstract"]
SCOPES = ("title", "abstract", "author", "category", "source")
MIN_PREFIX = 2
_OPERATORS = frozenset({"AND", "OR", "NOT"})
_VOTES = re.compile(r"votes\s*(>=|=>|>|<=|=<|<|==|=)\s*(\S*)", re.IGNORECASE)
# A text with none of these is a plain phrase; most alerts are, and 100,000 subscribers'
# worth of them must compile in well under a second.
_QUOTED_ONLY = re.compile(r'\s*"([^"*]*)"\s*')
_SYNTAX = re.compile(r'["“”()*:<>=]|(?:^|\s)-|(?<!\S)(?:AND|OR|NOT)(?!\S)')


class QueryError(PaperbotError):
    """An alert query that cannot be parsed; `column` (1-based) is where the problem is."""

    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"{message} at column {column}")


# ------------------------------------------------------------------------------- tree


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive folded words in `field`; a word ending in `*` is a prefix."""

    words: tuple[str, ...]
    field: TextField = "text"


@dataclass(frozen=True, slots=True)
class Author:
    """A paper author designated by this name (see `bot.fold.same_author`)."""

    key: AuthorKey


@dataclass(frozen=True, slots=True)
class Label:
    """A category or source name (folded); `prefix` when written with a trailing `*`."""

    field: Literal["category", "source"]
    value: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Votes:
    """The paper has at least `minimum` votes."""

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


Atom = Phrase | Author | Label | Votes
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


class _Token(NamedTuple):
    """A lexical token: kind is word, quoted, op, neg, scope, votes, ( or )."""

    kind: str
    text: str
    column: int
    end: int = 0


# One alternative per token kind, tried in this order at each position.
_LEX = re.compile(
    r"""(?P<space>\s+)
    |(?P<paren>[()])
    |(?P<quoted>"[^"]*"|“[^”]*”)
    |(?P<votes>votes\s*(?:>=|=>|>|<=|=<|<|==|=)\s*[^\s()]*)
    |(?P<scope>(?:title|abstract|author|category|source):)
    |(?P<neg>-(?=[^\s)]))
    |(?P<word>[^\s()"“”]+)""",
    re.VERBOSE | re.IGNORECASE,
)
_UNKNOWN_FIELD = re.compile(r"([A-Za-z]+):.")


def _tokens(text: str) -> list[_Token]:
    """Split a query into tokens, each with its 1-based column."""
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        found = _LEX.match(text, pos)
        if found is None:
            if text[pos] == "”":
                raise QueryError("closing quote without an opening one", pos + 1)
            raise QueryError("unterminated quote", pos + 1)
        kind, value, end = found.lastgroup or "", found.group(), found.end()
        if kind == "paren":
            out.append(_Token(value, value, pos + 1, end))
        elif kind == "quoted":
            out.append(_Token(kind, value[1:-1], pos + 1, end))
        elif kind == "votes":
            out.append(_votes_token(value, pos))
        elif kind == "scope":
            out.append(_Token(kind, value[:-1].lower(), pos + 1, end))
        elif kind in ("neg", "word"):
            out.append(_word_token(kind, value, pos, end))
        pos = end
    return out


def _word_token(kind: str, word: str, pos: int, end: int) -> _Token:
    """A word, an operator or a `-`; a stray `-` or an unknown `field:` is an error."""
    if kind == "neg":
        return _Token(kind, word, pos + 1, end)
    if word.startswith("-"):
        raise QueryError("'-' must be written right before the term it excludes", pos + 1)
    if unknown := _UNKNOWN_FIELD.match(word):
        known = ", ".join(sorted(SCOPES))
        raise QueryError(f"unknown field '{unknown.group(1)}:' (known: {known})", pos + 1)
    return _Token("op" if word in _OPERATORS else "word", word, pos + 1, end)


def _votes_token(text: str, pos: int) -> _Token:
    """A `votes>=N` token, or the error that says what a votes comparison must look like."""
    found = _VOTES.fullmatch(text)
    op, number = (found.group(1), found.group(2)) if found else ("", "")
    if op not in (">=", "=>", ">"):
        raise QueryError(f"votes supports only '>=' and '>', not '{op}'", pos + 1)
    if not number.isdigit():
        raise QueryError("votes must be compared with a whole number, e.g. votes>=10", pos + 1)
    minimum = int(number) + (1 if op == ">" else 0)
    return _Token("votes", str(minimum), pos + 1, pos + len(text))


# ----------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the tokens: or → and → unary → primary."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> _Token | None:
        """The next token, if any."""
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        """Consume and return the next token."""
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node:
        """The whole query; every token must be used."""
        if not self.tokens:
            raise QueryError("empty query", 1)
        node = self.parse_or(None)
        extra = self.peek()
        if extra is not None:
            raise QueryError("unbalanced parenthesis", extra.column)
        return node

    def parse_or(self, scope: str | None) -> Node:
        """Terms joined by OR."""
        children = [self.parse_and(scope)]
        while self._at_op("OR"):
            op = self.take()
            children.append(self.parse_and(scope, after=op))
        return children[0] if len(children) == 1 else Or(_flat(Or, children))

    def parse_and(self, scope: str | None, after: _Token | None = None) -> Node:
        """Terms joined by AND, written or implied by juxtaposition."""
        children = [self.parse_unary(scope, after)]
        while True:
            token = self.peek()
            if token is None or token.kind == ")" or self._at_op("OR"):
                break
            op = self.take() if self._at_op("AND") else None
            children.append(self.parse_unary(scope, op))
        return children[0] if len(children) == 1 else And(_flat(And, children))

    def parse_unary(self, scope: str | None, after: _Token | None) -> Node:
        """NOT / - before a term, or the term itself."""
        token = self.peek()
        if token is None:
            where = after.column if after else len(self.text) + 1
            raise QueryError(f"expected a term after '{after.text if after else ''}'", where)
        if token.kind == "op" and token.text in ("AND", "OR"):
            raise QueryError(f"expected a term before '{token.text}'", token.column)
        if token.kind == ")" and after is not None:
            raise QueryError(f"expected a term after '{after.text}'", after.column)
        if token.kind == "neg" or (token.kind == "op" and token.text == "NOT"):
            self.take()
            return Not(self.parse_unary(scope, token))
        return self.parse_primary(scope)

    def parse_primary(self, scope: str | None) -> Node:
        """A group, a scoped term, a quoted phrase, a run of words or a votes comparison."""
        token = self.take()
        if token.kind == "(":
            return self._group(token, scope)
        if token.kind == ")":
            raise QueryError("unbalanced parenthesis", token.column)
        if token.kind == "scope":
            return self._scoped(token, scope)
        if token.kind == "votes":
            if scope is not None:
                raise QueryError(f"votes cannot be scoped to '{scope}:'", token.column)
            return Votes(int(token.text))
        if token.kind == "quoted":
            return _term(token.text, scope or "text", token.column, quoted=True)
        if scope in ("category", "source"):
            return _term(token.text, scope, token.column, quoted=False)
        return self._word_run(token, scope)

    def _group(self, opening: _Token, scope: str | None) -> Node:
        """The inside of ( ... )."""
        closing = self.peek()
        if closing is None:
            raise QueryError("unbalanced parenthesis", opening.column)
        if closing.kind == ")":
            raise QueryError("empty parentheses", opening.column)
        node = self.parse_or(scope)
        closing = self.peek()
        if closing is None or closing.kind != ")":
            raise QueryError("unbalanced parenthesis", opening.column)
        self.take()
        return node

    def _scoped(self, token: _Token, scope: str | None) -> Node:
        """`field:` applied to the term or group right after it."""
        if scope is not None:
            raise QueryError(f"'{token.text}:' inside '{scope}:'", token.column)
        after = self.peek()
        if after is None or after.kind in (")", "op", "neg", "scope"):
            raise QueryError(f"expected a term after '{token.text}:'", token.column)
        return self.parse_primary(token.text)

    def _word_run(self, first: _Token, scope: str | None) -> Node:
        """Plain words side by side: one phrase, written as the original text between them."""
        last = first
        while (nxt := self.peek()) is not None and nxt.kind == "word":
            last = self.take()
        raw = self.text[first.column - 1 : last.end]
        return _term(raw, scope or "text", first.column, quoted=False)

    def _at_op(self, name: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text == name


def _flat(kind: type[And] | type[Or], children: list[Node]) -> tuple[Node, ...]:
    """Children with nested nodes of the same kind merged into this one."""
    out: list[Node] = []
    for child in children:
        out.extend(child.children if isinstance(child, kind) else (child,))
    return tuple(out)


def _term(raw: str, scope: str, column: int, *, quoted: bool) -> Atom:
    """The atom `raw` means in this scope (a phrase, an author, a category or a source)."""
    if scope == "author":
        key = author_key(raw)
        if key is None or "*" in raw:
            raise QueryError("an author needs a name (no '*')", column)
        return Author(key)
    if scope in ("category", "source"):
        value = fold_label(raw)
        if not value.rstrip("*"):
            raise QueryError(f"'{scope}:' needs a name", column)
        prefix = value.endswith("*")
        return Label("category" if scope == "category" else "source", value.rstrip("*"), prefix)
    field: TextField = (
        "title" if scope == "title" else "abstract" if scope == "abstract" else "text"
    )
    return Phrase(_phrase_words(raw, column, quoted=quoted), field)


def _phrase_words(raw: str, column: int, *, quoted: bool) -> tuple[str, ...]:
    """Folded words of a phrase; a word written with a trailing `*` keeps it as a prefix."""
    out: list[str] = []
    for piece in raw.split():
        star = piece.endswith("*")
        body = piece.rstrip("*")
        if "*" in body and not quoted:
            raise QueryError("'*' is only allowed at the end of a word", column)
        folded = words(body)
        if star and (not folded or len(folded[-1]) < MIN_PREFIX):
            raise QueryError(f"prefix '{piece}' needs at least {MIN_PREFIX} letters", column)
        if star:
            folded[-1] += "*"
        out.extend(folded)
    if not out:
        raise QueryError("a phrase needs letters or digits", column)
    return tuple(out)


def plain_words(text: str) -> tuple[str, ...] | None:
    """The folded words of an entry that is just a phrase (maybe quoted), else None."""
    if _SYNTAX.search(text):
        quoted = _QUOTED_ONLY.fullmatch(text)
        if quoted is None:
            return None
        text = quoted.group(1)
    return tuple(words(text)) or None


@lru_cache(maxsize=8192)
def parse_query(text: str) -> Query:
    """Parse one keyword or exclude entry; raise `QueryError` (message, 1-based column)."""
    plain = plain_words(text)
    if plain is not None:
        return Query(text, Phrase(plain))
    root = _Parser(text).parse()
    if evaluate(root, frozenset()):
        raise QueryError(
            "the query matches papers without any of its terms: add one not negated", 1
        )
    return Query(text, root)


def parse_follow(name: str) -> AuthorKey:
    """Parse one `authors:` entry; raise `QueryError` when it holds no name."""
    key = author_key(name)
    if key is None:
        raise QueryError("an author needs a name", 1)
    return key
