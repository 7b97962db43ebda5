"""What one adapter run read, for ``mepipe datasets check``: the sheet used, rows, samples,
failures by reason and notes by kind."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class DatasetReport:
    name: str
    source: Path  # the annotation file read, or the folder scanned (SMIC's original release)
    sheet: str = ""  # the workbook sheet read
    choice: str = ""  # how the file was chosen among several
    rows: int = 0
    skipped: int = 0  # rows that are not micro-expressions
    samples: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    failure_kinds: Counter = field(default_factory=Counter)
    note_kinds: Counter = field(default_factory=Counter)  # samples carrying each note kind

    @classmethod
    def from_load(cls, name: str, result) -> DatasetReport:
        """From an adapter's :class:`mepipe.datasets.rows.LoadResult`."""
        samples, failures = result
        return cls(
            name=name,
            source=result.source,
            sheet=result.sheet,
            choice=result.choice,
            rows=result.rows,
            skipped=result.skipped,
            samples=samples,
            failures=failures,
            failure_kinds=Counter(result.failure_kinds),
            note_kinds=Counter(k for s in samples for k in dict.fromkeys(s.note_kinds())),
        )

    def used(self) -> str:
        if self.source.is_dir():
            return f"no sheet: clip folders under {self.source}"
        return f"{self.source}" + (f", sheet {self.sheet!r}" if self.sheet else "")

    def text(self, notes: bool = False) -> str:
        """The summary block; with ``notes`` every sample's notes follow, one per line."""

        def counts(c: Counter) -> str:
            return ", ".join(f"{k} {n}" for k, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"

        lines = [
            f"{self.name}: {self.rows} rows, {len(self.samples)} samples, {len(self.failures)} failures",
            f"  sheet used: {self.used()}",
        ]
        if self.choice:
            lines.append(f"  sheet choice: {self.choice}")
        if self.skipped:
            lines.append(f"  rows skipped (not micro-expressions): {self.skipped}")
        lines.append(f"  failures by reason: {counts(self.failure_kinds)}")
        lines.append(f"  notes by kind (samples): {counts(self.note_kinds)}")
        for f in self.failures:
            lines.append(f"  FAIL {f.key}: {f.reason}")
        if notes:
            for s in self.samples:
                lines += [f"  note {s.key} [{k}] {t}" for k, t in s.notes]
        return "\n".join(lines)
