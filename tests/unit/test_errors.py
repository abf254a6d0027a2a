"""One tree of errors: every public exception lives in bot/errors.py, drawn in its docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from types import ModuleType

import bot
from bot import errors

#: `  + Name: what it is` in the docstring's tree; the indent is the depth
TREE_LINE = re.compile(r"^(?P<indent> *)[*+-] (?P<name>\w+)", re.MULTILINE)


def exceptions_of(module: ModuleType) -> list[type[BaseException]]:
    """The public exception classes a module defines (not those it imports)."""
    return [
        value
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module.__name__
        and not name.startswith("_")
    ]


def modules() -> Iterator[ModuleType]:
    """Every module of the bot package."""
    for info in pkgutil.walk_packages(bot.__path__, "bot."):
        if info.name != "bot.__main__":  # importing it runs the CLI
            yield importlib.import_module(info.name)


def drawn_parents() -> dict[str, str | None]:
    """Each class the docstring's tree names, with the class drawn above it (None: a root)."""
    parents: dict[str, str | None] = {}
    above: list[tuple[int, str]] = []
    for line in TREE_LINE.finditer(errors.__doc__ or ""):
        depth, name = len(line["indent"]), line["name"]
        while above and above[-1][0] >= depth:
            above.pop()
        assert name not in parents, f"{name} is drawn twice"
        parents[name] = above[-1][1] if above else None
        above.append((depth, name))
    return parents


def test_public_exceptions_live_in_errors() -> None:
    assert len(exceptions_of(errors)) >= 10
    found = {
        module.__name__: [cls.__name__ for cls in exceptions_of(module)]
        for module in modules()
        if module is not errors and exceptions_of(module)
    }
    assert not found, f"public exceptions outside bot/errors.py: {found}"


def test_the_docstring_draws_every_error_under_its_base() -> None:
    parents = drawn_parents()
    classes = {cls.__name__: cls for cls in exceptions_of(errors)}
    assert set(parents) == set(classes)
    for name, parent in parents.items():
        ours = [base.__name__ for base in classes[name].__bases__ if base.__name__ in classes]
        assert ours[:1] == ([parent] if parent else []), f"{name} is drawn under {parent}"
        for other in ours[1:]:  # a second base is named on the class's own line
            assert f"also a {other}" in _line_of(name), f"{name} does not say it is a {other}"


def _line_of(name: str) -> str:
    """The docstring's tree line that draws this class."""
    doc = errors.__doc__ or ""
    return next(line for line in doc.splitlines() if TREE_LINE.match(line) and f" {name}:" in line)
