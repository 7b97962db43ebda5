"""Pictures of pipeline results, written as PNG files.

- :func:`flow_to_color`: an optical flow field as an RGB image (hue = direction, brightness =
  magnitude); :func:`color_wheel` is its legend.
- :func:`draw_landmarks`: dots on a copy of a frame.
- :func:`contact_sheet`: one row per cached sample (aligned onset, apex, flow colour, strain,
  onset with its landmarks), captioned with the sample key and emotion.
- :func:`plot_confusion`, :func:`plot_curves`, :func:`plot_angles`, :func:`plot_strain`: training
  and analysis figures.

matplotlib is used through ``matplotlib.figure.Figure`` and the Agg canvas only: no pyplot,
no global backend or state changes. OpenCV and matplotlib are imported inside the functions.

Flow colour wheel (image coordinates, y pointing down; hue = ``atan2(v, u)`` in degrees):
motion to the right (+x) is red (0°), down (+y) is yellow-green (90°), left (−x) is cyan (180°),
up (−y) is violet (270°); in between, the hue turns continuously (right→down passes through
orange and yellow). Saturation is 1. Brightness (HSV value) is ``|flow| / max_mag`` clipped to
[0, 1], so zero motion is black and motions at or above ``max_mag`` are fully bright.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Pixels per contact-sheet panel are at least this (small aligned frames are enlarged by an integer factor).
SHEET_MIN_PANEL = 160
SHEET_PAD = 6
SHEET_HEADER = 26
SHEET_CAPTION = 22
SHEET_COLUMNS = ("onset", "apex", "flow (hue = direction)", "optical strain", "onset landmarks")


def robust_max(values: np.ndarray, percentile: float = 99.0) -> float:
    """The ``percentile`` of the finite values (a maximum that ignores a few outliers); 0 if none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, percentile)) if v.size else 0.0


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV (h in degrees [0,360), s and v in [0,1]) to float RGB in [0,1], shape ``h.shape + (3,)``."""
    h6 = np.mod(h, 360.0) / 60.0
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p = v * (1 - s)
    q = v * (1 - s * f)
    t = v * (1 - s * (1 - f))
    choices_r = [v, q, p, p, t, v]
    choices_g = [t, v, v, q, p, p]
    choices_b = [p, p, t, v, v, q]
    r = np.choose(i, choices_r)
    g = np.choose(i, choices_g)
    b = np.choose(i, choices_b)
    return np.stack([r, g, b], axis=-1)


def flow_to_color(flow: np.ndarray, max_mag: float | None = None) -> np.ndarray:
    """Colour image of a flow field ``(2,H,W)`` (u, v): uint8 ``(H,W,3)`` RGB.

    Hue is the direction (see the module docstring for the wheel: right = red, down =
    yellow-green, left = cyan, up = violet), value is the magnitude divided by ``max_mag``
    (default: the 99th percentile of the magnitudes, a robust maximum) and clipped to 1.
    Zero flow is black; a field that is zero everywhere gives an all-black image.
    """
    f = np.asarray(flow, dtype=np.float64)
    if f.ndim != 3 or f.shape[0] != 2:
        raise ValueError(f"flow must have shape (2,H,W), got {f.shape}")
    u, v = np.nan_to_num(f[0]), np.nan_to_num(f[1])
    mag = np.hypot(u, v)
    scale = robust_max(mag) if max_mag is None else float(max_mag)
    val = np.clip(mag / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(mag)
    hue = np.degrees(np.arctan2(v, u)) % 360.0
    rgb = _hsv_to_rgb(hue, np.ones_like(val), val)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def color_wheel(size: int = 64) -> np.ndarray:
    """The legend of :func:`flow_to_color`: uint8 ``(size,size,3)`` RGB disc, each pixel coloured as a flow pointing from the centre to it."""
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    flow = np.stack([(xx - c) / c, (yy - c) / c])
    img = flow_to_color(flow, max_mag=1.0)
    img[np.hypot(flow[0], flow[1]) > 1.0] = 255
    return img


def draw_landmarks(img_bgr: np.ndarray, points: np.ndarray, color=(0, 255, 0), radius: int = 1) -> np.ndarray:
    """A copy of ``img_bgr`` with a filled dot of ``color`` (BGR) at each (x, y) point.

    Grey images (``(H,W)`` or ``(H,W,1)``) are converted to BGR first so the colour shows.
    Non-finite points are skipped; points outside the image are clipped away by OpenCV.
    """
    import cv2

    img = np.asarray(img_bgr)
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        out = cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    else:
        out = img.copy()
    shift = 4  # sub-pixel precision: coordinates in 1/16 px
    color = tuple(int(c) for c in color)
    for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), int(radius) * 16, color, -1, cv2.LINE_AA, shift)
    return out


def _to_rgb_u8(img: np.ndarray) -> np.ndarray:
    """BGR or grey uint8 ``(S,S,C)`` with C in {1,3}, or ``(S,S)``, to RGB ``(S,S,3)``."""
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        return np.repeat(a, 3, axis=2).astype(np.uint8)
    return np.ascontiguousarray(a[..., ::-1]).astype(np.uint8)


def strain_to_color(strain: np.ndarray, max_val: float | None = None, cmap: str = "inferno") -> np.ndarray:
    """Strain magnitude ``(H,W)`` as uint8 RGB through a matplotlib colormap, scaled by ``max_val`` (default robust max)."""
    from matplotlib import colormaps

    s = np.nan_to_num(np.asarray(strain, dtype=np.float64))
    scale = robust_max(s) if max_val is None else float(max_val)
    x = np.clip(s / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(s)
    return np.rint(colormaps[cmap](x)[..., :3] * 255.0).astype(np.uint8)


def _save(fig, path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=fig.dpi)
    return path


def _sheet_indices(n_total: int, n: int, indices) -> list[int]:
    if indices is not None:
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < n_total]
        if bad:
            raise IndexError(f"sample indices {bad} outside 0..{n_total - 1}")
        return idx
    if n_total == 0:
        return []
    k = min(int(n), n_total)
    return sorted(set(np.linspace(0, n_total - 1, k).round().astype(int).tolist()))


def sheet_geometry(sample_side: int, rows: int) -> tuple[int, int, int, int]:
    """Contact-sheet layout: ``(zoom, panel, width, height)`` in pixels for ``rows`` samples of side ``sample_side``."""
    zoom = max(1, -(-SHEET_MIN_PANEL // int(sample_side)))
    panel = int(sample_side) * zoom
    cols = len(SHEET_COLUMNS)
    width = SHEET_PAD + cols * (panel + SHEET_PAD)
    height = SHEET_HEADER + rows * (SHEET_CAPTION + panel + SHEET_PAD)
    return zoom, panel, width, height


def contact_sheet(cache, path, n: int = 8, indices=None) -> Path:
    """Write a PNG with one row per sample: aligned onset, apex, flow colour, strain, onset + landmarks.

    ``cache`` needs ``len()``, ``.meta`` (DataFrame with ``key`` and ``emotion``) and
    ``.read(i)`` giving ``onset``/``apex`` (uint8 ``(S,S,C)`` BGR or grey), ``flow``
    ``(2,S,S)``, ``strain`` ``(S,S)`` and ``landmarks`` ``(2,478,2)``. Samples: ``indices`` or
    ``n`` evenly spaced ones. Each row is captioned ``key — emotion — peak flow px``; each flow
    panel is scaled by its own robust maximum, and a colour wheel legend sits in the header.
    Panels are the frames enlarged by an integer factor (no blur), laid out by :func:`sheet_geometry`.
    Raises ValueError when there is nothing to show.
    """
    from matplotlib.figure import Figure

    idx = _sheet_indices(len(cache), n, indices)
    if not idx:
        raise ValueError("the cache holds no samples to show")
    meta = cache.meta
    records = [cache.read(i) for i in idx]
    side = int(np.asarray(records[0]["onset"]).shape[0])
    zoom, panel, width, height = sheet_geometry(side, len(idx))
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)

    def place(img_rgb, row, col):
        big = np.repeat(np.repeat(img_rgb, zoom, axis=0), zoom, axis=1)
        y0 = SHEET_HEADER + row * (SHEET_CAPTION + panel + SHEET_PAD) + SHEET_CAPTION
        x0 = SHEET_PAD + col * (panel + SHEET_PAD)
        canvas[y0 : y0 + panel, x0 : x0 + panel] = big[:panel, :panel]

    captions = []
    for r, (i, rec) in enumerate(zip(idx, records)):
        onset, apex = np.asarray(rec["onset"]), np.asarray(rec["apex"])
        if onset.shape[0] != side:
            raise ValueError(f"sample {i}: frame side {onset.shape[0]} differs from {side}")
        flow = np.asarray(rec["flow"], dtype=np.float32)
        lm = np.asarray(rec["landmarks"], dtype=np.float64)[0]
        place(_to_rgb_u8(onset), r, 0)
        place(_to_rgb_u8(apex), r, 1)
        place(flow_to_color(flow), r, 2)
        place(strain_to_color(rec["strain"]), r, 3)
        # landmarks drawn at the enlarged scale so the dots stay small
        big_onset = np.repeat(np.repeat(_to_rgb_u8(onset)[..., ::-1], zoom, axis=0), zoom, axis=1)
        dots = draw_landmarks(big_onset, (lm + 0.5) * zoom - 0.5, color=(0, 255, 0), radius=1)
        y0 = SHEET_HEADER + r * (SHEET_CAPTION + panel + SHEET_PAD) + SHEET_CAPTION
        x0 = SHEET_PAD + 4 * (panel + SHEET_PAD)
        canvas[y0 : y0 + panel, x0 : x0 + panel] = dots[..., ::-1]
        row = meta.iloc[i]
        peak = float(np.hypot(flow[0], flow[1]).max())
        captions.append((y0, f"{row['key']}  —  {row['emotion'] or '(no emotion)'}  —  peak flow {peak:.2f} px"))

    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    fig.figimage(canvas, xo=0, yo=0, origin="upper")
    wheel = color_wheel(SHEET_HEADER - 4)
    fig.figimage(
        wheel,
        xo=SHEET_PAD + 2 * (panel + SHEET_PAD) + panel - wheel.shape[1],
        yo=height - SHEET_HEADER + 2,
        origin="upper",
    )
    for c, name in enumerate(SHEET_COLUMNS):
        x = SHEET_PAD + c * (panel + SHEET_PAD) + panel / 2
        fig.text(x / width, 1 - (SHEET_HEADER / 2) / height, name, ha="center", va="center", fontsize=9)
    for y0, text in captions:
        fig.text(SHEET_PAD / width, 1 - (y0 - SHEET_CAPTION / 2) / height, text, ha="left", va="center", fontsize=9)
    return _save(fig, path)


def plot_confusion(cm, classes, path, title: str | None = None) -> Path:
    """Write a PNG with two heat maps of a confusion matrix (rows = true class, columns = predicted).

    Left: counts; right: row-normalised (each true class sums to 1; an empty row stays 0).
    Every cell is annotated with its value.
    """
    from matplotlib.figure import Figure

    cm = np.asarray(cm, dtype=np.float64)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix shape {cm.shape} does not match {k} classes")
    sums = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)
    cell = max(0.45, 3.2 / max(k, 1))
    side = max(3.6, 1.6 + cell * k)
    fig = Figure(figsize=(2 * side + 0.6, side + (0.4 if title else 0.0)), dpi=100)
    axes = fig.subplots(1, 2)
    integral = np.allclose(cm, np.round(cm))
    for ax, data, name, fmt in (
        (axes[0], cm, "counts", "{:.0f}" if integral else "{:.2f}"),
        (axes[1], norm, "row-normalised", "{:.2f}"),
    ):
        vmax = data.max() if data.size and data.max() > 0 else 1.0
        ax.imshow(data, cmap="Blues", vmin=0, vmax=vmax)
        for (r, c), val in np.ndenumerate(data):
            ax.text(
                c,
                r,
                fmt.format(val),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if val > 0.6 * vmax else "black",
            )
        ax.set_xticks(range(k), [str(c) for c in classes], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(k), [str(c) for c in classes], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _curve_groups(history: dict) -> dict[str, list[str]]:
    """Group series by metric: ``train_loss`` and ``val_loss`` share the panel ``loss``."""
    groups: dict[str, list[str]] = {}
    for key in history:
        head, sep, tail = str(key).partition("_")
        metric = tail if sep and head in {"train", "val", "valid", "test", "eval"} else str(key)
        groups.setdefault(metric, []).append(key)
    return groups


def plot_curves(history: dict, path) -> Path:
    """Write a PNG of training curves: one panel per metric, series sharing a metric name
    (``train_loss``, ``val_loss``) drawn together, x = epoch (1-based)."""
    from matplotlib.figure import Figure

    series = {k: np.asarray(v, dtype=np.float64) for k, v in history.items() if len(v)}
    if not series:
        raise ValueError("history holds no values to plot")
    groups = _curve_groups(series)
    n = len(groups)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), dpi=100)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (metric, keys) in zip(axes, groups.items()):
        for key in keys:
            y = series[key]
            ax.plot(np.arange(1, len(y) + 1), y, marker="o" if len(y) < 30 else None, ms=3, label=str(key))
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return _save(fig, path)


def plot_angles(angles: dict, path, title: str | None = None) -> Path:
    """Write a PNG of per-layer angles (degrees) over epochs: lines (left) and a layer x epoch heat map (right).

    ``angles`` maps a layer name to its angle at each epoch; layers may have different lengths
    (missing epochs are blank in the heat map). ``title``: a line above both panels.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    layers = [k for k, v in angles.items() if len(v)]
    if not layers:
        raise ValueError("angles holds no values to plot")
    epochs = max(len(angles[k]) for k in layers)
    grid = np.full((len(layers), epochs), np.nan)
    for r, k in enumerate(layers):
        grid[r, : len(angles[k])] = np.asarray(angles[k], dtype=np.float64)
    fig = Figure(figsize=(11, max(3.5, 0.25 * len(layers) + 1.5)), dpi=100)
    ax_line, ax_map = fig.subplots(1, 2)
    cmap = colormaps["viridis"]
    for r, k in enumerate(layers):
        y = grid[r, : len(angles[k])]
        ax_line.plot(np.arange(1, len(y) + 1), y, color=cmap(r / max(len(layers) - 1, 1)), label=str(k))
    ax_line.set_xlabel("epoch")
    ax_line.set_ylabel("θ (deg; 90 = vertical = CVA, 0 = horizontal)")
    ax_line.set_ylim(0, 180)
    ax_line.grid(alpha=0.3)
    if len(layers) <= 12:
        ax_line.legend(fontsize=7)
    im = ax_map.imshow(
        grid,
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
        extent=(0.5, epochs + 0.5, len(layers) - 0.5, -0.5),
    )
    ax_map.set_yticks(range(len(layers)), [str(k) for k in layers], fontsize=7)
    ax_map.set_xlabel("epoch")
    fig.colorbar(im, ax=ax_map, label="degrees")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_strain(strain, path, title: str | None = None) -> Path:
    """Write a PNG of optical strain with a colour bar.

    ``(H,W)``: the magnitude (inferno, 0 to the robust max); ``(3,H,W)``: the components
    e_xx, e_yy, e_xy side by side (diverging colormap, symmetric about 0).
    """
    from matplotlib.figure import Figure

    s = np.asarray(strain, dtype=np.float64)
    if s.ndim == 2:
        fig = Figure(figsize=(4.6, 4.0), dpi=100)
        ax = fig.subplots()
        vmax = robust_max(s) or 1.0
        im = ax.imshow(s, cmap="inferno", vmin=0, vmax=vmax)
        ax.set_title(title or f"optical strain (max {np.nanmax(s):.3g})", fontsize=10)
        ax.axis("off")
        fig.colorbar(im, ax=ax)
    elif s.ndim == 3 and s.shape[0] == 3:
        fig = Figure(figsize=(12, 3.8), dpi=100)
        axes = fig.subplots(1, 3)
        vmax = robust_max(np.abs(s)) or 1.0
        for ax, comp, name in zip(axes, s, ("e_xx", "e_yy", "e_xy")):
            im = ax.imshow(comp, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_title(name)
            ax.axis("off")
            fig.colorbar(im, ax=ax, fraction=0.046)
        if title:
            fig.suptitle(title)
    else:
        raise ValueError(f"strain must be (H,W) or (3,H,W), got {s.shape}")
    fig.tight_layout()
    return _save(fig, path)


__all__ = [
    "flow_to_color",
    "color_wheel",
    "draw_landmarks",
    "contact_sheet",
    "sheet_geometry",
    "strain_to_color",
    "plot_confusion",
    "plot_curves",
    "plot_angles",
    "plot_strain",
    "robust_max",
]
