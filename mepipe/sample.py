"""The one record every dataset adapter produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: The kinds of :attr:`Sample.notes`, a closed set: what an adapter tells about a sample it kept.
NOTE_KINDS: dict[str, str] = {
    "apex_estimated": "the sheet gives no usable apex (none, blank, '/', -1, or outside onset..offset): "
    "the apex rule chose it; the text gives the sheet's value",
    "onset_equals_apex": "onset and apex are the same frame: onset->apex flow is ~zero",
    "au_raw": "part of the AU cell is not an Action Unit and is kept as text; the AU vector holds the rest",
    "long_interval": "onset->offset lasts longer than 1 s at the dataset's frame rate (micro-expressions "
    "last under 0.5 s)",
    "contradiction": "two parts of the release disagree (emotion vs the clip name's code, clip folder vs "
    "sheet emotion, Duration vs onset/offset); the text says which one is used",
    "second_interval": "the sheet gives a second onset/offset for the clip (SMIC-E Onset2F/Offset2F): "
    "noted, or loaded as its own sample",
}


@dataclass
class Sample:
    """One micro-expression clip.

    ``onset``/``apex``/``offset`` are 0-based positions in the clip's frames in sorted order
    (adapters translate a dataset's file numbers into positions and keep the originals in
    ``frame_numbers``). ``offset`` may be ``None``. ``aus`` is the AU cell as the sheet writes it
    (:func:`mepipe.aus.parse_aus` reads its tokens and vector). ``objective`` is the sheet's
    objective class where it has one. ``notes`` are ``(kind, text)`` pairs, kinds from
    :data:`NOTE_KINDS`; ``extra`` keeps the sheet's unmapped columns as text.
    """

    dataset: str
    subject: str
    sample_id: str
    source: Path  # a folder of frames or a video file
    onset: int
    apex: int
    offset: int | None = None
    emotion: str = ""  # the dataset's native emotion label, as written in its annotation
    label: int = -1  # class index under the active label map (-1: excluded / unknown)
    aus: str = ""
    apex_estimated: bool = False  # True when the dataset gives no apex and a rule chose it
    frame_numbers: tuple[int | None, int | None, int | None] = (None, None, None)
    extra: dict = field(default_factory=dict)  # dataset-specific columns, kept as text
    objective: str = ""  # the sheet's objective class (SAMM, CASME II 2019, CAS(ME)^3)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (kind, text), kind in NOTE_KINDS
    aus_known: bool = True  # False where the dataset annotates no AUs (SMIC): its AU vector is unknown, not "none"

    @property
    def key(self) -> str:
        """Unique key across datasets: ``dataset/subject/sample_id``."""
        return f"{self.dataset}/{self.subject}/{self.sample_id}"

    def add_note(self, kind: str, text: str) -> None:
        """Append a note; ``kind`` must be one of :data:`NOTE_KINDS`."""
        if kind not in NOTE_KINDS:
            raise ValueError(f"unknown note kind {kind!r}; kinds: {', '.join(NOTE_KINDS)}")
        self.notes.append((kind, str(text)))

    def note_kinds(self) -> list[str]:
        return [k for k, _ in self.notes]

    def __post_init__(self):
        self.source = Path(self.source)
        self.subject = str(self.subject)
        self.sample_id = str(self.sample_id)
        bad = [k for k, _ in self.notes if k not in NOTE_KINDS]
        if bad:
            raise ValueError(f"unknown note kind(s) {', '.join(map(repr, bad))}; kinds: {', '.join(NOTE_KINDS)}")


def text_problem(sample: Sample) -> str | None:
    """Why ``sample`` cannot be cached as it is, or ``None``: a NUL byte in any text (HDF5 strings
    cannot hold one), or a ``/`` in its dataset, subject or id (the key
    ``dataset/subject/sample_id`` must name one sample and split back into its parts)."""
    for name in ("dataset", "subject", "sample_id"):
        v = getattr(sample, name)
        if not v:
            return f"its {name} is empty"
        if "/" in v:
            return f"its {name} {v!r} holds a '/', which sample keys (dataset/subject/sample_id) reserve"
    texts = {
        "dataset": sample.dataset,
        "subject": sample.subject,
        "sample_id": sample.sample_id,
        "emotion": sample.emotion,
        "objective": sample.objective,
        "aus": sample.aus,
        "source": str(sample.source),
    }
    texts.update({f"extra[{k!r}]": str(v) for k, v in sample.extra.items()})
    texts.update({f"note {k}": str(t) for k, t in sample.notes})
    for name, v in texts.items():
        if "\x00" in v:
            return f"its {name} holds a NUL byte, which the cache cannot store"
    return None
