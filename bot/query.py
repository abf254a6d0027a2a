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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from bot.builder import builder
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
_SYNTAX_CHAR = re.compile(r'["“”()*:<>=]')
# "-" at the start or after a space (a negation); written as a lookbehind after the "-" so
# that the search scans for the literal "-" (several times faster than `(?<!\S)-`).
_SYNTAX_DASH = re.compile(r"-(?<=(?<!\S)-)")
_SYNTAX_OPERATOR = re.compile(r"(?<!\S)(?:AND|OR|NOT)(?!\S)")


#: groups and NOTs inside one another, at most: far above any real alert, far below what
#: would exhaust Python's recursion (parsing, matching and compiling all walk the tree)
MAX_NESTING = 32


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


# A token: (kind, text, column, end); kind is word, quoted, neg, scope, votes, ( or ), or the
# operator itself (AND, OR, NOT); "end" closes every token list.
_Token = tuple[str, str, int, int]

# One alternative per token kind, tried in this order at each position, after the spaces
# (skipped in the same match: one loop turn per token, not two).
_LEX = re.compile(
    r"""\s*+(?:
    (?P<paren>[()])
    |(?P<quoted>"[^"]*"|“[^”]*”)
    |(?P<votes>votes\s*(?:>=|=>|>|<=|=<|<|==|=)\s*[^\s()]*)
    |(?P<scope>(?:title|abstract|author|category|source):)
    |(?P<neg>-(?=[^\s)]))
    |(?P<word>[^\s()"“”]+)
    |(?P<bad>.))""",
    re.VERBOSE | re.IGNORECASE,
)
_UNKNOWN_FIELD = re.compile(r"([A-Za-z]+):.")
_ENDS_AND = frozenset({"end", ")", "OR"})


def _tokens(text: str) -> list[_Token]:
    """Split a query into tokens, each with its 1-based column, closed by an "end" token."""
    out: list[_Token] = []
    for found in _LEX.finditer(text):
        kind = found.lastgroup or ""
        value, column, end = found.group(kind), found.start(kind) + 1, found.end()
        if kind == "word":
            out.append(_word_token(value, column, end))
        elif kind == "paren":
            out.append((value, value, column, end))
        elif kind == "quoted":
            out.append(("quoted", value[1:-1], column, end))
        elif kind == "neg":
            out.append(("neg", value, column, end))
        elif kind == "scope":
            out.append(("scope", value[:-1].lower(), column, end))
        elif kind == "votes":
            out.append(_votes_token(value, column))
        else:
            closing = value == "”"
            raise QueryError(
                "closing quote without an opening one" if closing else "unterminated quote", column
            )
    out.append(("end", "", len(text) + 1, len(text) + 1))
    return out


def _word_token(word: str, column: int, end: int) -> _Token:
    """A word or an operator; a stray `-` or an unknown `field:` is an error."""
    if word in _OPERATORS:
        return (word, word, column, end)
    if word[0] == "-":
        raise QueryError("'-' must be written right before the term it excludes", column)
    if ":" in word and (unknown := _UNKNOWN_FIELD.match(word)):
        known = ", ".join(sorted(SCOPES))
        raise QueryError(f"unknown field '{unknown.group(1)}:' (known: {known})", column)
    return ("word", word, column, end)


def _votes_token(text: str, column: int) -> _Token:
    """A `votes>=N` token, or the error that says what a votes comparison must look like."""
    found = _VOTES.fullmatch(text)
    op, number = (found.group(1), found.group(2)) if found else ("", "")
    if op not in (">=", "=>", ">"):
        raise QueryError(f"votes supports only '>=' and '>', not '{op}'", column)
    if not (number.isascii() and number.isdigit()):
        raise QueryError("votes must be compared with a whole number, e.g. votes>=10", column)
    minimum = int(number) + (1 if op == ">" else 0)
    return ("votes", str(minimum), column, column + len(text))


