"""Action-Unit cells of every dataset's notation to tokens and the one 21-AU binary vector.

One grammar reads the AU cells of the published sheets (CASME II, SAMM, SMIC, CAS(ME)^3, MMEW):

* terms joined by ``+`` (also ``,``, ``;``, ``&``), with or without spaces around them;
* an AU number with an optional ``AU`` prefix (``4``, ``AU4``); numbers stored as numbers (``12``,
  ``12.0``) read the same as text;
* a side before the number (``R12``, ``L10``, ``B28``, ``T18``) or after it (``12L``, ``4R``, MMEW's
  style); sides are ``L``/``R`` (left, right) and ``B``/``T`` as the sheets write them (FACS's
  bottom/top lip markers; some sheets mean bilateral by ``B``);
* an intensity letter ``A``-``E`` after the number (``14C``, ``R6A``);
* SAMM's asymmetric prefix ``A`` (``A14``, ``A1B+A2C``; the SAMM key: "A = Asymmetric");
* ``?`` after a token (``12?``): the coder was unsure (SAMM's key: the AU's offset is unclear);
* alternatives: ``or`` with or without parentheses (``(R6 or R12)+R15``, ``L12 or L14``) and slashes
  of whole AUs, of intensities or of sides (``12/15``, ``10A/B`` = 10A or 10B, ``A/L12`` = A12 or
  L12); the tokens of one alternative carry the same ``alternative`` group number;
* references ``ref(7B)`` (SAMM): ``reference=True``;
* a cell holding only ``?``, ``/``, ``-`` or nothing: no AU.

Anything else (``soft focus`` in ``R14+17+soft focus``) is **kept as text**: a token with
``au=None`` whose ``raw`` holds what was written. :func:`parse_aus` never raises on a cell (pass
``strict=True`` to refuse text that is not an AU); the vector holds the AUs that were understood.
The vector marks every AU of :data:`AU_LIST` named in the cell, alternatives, references and
uncertain AUs included (the tokens say which is which).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

#: The 21 AUs of the AU embedding (FaceSleuth §3.3 uses a length-21 binary vector; the paper does
#: not list them, so mepipe fixes this list: every AU that CASME II, SAMM, MMEW and CAS(ME)^3
#: annotate in more than a handful of micro-expressions).
AU_LIST: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26)
AU_INDEX = {au: i for i, au in enumerate(AU_LIST)}
#: AU lists a model's 21-bit AU vector can be read over. ``mepipe`` (the default, the cache's own
#: vector): the AUs the four AU-annotated datasets code in more than a handful of
#: micro-expressions. ``authors``: the FaceSleuth authors' list (their code reads OpenFace's AU
#: columns): AU 28 (lip suck) and 45 (blink) instead of 11 and 13, which those datasets code in only
#: a few clips. Both have 21 AUs, so a model takes either. The default stays mepipe's because its
#: AUs are those the sheets annotate (AU 45 is rarely coded in micro-expression sheets).
AU_LISTS: dict[str, tuple[int, ...]] = {
    "mepipe": AU_LIST,
    "authors": (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 18, 20, 23, 24, 25, 26, 28, 45),
}

#: Cells that hold no AU (compared lower-cased and stripped).
EMPTY_CELLS = frozenset({"", "/", "-", "--", "nan", "none", "n/a", "na", "null", "?"})

_ATOM = re.compile(
    r"^(?:AU\s*)?(?P<asym>A(?=[LRBT]?\s*(?:AU)?\s*\d))?(?P<side>[LRBT])?\s*(?:AU\s*)?(?P<num>\d{1,3})"
    r"(?:(?P<side2>[LR])(?P<int2>[A-E])?|(?P<int1>[A-E])(?P<side3>[LR])?)?\s*(?P<unc>\?)?$",
    re.IGNORECASE,
)
_PREFIX_ONLY = re.compile(r"^(?P<asym>A)?(?P<side>[LRBT])?$", re.IGNORECASE)  # "A" in A/L12, "L" in L/R12
_SUFFIX_ONLY = re.compile(r"^(?:(?P<int>[A-E])|(?P<side>[LR]))$", re.IGNORECASE)  # "B" in 10A/B, "R" in 12L/R
_OR = re.compile(r"\s+or\s+", re.IGNORECASE)
_REF = re.compile(r"^ref\s*\((?P<inner>.*)\)$", re.IGNORECASE)


class AUParseError(ValueError):
    """An AU cell holds text that is not an Action Unit (raised only with ``strict=True``)."""


@dataclass(frozen=True)
class AUToken:
    """One term of an AU cell. ``au`` is None for text that is not an AU (kept in ``raw``)."""

    au: int | None
    side: str = ""  # "", "L", "R", "B", "T"
    uncertain: bool = False  # written with "?"
    intensity: str = ""  # "", "A".."E"
    asymmetric: bool = False  # SAMM's "A" prefix
    alternative: int = 0  # 0: not an alternative; n: one of the alternatives of the cell's n-th group
    reference: bool = False  # written ref(...)
    raw: str = field(default="", compare=False)  # the term as written

    def __str__(self) -> str:
        if self.au is None:
            return self.raw
        s = f"{'A' if self.asymmetric else ''}{self.side}{self.au}{self.intensity}{'?' if self.uncertain else ''}"
        return f"ref({s})" if self.reference else s


def cell_text(text) -> str:
    """An AU cell as stripped text: None/NaN give ``""``, whole numbers lose ``.0`` (``12.0`` -> ``12``)."""
    if text is None:
        return ""
    if isinstance(text, float):
        if math.isnan(text):
            return ""
        if text.is_integer():
            return str(int(text))
    return str(text).replace("\u00a0", " ").strip()


def _atom(term: str) -> AUToken | None:
    m = _ATOM.match(term.strip())
    if m is None:
        return None
    return AUToken(
        au=int(m.group("num")),
        side=(m.group("side") or m.group("side2") or m.group("side3") or "").upper(),
        uncertain=bool(m.group("unc")),
        intensity=(m.group("int1") or m.group("int2") or "").upper(),
        asymmetric=bool(m.group("asym")),
        raw=term.strip(),
    )


def _split_top(s: str) -> list[str]:
    """Terms of a cell: split at ``+ , ; &`` outside parentheses."""
    out, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch in "+,;&" and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [t.strip() for t in out if t.strip()]


def _slash(term: str) -> list[AUToken] | None:
    """``12/15``, ``10A/B``, ``A/L12``, ``L/R12``: the alternatives, completed from their neighbours."""
    parts = [p.strip() for p in term.split("/")]
    if len(parts) < 2 or not all(parts):
        return None
    full = [_atom(p) for p in parts]
    out = []
    for i, (p, tok) in enumerate(zip(parts, full)):
        if tok is not None:
            out.append(tok)
            continue
        after = next((t for t in full[i + 1 :] if t is not None), None)
        before = next((t for t in reversed(full[:i]) if t is not None), None)
        pre, suf = _PREFIX_ONLY.match(p), _SUFFIX_ONLY.match(p)
        if before is not None and suf:  # 10A/B: B is AU10's other intensity
            out.append(
                replace(
                    before,
                    intensity=(suf.group("int") or before.intensity).upper(),
                    side=(suf.group("side") or before.side).upper(),
                    raw=term,
                )
            )
        elif after is not None and pre:  # A/L12: A is AU12's other prefix
            out.append(
                replace(after, asymmetric=bool(pre.group("asym")), side=(pre.group("side") or "").upper(), raw=term)
            )
        else:
            return None
    return out


class _Cell:
    """The tokens of one cell; numbers the alternative groups in order."""

    def __init__(self, text: str):
        self.groups = 0
        self.tokens: list[AUToken] = []
        for term in _split_top(text):
            self.tokens += self.term(term)

    def group(self, toks: list[AUToken]) -> list[AUToken]:
        self.groups += 1
        return [replace(t, alternative=self.groups) for t in toks]

    def alternatives(self, term: str, inner: str) -> list[AUToken] | None:
        alts = [a.strip() for a in _OR.split(inner)] if _OR.search(inner) else [inner]
        toks = []
        for a in alts:
            m = _REF.match(a)
            one = _atom(m.group("inner") if m else a)
            many = [one] if one is not None else _slash(a) if "/" in a and not m else None
            if many is None:
                return None
            toks += [replace(t, reference=bool(m), raw=term) for t in many]
        return self.group(toks) if len(toks) > 1 else toks

    def term(self, term: str) -> list[AUToken]:
        raw = [AUToken(None, raw=term)]
        m = _REF.match(term)
        if m:
            inner = _Cell(m.group("inner")).tokens
            if not inner or any(t.au is None for t in inner):
                return raw
            return self.renumber([replace(t, reference=True, raw=term) for t in inner])
        one = _atom(term)
        if one is not None:
            return [one]
        inner = term[1:-1].strip() if term.startswith("(") and term.endswith(")") else term
        if _OR.search(inner) or "/" in inner:
            return self.alternatives(term, inner) or raw
        if inner != term:  # (1+2)
            toks = _Cell(inner).tokens
            return raw if not toks or any(t.au is None for t in toks) else self.renumber(toks)
        words = [_atom(w) for w in term.split()]
        if len(words) > 1 and all(words):  # "1 2": AUs separated by spaces only
            return words
        return raw

    def renumber(self, toks: list[AUToken]) -> list[AUToken]:
        """Alternative groups of a nested cell continue this cell's numbering."""
        ids: dict[int, int] = {}
        out = []
        for t in toks:
            if t.alternative:
                if t.alternative not in ids:
                    self.groups += 1
                    ids[t.alternative] = self.groups
                t = replace(t, alternative=ids[t.alternative])
            out.append(t)
        return out


