"""Files and folders of a dataset release: the annotation file by its usual names, frame folders
by name, and folders named by annotation cells (matched case-insensitively, refused when they
are not plain names or lead outside the dataset root).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import AnnotationError
from .cells import RowError, clean_cell


def annotation_candidates(root: Path, patterns: tuple[str, ...], max_depth: int = 4) -> list[list[Path]]:
    """For each of ``patterns`` (shell globs compared case-insensitively), the files under ``root``
    (down to ``max_depth`` folders) whose name matches, in name order (Excel lock files left out)."""
    import fnmatch

    files = [p for p in walk(root, max_depth) if p.is_file() and not p.name.startswith("~$")]
    return [
        sorted(
            (p for p in files if fnmatch.fnmatch(p.name.lower(), pat.lower())), key=lambda p: (p.name.lower(), str(p))
        )
        for pat in patterns
    ]


def find_annotation(
    root: Path, patterns: tuple[str, ...], override=None, max_depth: int = 4, what: str = "annotation"
) -> Path:
    """The annotation file: ``override`` (relative to ``root`` or absolute) or the first file under
    ``root`` (down to ``max_depth`` folders) whose name matches one of ``patterns``.

    Patterns are tried in order; among several files for one pattern the last in name order wins
    (``...-20190701`` over ``...-20140508``). Raises AnnotationError naming the patterns when
    nothing is found.
    """
    root = Path(root)
    if override:
        p = Path(str(override))
        if not p.is_absolute():
            p = root / p
        if not p.is_file():
            raise AnnotationError(f"{what} file not found: {p}")
        return p
    if not root.is_dir():
        raise AnnotationError(f"dataset root is not a folder: {root}")
    for hits in annotation_candidates(root, patterns, max_depth):
        if hits:
            return hits[-1]
    raise AnnotationError(
        f"no {what} file under {root} (looked for {', '.join(patterns)} down to {max_depth} folders); "
        "pass --annotation FILE"
    )


def describe_dir(folder: Path, limit: int = 20) -> str:
    """What a folder holds, for error messages: its first ``limit`` entry names (folders end in /)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as e:
        return f"(cannot list: {e})"
    names = [e.name + ("/" if e.is_dir() else "") for e in entries[:limit]]
    more = f" and {len(entries) - limit} more" if len(entries) > limit else ""
    return (", ".join(names) + more) if names else "nothing"


def walk(root: Path, max_depth: int):
    """Files and folders under ``root`` down to ``max_depth`` levels (symlinked folders not followed)."""
    stack = [(root, 0)]
    while stack:
        d, depth = stack.pop()
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for e in entries:
            yield e
            if e.is_dir() and not e.is_symlink() and depth + 1 < max_depth:
                stack.append((e, depth + 1))


def find_dirs(root: Path, names, max_depth: int = 3) -> list[Path]:
    """Folders under ``root`` (itself included) whose name is one of ``names`` (case-insensitive)."""
    want = {n.lower() for n in names}
    out = [root] if root.name.lower() in want else []
    out += [p for p in walk(root, max_depth) if p.is_dir() and p.name.lower() in want]
    return out


def child_dir(parent: Path, name: str, root: Path, *, what: str) -> Path:
    """``parent/name`` for a ``name`` read from an annotation file, matched case-insensitively.

    The name must be one path component (no separators, no ``..``) and the result must stay inside
    ``root``; raises RowError naming the folder that is missing.
    """
    name = clean_cell(name)
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise RowError(f"{what} {name!r} is not a plain folder name", "unsafe_name")
    p = parent / name
    if not p.is_dir():
        try:
            match = [c for c in parent.iterdir() if c.is_dir() and c.name.lower() == name.lower()]
        except OSError:
            match = []
        if not match:
            raise RowError(f"{what} folder not found: {p}", "folder_not_found")
        p = match[0]
    r = root.resolve()
    rp = p.resolve()
    if rp != r and r not in rp.parents:
        raise RowError(f"{what} folder {p} is outside the dataset root {r}", "unsafe_name")
    return p


def subject_dir(parent: Path, subject: str, root: Path, prefixes=("sub", "s", ""), widths=(2, 3, 1)) -> Path:
    """The folder of a subject written as a number or a name (``1`` -> ``sub01``/``s1``/``006``...).

    A subject holding letters is looked up as written; a number is tried with each prefix and
    zero-padded width, then any child folder whose name has the same number.
    """
    s = clean_cell(subject)
    if not s:
        raise RowError("subject is empty", "missing_value")
    if not s.isdigit():
        return child_dir(parent, s, root, what="subject")
    n = int(s)
    for pre in prefixes:
        for w in widths:
            p = parent / f"{pre}{n:0{w}d}"
            if p.is_dir():
                return child_dir(parent, p.name, root, what="subject")
    try:
        for c in sorted(parent.iterdir()):
            m = re.fullmatch(r"[A-Za-z]*0*(\d+)", c.name)
            if c.is_dir() and m and int(m.group(1)) == n:
                return child_dir(parent, c.name, root, what="subject")
    except OSError:
        pass
    raise RowError(f"subject folder for subject {s!r} not found in {parent}", "folder_not_found")