# ----------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the tokens: or → and → unary → primary."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    @contextmanager
    def _nested(self, token: _Token) -> Iterator[None]:
        """One level deeper (a group, a NOT) at `token`; too deep is a QueryError there."""
        if self.depth == MAX_NESTING:
            raise QueryError(f"nested more than {MAX_NESTING} levels deep", token[2])
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

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
            raise QueryError("unbalanced parenthesis", extra[2])
        return node

    def parse_or(self, scope: str | None) -> Node:
        """Terms joined by OR."""
        children = [self.parse_and(scope, None)]
        while self.tokens[self.pos][0] == "OR":
            children.append(self.parse_and(scope, self.take()))
        return children[0] if len(children) == 1 else Or(_flat(Or, children))

    def parse_and(self, scope: str | None, after: _Token | None) -> Node:
        """Terms joined by AND, written or implied by juxtaposition."""
        children = [self.parse_unary(scope, after)]
        while (kind := self.tokens[self.pos][0]) not in _ENDS_AND:
            children.append(self.parse_unary(scope, self.take() if kind == "AND" else None))
        return children[0] if len(children) == 1 else And(_flat(And, children))

    def parse_unary(self, scope: str | None, after: _Token | None) -> Node:
        """NOT / - before a term, or the term itself."""
        token = self.tokens[self.pos]
        kind = token[0]
        if kind in ("AND", "OR"):
            raise QueryError(f"expected a term before '{kind}'", token[2])
        if kind in ("end", ")") and after is not None:
            raise QueryError(f"expected a term after '{after[1]}'", after[2])
        if kind in ("neg", "NOT"):
            self.pos += 1
            with self._nested(token):
                return Not(self.parse_unary(scope, token))
        return self.parse_primary(scope)

    def parse_primary(self, scope: str | None) -> Node:
        """A group, a scoped term, a quoted phrase, a run of words or a votes comparison."""
        token = self.take()
        kind = token[0]
        if kind == "(":
            with self._nested(token):
                return self._group(token, scope)
        if kind in (")", "end"):
            raise QueryError("unbalanced parenthesis", token[2])
        if kind == "scope":
            return self._scoped(token, scope)
        if kind == "votes":
            if scope is not None:
                raise QueryError(f"votes cannot be scoped to '{scope}:'", token[2])
            return Votes(int(token[1]))
        if kind == "quoted":
            return _term(token[1], scope or "text", token[2], quoted=True)
        if scope in ("category", "source"):
            return _term(token[1], scope, token[2], quoted=False)
        return self._word_run(token, scope)

    def _group(self, opening: _Token, scope: str | None) -> Node:
        """The inside of ( ... )."""
        kind = self.tokens[self.pos][0]
        if kind == "end":
            raise QueryError("unbalanced parenthesis", opening[2])
        if kind == ")":
            raise QueryError("empty parentheses", opening[2])
        node = self.parse_or(scope)
        if self.take()[0] != ")":
            raise QueryError("unbalanced parenthesis", opening[2])
        return node

    def _scoped(self, token: _Token, scope: str | None) -> Node:
        """`field:` applied to the term or group right after it."""
        if scope is not None:
            raise QueryError(f"'{token[1]}:' inside '{scope}:'", token[2])
        if self.tokens[self.pos][0] not in ("word", "quoted", "("):
            raise QueryError(f"expected a term after '{token[1]}:'", token[2])
        return self.parse_primary(token[1])

    def _word_run(self, first: _Token, scope: str | None) -> Node:
        """Plain words side by side: one phrase, written as the original text between them."""
        last = first
        while self.tokens[self.pos][0] == "word":
            last = self.take()
        raw = self.text[first[2] - 1 : last[3]]
        return _term(raw, scope or "text", first[2], quoted=False)


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
    if "*" not in raw:
        plain = tuple(words(raw))
        if not plain:
            raise QueryError("a phrase needs letters or digits", column)
        return plain
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


# ------------------------------------------------------------------------- fast path

# The commonest query shapes are recognised by one regex each and built directly; anything
# else (and any shape whose terms would raise) goes through the parser, so both agree.
# _W is one "word" token of the lexer that is not an operator: letters, digits, `_` (a word
# boundary when folded) and a trailing `*`; _R is a run of them (one phrase); _T a quoted
# phrase (its inside as group 1 or 2) or a run (group 3). Groups are read by position:
# `match.groups()` is several times cheaper than a lookup per named group.
_W = r"(?!(?:AND|OR|NOT)\b)\w++\**+"
_R = rf"{_W}(?:\s++{_W})*"
_T = rf'(?:"([^"]*)"|“([^”]*)”|({_R}))'
_FAST_AND_OR = re.compile(rf"\s*{_T}\s+AND\s+\(\s*({_R})\s+OR\s+({_R})\s*\)\s*")
_FAST_NOT = re.compile(rf"\s*({_R})\s+-({_R})\s*")
_FAST_SCOPED = re.compile(rf"\s*(title|abstract|author):\s*{_T}\s*")
# a label is any one lexer word: "cs.LG", "hf-daily", "math*"
_LABEL = r'(?!(?:AND|OR|NOT)(?!\S))[^\s()"“”*:<>=\-][^\s()"“”*:<>=]*+\**+'
_FAST_LABEL = re.compile(rf'\s*(category|source):\s*(?:"([^"]*)"|“([^”]*)”|({_LABEL}))\s*')
_FAST_RUN = re.compile(rf"\s*({_R})\s*")


# the fast path builds its nodes without their dataclass __init__ (see bot.builder)
_make_query = builder(Query)
_make_phrase = builder(Phrase)
_make_and = builder(And)
_make_or = builder(Or)
_make_not = builder(Not)


@dataclass(frozen=True, slots=True, eq=False)  # one object per shape: hashed by identity
class Shape:
    """A boolean query shape common enough to be read without the parser.

    `tree` builds the query's tree from its phrases, given in the order a walk of the tree
    (children left to right) meets them.
    """

    name: str
    tree: Callable[[tuple[Phrase, ...]], Node]


