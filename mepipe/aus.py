"""Action-Unit strings to the one 21-AU binary vector used everywhere in mepipe.

Annotation files write AUs in many ways: ``4+7``, ``AU4+AU7``, ``R12``, ``L14+AU1``, ``12?``,
``12B+4C`` (intensity letters), ``1,2``. :func:`parse_aus` turns any of them into
``(vector, details)``: the vector marks the AUs of :data:`AU_LIST` that are present, and
``details`` keeps every token with its side (L/R/B), uncertainty (``?``) and intensity, plus
AUs outside the list, so nothing is silently dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

#: The 21 AUs of the AU embedding (FaceSleuth §3.3 uses a length-21 binary vector; the paper does
#: not list them, so mepipe fixes this list: every AU that CASME II, SAMM, MMEW and CAS(ME)^3
#: annotate in more than a handful of micro-expressions).
AU_LIST: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26)
AU_INDEX = {au: i for i, au in enumerate(AU_LIST)}

_TOKEN = re.compile(
    r"^(?P<side>[LRBT])?\s*(?:AU)?\s*(?P<side2>[LRBT])?(?P<num>\d{1,3})(?P<inten>[A-E])?(?P<unc>\?)?$",
    re.IGNORECASE,
)


class AUParseError(ValueError):
    """An AU string holds a token that is not an Action Unit."""


@dataclass(frozen=True)
class AUToken:
    au: int
    side: str = ""  # "", "L", "R", "B" (bilateral), "T"
    uncertain: bool = False
    intensity: str = ""

    def __str__(self) -> str:
        return f"{self.side}{self.au}{self.intensity}{'?' if self.uncertain else ''}"


def parse_au_tokens(text) -> list[AUToken]:
    """Split an AU annotation into tokens. Empty cells, ``/``, ``-`` and ``nan`` give ``[]``."""
    if text is None:
        return []
    if isinstance(text, float):
        if text != text:  # NaN
            return []
        if text.is_integer():
            text = str(int(text))
    s = str(text).strip()
    if s.lower() in {"", "/", "-", "nan", "none", "n/a", "na"}:
        return []
    tokens = []
    for raw in re.split(r"[+,;&\s]+", s):
        raw = raw.strip()
        if not raw:
            continue
        m = _TOKEN.match(raw)
        if m is None:
            raise AUParseError(f"not an Action Unit: {raw!r} in {s!r}")
        side = (m.group("side") or m.group("side2") or "").upper()
        tokens.append(
            AUToken(
                au=int(m.group("num")),
                side=side,
                uncertain=bool(m.group("unc")),
                intensity=(m.group("inten") or "").upper(),
            )
        )
    return tokens


def parse_aus(text) -> tuple[np.ndarray, list[AUToken]]:
    """Return ``(vector, tokens)``: a uint8 vector over :data:`AU_LIST` and every parsed token."""
    tokens = parse_au_tokens(text)
    vec = np.zeros(len(AU_LIST), dtype=np.uint8)
    for t in tokens:
        i = AU_INDEX.get(t.au)
        if i is not None:
            vec[i] = 1
    return vec, tokens


def format_aus(tokens) -> str:
    """Canonical text form of parsed tokens (``R12+4?``); round-trips through :func:`parse_aus`."""
    return "+".join(str(t) for t in tokens)


def mirror_aus(text: str) -> str:
    """Swap the L/R side markers of an AU string (for horizontal-flip augmentation)."""
    swap = {"L": "R", "R": "L"}
    return format_aus(
        AUToken(t.au, swap.get(t.side, t.side), t.uncertain, t.intensity) for t in parse_au_tokens(text)
    )
