"""The one record every dataset adapter produces."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Sample:
    """One micro-expression clip.

    ``onset``/``apex``/``offset`` are 0-based positions in the clip's frames in sorted order
    (adapters translate a dataset's file numbers into positions and keep the originals in
    ``frame_numbers``). ``offset`` may be ``None``. ``aus`` is the AU annotation as text
    (parsed with :func:`mepipe.aus.parse_aus` when cached).
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

    @property
    def key(self) -> str:
        """Unique key across datasets: ``dataset/subject/sample_id``."""
        return f"{self.dataset}/{self.subject}/{self.sample_id}"

    def __post_init__(self):
        self.source = Path(self.source)
        self.subject = str(self.subject)
        self.sample_id = str(self.sample_id)
