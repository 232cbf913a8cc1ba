"""GSM-7: what fits in one SMS, and how to make any text fit."""

from __future__ import annotations

import unicodedata

# GSM 03.38: the default alphabet (one septet) and its extension table (two septets).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = "^{}\\[~]|€"
_GSM = frozenset(GSM_BASIC + GSM_EXTENDED)
# "…" is in neither table, so it becomes "...".
_REPLACEMENTS = {
    **dict.fromkeys("‘’‚‛′`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    **dict.fromkeys("\t\u00a0\u2002\u2003\u2007\u2009\u202f\u3000", " "),
    "…": "...",
    "•": "*",
    "ç": "Ç",
}


def is_gsm(text: str) -> bool:
    """Tell whether every character of `text` is in the GSM-7 alphabet."""
    return all(ch in _GSM for ch in text)


def _septets(text: str) -> int:
    """Count GSM-7 septets: extension characters take two."""
    return sum(2 if ch in GSM_EXTENDED else 1 for ch in text)


def _to_gsm(ch: str) -> str:
    """Return the GSM-7 spelling of one character ('' to drop it, '?' if none)."""
    if ch in _GSM:
        return ch
    if ch in _REPLACEMENTS:
        return _REPLACEMENTS[ch]
    category = unicodedata.category(ch)
    if category in ("Mn", "Me", "Cf") or (category == "Cc"):
        return ""  # combining marks, joiners, variation selectors, control codes
    # Strip accents and unfold compatibility forms ("ő" -> "o", "ﬁ" -> "fi");
    # what has no GSM-7 spelling ("ł", emoji, Cyrillic) shows as "?".
    parts = [c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)]
    if parts and all(c in _GSM or c in _REPLACEMENTS for c in parts):
        return "".join(_REPLACEMENTS.get(c, c) for c in parts)
    return "?"


def gsm_length(text: str) -> int:
    """Return how many GSM-7 septets `text` takes once made GSM-7."""
    return _septets("".join(_to_gsm(ch) for ch in text))


SMS_LIMIT = 160  # septets in one GSM-7 SMS


def sms_text(text: str, limit: int = SMS_LIMIT) -> str:
    """Make `text` GSM-7 only and cut it to fit `limit` septets, marking a cut with '...'."""
    gsm = "".join(_to_gsm(ch) for ch in text)
    if _septets(gsm) <= limit:
        return gsm
    budget, kept = limit - 3, []
    for ch in gsm:
        budget -= _septets(ch)
        if budget < 0:
            break
        kept.append(ch)
    return "".join(kept).rstrip() + "..."


def fit(parts: list[str], budget: int) -> list[str]:
    """Make each part GSM-7 and cut the longest ones first until together they fit `budget`.

    Parts short enough stay whole; a cut part ends in '...', and one with no room is dropped.
    """
    gsm = ["".join(_to_gsm(ch) for ch in part) for part in parts]
    lengths = [_septets(part) for part in gsm]
    cap = max(lengths, default=0)
    while cap > 0 and sum(min(length, cap) for length in lengths) > budget:
        cap -= 1
    return [
        part if length <= cap else (sms_text(part, cap) if cap > 3 else "")
        for part, length in zip(gsm, lengths, strict=True)
    ]