AND_OR = Shape("a AND (b OR c)", lambda p: _make_and((p[0], _make_or(p[1:]))))
AND_NOT = Shape("a -b", lambda p: _make_and((p[0], _make_not(p[1]))))


def boolean_runs(text: str) -> tuple[Shape, tuple[str, ...]] | None:
    """`text`'s shape and its phrases as written, for a query of a common shape without `*`.

    Each phrase as written, `run`, means `Phrase(tuple(words(run)))` when it has words;
    when one has none, `text` does not parse. None for any other text.
    """
    if "*" in text:
        return None
    found = _shape_runs(text)
    return None if found is None else found[:2]


def scoped_run(text: str) -> tuple[TextField, str] | None:
    """`text`'s field and phrase as written, for one `title:`/`abstract:` phrase without `*`.

    The phrase as written, `run`, means `Phrase(tuple(words(run)), field)` when it has
    words; when it has none, `text` does not parse. None for any other text.
    """
    if "*" in text or ":" not in text or not (found := _FAST_SCOPED.fullmatch(text)):
        return None
    scope, straight, curly, run = found.groups()
    if scope == "author":  # a name, not a phrase
        return None
    inner = run if run is not None else straight if straight is not None else curly
    return ("title" if scope == "title" else "abstract"), inner


def _shape_runs(text: str) -> tuple[Shape, tuple[str, ...], bool] | None:
    """`text`'s shape, its phrases as written, and whether the first phrase is quoted."""
    if " AND (" in text and (found := _FAST_AND_OR.fullmatch(text)):
        straight, curly, run, either, other = found.groups()
        if run is not None:
            return AND_OR, (run, either, other), False
        return AND_OR, (straight if straight is not None else curly, either, other), True
    if "-" in text and (found := _FAST_NOT.fullmatch(text)):
        return AND_NOT, found.groups(), False
    return None


def _boolean_shape(text: str) -> tuple[Shape, tuple[Phrase, ...]] | None:
    """`text`'s shape and phrases (`shape.tree(phrases)` is its tree), if of a common shape.

    Raises the QueryError of a phrase that does not hold.
    """
    found = _shape_runs(text)
    if found is None:
        return None
    shape, runs, quoted = found
    first = _quoted_phrase(runs[0]) if quoted else _text_phrase(runs[0])
    return shape, (first, *map(_text_phrase, runs[1:]))


def _fast_root(text: str) -> Node | None:
    """The tree of `text` when it has one of the commonest shapes, else None (use the parser).

    None also when a term would raise: the parser then reports the first error in order.
    """
    try:
        if shaped := _boolean_shape(text):
            return shaped[0].tree(shaped[1])
        if ":" in text and (found := _FAST_SCOPED.fullmatch(text) or _FAST_LABEL.fullmatch(text)):
            scope, straight, curly, run = found.groups()
            inner = straight if straight is not None else curly
            if inner is not None:
                return _term(inner, scope, 1, quoted=True)
            return _term(run, scope, 1, quoted=False)
        if found := _FAST_RUN.fullmatch(text):
            return _text_phrase(found.group(1))
    except QueryError:
        return None
    return None


@lru_cache(maxsize=16384)  # ~6 MB at most
def _text_phrase(raw: str) -> Phrase:
    """An unscoped, unquoted run of words; cached, as a few words recur in many queries."""
    folded = words(raw) if "*" not in raw else None
    if not folded:  # a prefix, or no words: the general rule (which may raise)
        return Phrase(_phrase_words(raw, 1, quoted=False))
    return _make_phrase(tuple(folded), "text")


def _quoted_phrase(inner: str) -> Phrase:
    """An unscoped quoted phrase (quoting only changes how a `*` inside a word is read)."""
    if "*" in inner:
        return Phrase(_phrase_words(inner, 1, quoted=True))
    return _text_phrase(inner)


def _has_syntax(text: str) -> bool:
    """Does `text` use any of the query syntax (else it is a plain phrase)?"""
    # cheap substring tests first: a regex search is what costs, and most texts have none
    return bool(
        _SYNTAX_CHAR.search(text)
        or ("-" in text and _SYNTAX_DASH.search(text))
        or (("AND" in text or "OR" in text or "NOT" in text) and _SYNTAX_OPERATOR.search(text))
    )


def plain_words(text: str) -> tuple[str, ...] | None:
    """The folded words of an entry that is just a phrase (maybe quoted), else None."""
    if _has_syntax(text):
        # exactly two quotes, or it is not one quoted phrase (and the regex would backtrack)
        quoted = _QUOTED_ONLY.fullmatch(text) if text.count('"') == 2 else None
        if quoted is None:
            return None
        text = quoted.group(1)
    return tuple(words(text)) or None


@lru_cache(maxsize=8192)
def parse_query(text: str) -> Query:
    """Parse one keyword or exclude entry; raise `QueryError` (message, 1-based column)."""
    fast = _fast_root(text)
    if fast is not None:
        return _make_query(text, fast)  # no fast shape holds without a term: nothing to check
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
