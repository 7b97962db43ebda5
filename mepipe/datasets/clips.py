"""One clip from a sheet row's frame numbers: the numbers checked on their own, then turned into
0-based positions in the numerically sorted frames of the clip folder (``img46.jpg`` is 46), and
the sample's notes (estimated apex, long interval, onset == apex, AU text kept raw).
"""

from __future__ import annotations

from pathlib import Path

from ..aus import cell_text, parse_au_tokens, unparsed
from ..frames import FrameError, frame_number, list_frame_files
from ..sample import Sample
from .apex import estimate_apex
from .cells import RowError

#: An onset->offset interval longer than this many seconds (at the dataset's frame rate) gets a
#: ``long_interval`` note; micro-expressions last under 0.5 s. It also bounds when an apex outside
#: onset..offset can be taken for the typo (see :func:`sheet_apex`).
LONG_INTERVAL_S = 1.0


class FrameIndex:
    """The image files of one clip folder, numerically sorted, and their numbers."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        try:
            self.files = list_frame_files(self.folder)
        except FrameError as e:
            raise RowError(str(e), "bad_frames") from None
        self.numbers = [frame_number(p) for p in self.files]
        self.position: dict[int, int] = {}
        for i, (n, p) in enumerate(zip(self.numbers, self.files)):
            if n is None:
                continue
            if n in self.position:
                raise RowError(
                    f"two frame files carry number {n} in {self.folder}: {self.files[self.position[n]].name}, {p.name}",
                    "bad_frames",
                )
            self.position[n] = i

    def describe(self) -> str:
        nums = [n for n in self.numbers if n is not None]
        rng = f"numbers {min(nums)}..{max(nums)}" if nums else "no numbered files"
        return f"{len(self.files)} frames, {rng}"

    def pos(self, number: int, column: str) -> int:
        """Position of the file numbered ``number``; RowError naming the number when there is none."""
        if number not in self.position:
            raise RowError(
                f"{column} {number} has no frame file in {self.folder} ({self.describe()})", "frame_not_found"
            )
        return self.position[number]


def frame_index(folder: Path, cache: dict | None) -> FrameIndex:
    """The :class:`FrameIndex` of ``folder``, kept in ``cache`` (one per adapter run) when given."""
    if cache is not None and folder in cache:
        return cache[folder]
    idx = FrameIndex(folder)
    if cache is not None:
        cache[folder] = idx
    return idx


def seconds(frames: int, fps: float) -> str:
    return f"{frames / fps:.2f} s at {fps:g} fps"


def sheet_apex(onset, apex, offset, *, fps=None, first_frame=None, dataset="") -> tuple[int | None, str]:
    """Check a row's frame numbers on their own. Returns ``(apex, why)``: the apex to use (None: to
    be estimated) and, when the sheet's apex is set aside, why.

    Fails (RowError) for a number below ``first_frame`` (0 where frames start at 1), an onset after
    the offset, and an apex outside onset..offset when onset..offset lasts over
    :data:`LONG_INTERVAL_S` (or there is no offset): then any of the three cells may be the wrong
    one. An apex outside a plausible onset..offset is the typo: it is set aside and estimated.
    """
    values = f"(sheet: onset {_v(onset)}, apex {_v(apex)}, offset {_v(offset)})"
    if first_frame is not None:
        low = [
            f"{c} frame {n}"
            for c, n in (("onset", onset), ("apex", apex), ("offset", offset))
            if n is not None and n < first_frame
        ]
        if low:
            raise RowError(
                f"{' and '.join(low)} below {first_frame}: {dataset} frames are numbered from {first_frame} {values}",
                "below_first_frame",
            )
    if onset is not None and offset is not None and onset > offset:
        raise RowError(f"onset frame {onset} is after offset frame {offset} {values}", "onset_after_offset")
    if apex is None or onset is None or (onset <= apex and (offset is None or apex <= offset)):
        return apex, ""
    where = f"before onset {onset}" if apex < onset else f"after offset {offset}"
    if offset is None:
        raise RowError(f"apex frame {apex} is {where} and the row has no offset {values}", "apex_outside")
    if fps and (offset - onset) / fps > LONG_INTERVAL_S:
        raise RowError(
            f"apex frame {apex} is {where}, and onset..offset {onset}..{offset} lasts "
            f"{seconds(offset - onset, fps)}, too long to trust either: the row does not tell which frame "
            f"is wrong {values}",
            "apex_outside",
        )
    return None, f"sheet apex {apex} is {where}"


def _v(n) -> str:
    return "-" if n is None else str(n)


def resolve_clip(
    *,
    dataset: str,
    subject: str,
    sample_id: str,
    folder: Path,
    onset,
    apex,
    offset,
    emotion: str,
    aus_text: str,
    apex_rule: str,
    extra: dict,
    fps: float | None = None,
    first_frame: int | None = None,
    apex_missing: str = "the sheet gives no apex",
    objective: str = "",
    notes=(),
    index_cache: dict | None = None,
    first_last_default: bool = False,
) -> Sample:
    """Build a validated :class:`Sample` from frame *numbers* (``None`` where the sheet has none).

    The numbers are checked first (:func:`sheet_apex`), then every given number must have a file
    and the folder at least two frames. A missing apex (or one set aside) is chosen by ``apex_rule``
    between onset and offset (``apex_estimated=True``, an ``apex_estimated`` note saying
    ``apex_missing``). With ``first_last_default`` a missing onset/offset means the first/last
    frame of the folder (SMIC). ``notes`` (kind, text) from the adapter come first; then
    ``apex_estimated``, ``long_interval`` (with ``fps``), ``onset_equals_apex`` and ``au_raw``.
    ``aus`` is the AU cell as written. Raises RowError with the reason.
    """
    apex, outside = sheet_apex(onset, apex, offset, fps=fps, first_frame=first_frame, dataset=dataset)
    idx = frame_index(folder, index_cache)
    if len(idx.files) < 2:
        raise RowError(f"only {len(idx.files)} frame in {folder}; a clip needs at least onset and apex", "bad_frames")
    if onset is None:
        if not first_last_default:
            raise RowError("onset frame is missing", "missing_value")
        on_pos = 0
    else:
        on_pos = idx.pos(onset, "onset frame")
    if offset is None:
        off_pos = len(idx.files) - 1 if first_last_default else None
    else:
        off_pos = idx.pos(offset, "offset frame")
    if apex is None:
        end = off_pos if off_pos is not None else len(idx.files) - 1
        ap_pos = estimate_apex(idx.files, on_pos, end, apex_rule)
    else:
        ap_pos = idx.pos(apex, "apex frame")
    n = idx.numbers
    sample = Sample(
        dataset=dataset,
        subject=subject,
        sample_id=sample_id,
        source=folder,
        onset=on_pos,
        apex=ap_pos,
        offset=off_pos,
        emotion=emotion,
        aus=cell_text(aus_text),
        apex_estimated=apex is None,
        frame_numbers=(n[on_pos], n[ap_pos], n[off_pos] if off_pos is not None else None),
        extra={k: str(v) for k, v in extra.items()},
        objective=objective,
    )
    for kind, text in notes:
        sample.add_note(kind, text)
    if apex is None:
        sample.add_note("apex_estimated", f"{outside or apex_missing}; apex chosen by rule {apex_rule}")
    add_clip_notes(sample, fps)
    return sample


def add_clip_notes(sample: Sample, fps: float | None) -> None:
    """The notes a sample's own values call for: ``long_interval``, ``onset_equals_apex``, ``au_raw``."""
    first, _, last = sample.frame_numbers
    if fps and first is not None and last is not None and (last - first) / fps > LONG_INTERVAL_S:
        sample.add_note("long_interval", f"onset..offset {first}..{last} lasts {seconds(last - first, fps)}")
    if sample.apex == sample.onset:
        sample.add_note("onset_equals_apex", f"onset and apex are both frame {first}: onset->apex flow will be ~zero")
    raw = unparsed(parse_au_tokens(sample.aus))
    if raw:
        sample.add_note(
            "au_raw", f"AU cell {sample.aus!r}: {', '.join(map(repr, raw))} is not an Action Unit, kept as text"
        )