def parse_au_tokens(text, *, strict: bool = False) -> list[AUToken]:
    """The tokens of an AU cell (see the module docstring); ``[]`` for a cell without AUs.

    Text that is not an AU becomes a token with ``au=None``; with ``strict=True`` it raises
    :class:`AUParseError` instead.
    """
    s = cell_text(text)
    if s.lower() in EMPTY_CELLS:
        return []
    tokens = _Cell(s).tokens
    if strict:
        bad = [t.raw for t in tokens if t.au is None]
        if bad:
            raise AUParseError(f"not an Action Unit: {', '.join(map(repr, bad))} in {s!r}")
    return tokens


def parse_aus(text, *, strict: bool = False, au_list: tuple[int, ...] = AU_LIST) -> tuple[np.ndarray, list[AUToken]]:
    """Return ``(vector, tokens)``: a uint8 vector over ``au_list`` (:data:`AU_LIST` by default)
    and every token of the cell."""
    tokens = parse_au_tokens(text, strict=strict)
    index = AU_INDEX if au_list is AU_LIST else {au: i for i, au in enumerate(au_list)}
    vec = np.zeros(len(au_list), dtype=np.uint8)
    for t in tokens:
        i = index.get(t.au)
        if i is not None:
            vec[i] = 1
    return vec, tokens


