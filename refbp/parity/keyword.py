"""``-k EXPRESSION``: select scenarios by name as pytest's ``-k`` selects tests.

Grammar (pytest's, with scenario names as the only "keywords")::

    expr   := term ("or" term)*
    term   := factor ("and" factor)*
    factor := "not" factor | "(" expr ")" | WORD

A ``WORD`` matches a scenario whose name contains it, case-insensitively (``Adam`` matches
``adam-mlp-f64``); a word with a glob character (``*?[``) must match the whole name as a
shell glob instead (``'*-f32'``). ``and``, ``or`` and ``not`` are keywords in any case.
A malformed expression raises :class:`KeywordError` naming the position.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

Matcher = Callable[[str], bool]
_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_KEYWORDS = {"and", "or", "not"}


class KeywordError(ValueError):
    """A ``-k`` expression that cannot be parsed."""


def _tokens(expression: str) -> list[str]:
    out, pos = [], 0
    while pos < len(expression):
        m = _TOKEN.match(expression, pos)
        if m is None:  # only trailing white space is left
            break
        out.append(m.group(1))
        pos = m.end()
    return out


def _word(word: str) -> Matcher:
    low = word.lower()
    if any(c in word for c in "*?["):
        return lambda name: fnmatch.fnmatchcase(name.lower(), low)
    return lambda name: low in name.lower()


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokens(expression)
        self.i = 0

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _fail(self, what: str) -> KeywordError:
        got = self._peek()
        where = f"at {got!r}" if got is not None else "at the end"
        return KeywordError(f"-k {self.expression!r}: expected {what} {where} (token "
                            f"{self.i + 1}); use words, and, or, not and parentheses")

    def parse(self) -> Matcher:
        if not self.tokens:
            raise KeywordError("-k expression is empty")
        m = self._expr()
        if self._peek() is not None:
            raise self._fail("'and', 'or' or the end")
        return m

    def _expr(self) -> Matcher:
        parts = [self._term()]
        while (t := self._peek()) is not None and t.lower() == "or":
            self.i += 1
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else (lambda n: any(p(n) for p in parts))

    def _term(self) -> Matcher:
        parts = [self._factor()]
        while (t := self._peek()) is not None and t.lower() == "and":
            self.i += 1
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else (lambda n: all(p(n) for p in parts))

    def _factor(self) -> Matcher:
        t = self._peek()
        if t is None or t == ")" or t.lower() in ("and", "or"):
            raise self._fail("a word, 'not' or '('")
        self.i += 1
        if t.lower() == "not":
            inner = self._factor()
            return lambda n: not inner(n)
        if t == "(":
            inner = self._expr()
            if self._peek() != ")":
                raise self._fail("')'")
            self.i += 1
            return inner
        return _word(t)


def keyword_matcher(expression: str) -> Matcher:
    """A predicate on scenario names for the ``-k`` ``expression`` (see the module docstring)."""
    return _Parser(expression).parse()
