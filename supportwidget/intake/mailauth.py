"""Who really sent a message: our own MTA's Authentication-Results (RFC 8601) and alignment.

Anyone can write a From header, and anyone can add an Authentication-Results header to
the message they send. Only a header carrying our MTA's authserv-id counts, and of those
only the topmost: our MTA prepends its own above whatever the message arrived with.
The sender counts as authenticated on DMARC pass, or on a DKIM or SPF pass for a domain
aligned with the From domain (the same domain, a parent or a child of it: relaxed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# One lexical unit: a quoted string, a comment opener, a special, or a run of other text.
_TOKEN = re.compile(r'\s+|"(?:[^"\\]|\\.)*"?|\(|[;=/]|[^\s()";=/]+', re.DOTALL)


@dataclass(frozen=True)
class Result:
    """One method's outcome: 'dkim=pass header.d=example.com' as method, result, properties."""

    method: str
    result: str
    properties: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        props = "".join(f" {name}={value}" for name, value in sorted(self.properties.items()))
        return f"{self.method}={self.result}{props}"


@dataclass(frozen=True)
class Verdict:
    """Whether the sender is authenticated, and what our MTA said (for the staff who decide)."""

    authenticated: bool
    evidence: str


def _skip_comment(text: str, start: int) -> int:
    """Return the index just after the (possibly nested) comment opening at `start`."""
    depth, index = 0, start
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return index


def _words(text: str) -> Iterator[str | None]:
    """Yield the header's words and specials, comments dropped; None marks white space."""
    index = 0
    while index < len(text):
        if text[index] == "(":
            index = _skip_comment(text, index)
            yield None
            continue
        match = _TOKEN.match(text, index)
        assert match is not None  # the pattern matches any character
        token, index = match.group(), match.end()
        if token.isspace():
            yield None
        elif token.startswith('"'):
            yield re.sub(r"\\(.)", r"\1", token[1:-1] if token.endswith('"') else token[1:])
        else:
            yield token


def _statements(text: str) -> list[list[str]]:
    """Split the header into ';'-separated statements of words; adjacent words are joined."""
    statements: list[list[str]] = [[]]
    glued = False
    for word in _words(text):
        if word == ";":
            statements.append([])
            glued = False
        elif word is None:
            glued = False
        elif glued and word not in "=/" and statements[-1][-1] not in "=/":
            statements[-1][-1] += word  # "john doe"@example.com is one value
        else:
            statements[-1].append(word)
            glued = True
    return statements


def _result(words: list[str]) -> Result | None:
    """Read 'method[/version]=result' and its 'reason=…' and 'ptype.property=value' pairs."""
    if len(words) >= 3 and words[1] == "/":
        words = words[:1] + words[3:]  # the method version says nothing we use
    if len(words) < 3 or words[1] != "=":
        return None
    properties = {}
    rest = words[3:]
    for index in range(0, len(rest) - 2, 3):
        name, equals, value = rest[index : index + 3]
        if equals == "=":
            properties[name.lower()] = value
    return Result(words[0].lower(), words[2].lower(), properties)


def parse(header: str) -> tuple[str, list[Result]]:
    """Return the authserv-id of one Authentication-Results header and its results."""
    statements = _statements(header)
    authserv_id = statements[0][0] if statements[0] else ""
    results = [r for r in map(_result, statements[1:]) if r is not None]
    return authserv_id.lower(), results


def ours(headers: Iterable[str], authserv_id: str) -> list[Result] | None:
    """Return the results of the topmost header our MTA wrote, or None if it wrote none."""
    for header in headers:
        found_id, results = parse(header)
        if found_id == authserv_id.strip().lower():
            return results
    return None


def domain_of(value: str) -> str:
    """Return the domain of 'user@example.com', 'example.com' or '@example.com', lower-cased."""
    return value.rpartition("@")[2].strip().rstrip(".").lower()


def aligned(authenticated: str, author: str) -> bool:
    """Tell whether an authenticated domain is the From domain, a parent or a child of it."""
    if not authenticated or not author:
        return False
    shorter = min(authenticated, author, key=len)
    same_family = (
        authenticated == author
        or author.endswith("." + authenticated)
        or authenticated.endswith("." + author)
    )
    return same_family and "." in shorter  # never a bare top-level domain


def _vouches(result: Result, author: str) -> bool:
    """Tell whether one passing result authenticates the From domain."""
    if result.result != "pass":
        return False
    props = result.properties
    if result.method == "dmarc":
        return domain_of(props.get("header.from", author)) == author
    if result.method == "dkim":
        return aligned(domain_of(props.get("header.d") or props.get("header.i", "")), author)
    if result.method == "spf":
        return aligned(domain_of(props.get("smtp.mailfrom", "")), author)
    return False


def verdict(headers: Iterable[str], authserv_id: str, sender: str) -> Verdict:
    """Judge whether our MTA authenticated the sender of a message (From address)."""
    results = ours(headers, authserv_id)
    if results is None:
        return Verdict(False, f"no Authentication-Results from {authserv_id}")
    author = domain_of(sender)
    evidence = "; ".join(map(str, results)) or "none"
    return Verdict(any(_vouches(r, author) for r in results), evidence)