def au_list(name: str) -> tuple[int, ...]:
    """The AU list named ``name`` (:data:`AU_LISTS`)."""
    if name not in AU_LISTS:
        raise ValueError(f"unknown AU list {name!r}; choose one of {', '.join(AU_LISTS)}")
    return AU_LISTS[name]


def unparsed(tokens) -> list[str]:
    """The raw text of the tokens that are not AUs."""
    return [t.raw for t in tokens if t.au is None]


def format_aus(tokens) -> str:
    """Canonical text of parsed tokens (``R12+4?``, ``(R6 or R12)+R15``, ``ref(7B)``); parsing it
    again gives equal tokens (``raw`` aside)."""
    out, i, tokens = [], 0, list(tokens)
    while i < len(tokens):
        t = tokens[i]
        j = i + 1
        if t.alternative:
            while j < len(tokens) and tokens[j].alternative == t.alternative:
                j += 1
        group = tokens[i:j]
        out.append("(" + " or ".join(map(str, group)) + ")" if len(group) > 1 else str(t))
        i = j
    return "+".join(out)


def mirror_aus(text) -> str:
    """Swap the L/R side markers of an AU cell (for horizontal-flip augmentation); canonical text."""
    swap = {"L": "R", "R": "L"}
    return format_aus(replace(t, side=swap.get(t.side, t.side)) for t in parse_au_tokens(text))
