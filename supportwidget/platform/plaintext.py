"""Text from outside: one-line fields stay on one line, stored text holds no control codes.

A subject, name, phone or file name ends up in an e-mail header, an SMS or a one-line
display; a line break there starts a new header or fakes a new line, and a NUL cannot be
stored by PostgreSQL at all.
"""

from __future__ import annotations

import re
from typing import Any

# Unicode category Cc (C0 controls, DEL, C1 controls) and the line and paragraph separators.
NOT_ON_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The same, less what multi-line text is made of: tab, line feed, carriage return.
NOT_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def is_one_line(text: str) -> bool:
    """Tell whether text holds no line break or other control character."""
    return NOT_ON_ONE_LINE.search(text) is None


def one_line(text: str) -> str:
    """Return text on one line: each control character becomes a space, spaces collapse."""
    return " ".join(NOT_ON_ONE_LINE.sub(" ", text).split())


def without_controls(text: str) -> str:
    """Return multi-line text without NUL and other control characters; lines are kept."""
    return NOT_IN_TEXT.sub("", text.replace("\u2028", "\n").replace("\u2029", "\n\n"))


def one_line_json(value: Any) -> Any:
    """Return JSON data with every string, keys too, on one line (in place, at any depth)."""
    root = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:  # a loop, not recursion: the data may be nested hundreds deep
        container, key = pending.pop()
        item = container[key]
        if isinstance(item, str):
            container[key] = one_line(item)
        elif isinstance(item, list):
            pending += [(item, index) for index in range(len(item))]
        elif isinstance(item, dict):
            cleaned = {one_line(name): inner for name, inner in item.items()}
            item.clear()
            item.update(cleaned)
            pending += [(item, name) for name in item]
    return root[0]
