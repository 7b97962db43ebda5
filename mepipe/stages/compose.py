"""AHMSA-Net five-region composition of (u, v, strain) (AHMSA-Net paper §3.2).

Five facial regions are located from the MediaPipe face-mesh landmarks of the apex frame — left
eye, right eye, nose, left and right mouth corner — cropped from the flow and strain maps and
recombined into one ``size x size`` map (28 x 28 by default) with three channels (u, v, strain).

The paper names the regions and the output size but not the layout nor the crop sizes. AHMSA-Net
cuts its 28 x 28 input into 7 x 7 patches (a 4 x 4 grid) and max-pools 2 x 2 groups of them
between levels (14 x 14 blocks, then the whole map). The layout (recipe ``[compose] layout``)
decides which region each patch and each block sees:

``"patch-grid"`` (default): the five regions on the patch grid, for ``size = 28``::

    cols  0          14          28
    rows  +-----------+-----------+
      0   | left eye  | right eye |  14 rows: 2 patch rows; each eye one 14 x 14 block
          | + brow    | + brow    |
     14   +-----------+-----------+
          |   nose (full width)   |   7 rows: 1 patch row
     21   +-----------+-----------+
          | left mouth| right     |   7 rows: 1 patch row
          | corner    | mouth c.  |
     28   +-----------+-----------+

  Every 7 x 7 patch covers exactly one region. Of the four 14 x 14 blocks, the two eye blocks are
  one region each; five regions cannot fill four blocks one region apiece, so each lower block
  holds one half of the nose above the mouth corner of the same side (the two ends of the
  nasolabial fold).

``"quadrants"``: HTNet's four regions, each one 14 x 14 block (left eye | right eye over left
mouth corner | right mouth corner), so that every patch *and* every block covers one region; the
nose is left out (HTNet's code crops it and does not use it).

``"bands"``: the layout of earlier mepipe versions (eye rows ``[0, 10)``, nose ``[10, 18)``, mouth
``[18, 28)``): two of the four patch rows mix two regions. Kept to reproduce old caches.

For other sizes the boundaries scale with the patch side ``size / 4``: ``"patch-grid"`` and
``"quadrants"`` need a size that is a multiple of 4 and refuse any other (``ValueError`` naming
the layout and the size), ``"bands"`` takes any size >= 8 (row heights ``round(size * 10 / 28)``
for the eye and mouth rows, the rest for the nose row). Every layout is left/right symmetric, so
mirroring a composition equals composing the mirrored face (what horizontal-flip augmentation
relies on).

"Left" and "right" are as seen in the image (smaller x is left), whatever the subject's side.
Every crop is a box whose width is a fixed multiple of the inter-ocular distance ``D`` and whose
aspect ratio equals its tile's, so each region is resized isotropically (area interpolation).
Flow values are kept in pixels of the aligned frame (not rescaled with the crop; the model scales
its inputs, see :mod:`mepipe.models.ahmsa`). Crops reaching past the image border read zeros (no
motion).
"""

from __future__ import annotations

import numpy as np

from ..errors import StageError
from ..recipe_schema import SECTIONS, section_defaults

#: MediaPipe face-mesh indices used for each region centre (canonical mesh numbering; indices
#: below 468, so meshes with or without the 10 iris points work).
EYE_A = (33, 133, 159, 145)  # outer corner, inner corner, upper lid, lower lid of one eye
EYE_B = (263, 362, 386, 374)  # the same points of the other eye
NOSE = (1, 98, 327)  # nose tip and the two alae
MOUTH_CORNERS = (61, 291)
USED_LANDMARKS = EYE_A + EYE_B + NOSE + MOUTH_CORNERS

#: Box width of each region as a multiple of the inter-ocular distance D, and the vertical shift
#: of the box centre (in D, negative = up) from the landmark centre.
BOX_WIDTH = {"left_eye": 0.8, "right_eye": 0.8, "nose": 1.05, "left_mouth": 0.6, "right_mouth": 0.6}
BOX_SHIFT_Y = {"left_eye": -0.15, "right_eye": -0.15, "nose": 0.0, "left_mouth": 0.0, "right_mouth": 0.0}
REGIONS = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
MIN_EYE_DISTANCE = 4.0  # pixels; below this the landmarks are degenerate


#: the composition layouts: the choices of the recipe key ``[compose] layout`` (its default too
#: lives in :mod:`mepipe.recipe_schema`)
LAYOUTS: tuple[str, ...] = tuple(SECTIONS["compose"]["layout"].choices or ())


def default_layout() -> str:
    return str(section_defaults("compose")["layout"])


def tile_layout(size: int, layout: str | None = None) -> dict[str, tuple[int, int, int, int]]:
    """Where each region goes in the output: ``name -> (row0, row1, col0, col1)``.

    ``layout`` is one of :data:`LAYOUTS` (``None``: the recipe schema's default). Raises
    ``ValueError`` for an unknown layout or a size the layout cannot place on the patch grid.
    """
    layout = default_layout() if layout is None else layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; layouts are {', '.join(LAYOUTS)}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    size = int(size)
    half = size // 2
    if layout == "bands":
        he = int(round(size * 10 / 28))
        return {
            "left_eye": (0, he, 0, half),
            "right_eye": (0, he, half, size),
            "nose": (he, size - he, 0, size),
            "left_mouth": (size - he, size, 0, half),
            "right_mouth": (size - he, size, half, size),
        }
    if size % 4:
        raise ValueError(
            f"layout {layout!r} puts the regions on a 4 x 4 grid of patches of size/4 pixels: "
            f"size must be a multiple of 4 (28 for AHMSA-Net's 7 x 7 patches), got {size}"
        )
    p = size // 4
    if layout == "quadrants":
        return {
            "left_eye": (0, 2 * p, 0, 2 * p),
            "right_eye": (0, 2 * p, 2 * p, size),
            "left_mouth": (2 * p, size, 0, 2 * p),
            "right_mouth": (2 * p, size, 2 * p, size),
        }
    return {
        "left_eye": (0, 2 * p, 0, 2 * p),
        "right_eye": (0, 2 * p, 2 * p, size),
        "nose": (2 * p, 3 * p, 0, size),
        "left_mouth": (3 * p, size, 0, 2 * p),
        "right_mouth": (3 * p, size, 2 * p, size),
    }


def _check_landmarks(landmarks, h: int, w: int) -> np.ndarray:
    try:
        pts = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise StageError("compose", f"landmarks are not numeric: {e}") from e
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < 468:
        raise StageError("compose", f"expected MediaPipe face-mesh landmarks (478, 2), got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise StageError("compose", "landmarks contain NaN or infinite values")
    used = pts[list(USED_LANDMARKS)]
    outside = (used[:, 0] < 0) | (used[:, 0] >= w) | (used[:, 1] < 0) | (used[:, 1] >= h)
    if outside.any():
        bad = [USED_LANDMARKS[i] for i in np.flatnonzero(outside)]
        raise StageError("compose", f"landmarks {bad} lie outside the {w}x{h} image")
    return pts


def region_boxes(
    landmarks, shape, size: int = 28, layout: str | None = None
) -> dict[str, tuple[float, float, float, float]]:
    """Crop box of each region of ``layout`` in the flow map, ``name -> (cx, cy, width, height)``
    in pixels.

    ``shape`` is the ``(H, W)`` of the maps. Raises :class:`StageError` ("compose") for unusable
    landmarks.
    """
    tiles = tile_layout(size, layout)
    h, w = int(shape[0]), int(shape[1])
    pts = _check_landmarks(landmarks, h, w)
    eyes = sorted([pts[list(EYE_A)].mean(axis=0), pts[list(EYE_B)].mean(axis=0)], key=lambda p: p[0])
    mouth = sorted([pts[MOUTH_CORNERS[0]], pts[MOUTH_CORNERS[1]]], key=lambda p: p[0])
    d = float(np.hypot(*(eyes[1] - eyes[0])))
    if d < MIN_EYE_DISTANCE:
        raise StageError("compose", f"eye centres are {d:.1f} px apart: landmarks are degenerate")
    centres = {
        "left_eye": eyes[0],
        "right_eye": eyes[1],
        "nose": pts[list(NOSE)].mean(axis=0),
        "left_mouth": mouth[0],
        "right_mouth": mouth[1],
    }
    boxes = {}
    for name, (r0, r1, c0, c1) in tiles.items():
        bw = BOX_WIDTH[name] * d
        bh = bw * (r1 - r0) / (c1 - c0)
        cx, cy = centres[name]
        boxes[name] = (float(cx), float(cy + BOX_SHIFT_Y[name] * d), bw, bh)
    return boxes


def compose_regions(
    flow: np.ndarray, strain: np.ndarray, landmarks: np.ndarray, size: int = 28, layout: str | None = None
) -> np.ndarray:
    """Five-region composition: float32 ``(3, size, size)`` with channels (u, v, strain).

    ``flow`` is ``(2, H, W)`` (u, v), ``strain`` ``(H, W)``, ``landmarks`` the ``(478, 2)`` apex
    face-mesh points (x, y) in the same pixel grid. Each region box (:func:`region_boxes`) is cut
    out with sub-pixel accuracy (zeros outside the image) and area-resized into its tile
    (:func:`tile_layout` of ``layout``, ``None``: the recipe default ``"patch-grid"``). Raises
    :class:`StageError` ("compose") on unusable landmarks and ``ValueError`` on maps of the wrong
    shape, an unknown layout or a size the layout refuses.
    """
    import cv2

    flow = np.asarray(flow, dtype=np.float32)
    strain = np.asarray(strain, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be (2, H, W), got shape {flow.shape}")
    if strain.shape != flow.shape[1:]:
        raise ValueError(f"strain {strain.shape} does not match flow {flow.shape[1:]}")
    h, w = strain.shape
    tiles = tile_layout(size, layout)
    boxes = region_boxes(landmarks, (h, w), size, layout)
    maps = np.ascontiguousarray(np.stack([flow[0], flow[1], strain], axis=-1))  # (H, W, 3)
    if not np.isfinite(maps).all():
        raise StageError("compose", "flow or strain contains NaN or infinite values")
    margin = int(np.ceil(max(max(b[2], b[3]) for b in boxes.values()) / 2)) + 2
    padded = cv2.copyMakeBorder(maps, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    out = np.zeros((size, size, 3), dtype=np.float32)
    for name, (r0, r1, c0, c1) in tiles.items():
        cx, cy, bw, bh = boxes[name]
        pw, ph = max(1, int(round(bw))), max(1, int(round(bh)))
        patch = cv2.getRectSubPix(padded, (pw, ph), (cx + margin, cy + margin))
        interp = cv2.INTER_AREA if pw >= (c1 - c0) else cv2.INTER_LINEAR
        out[r0:r1, c0:c1] = cv2.resize(patch, (c1 - c0, r1 - r0), interpolation=interp)
    return np.ascontiguousarray(out.transpose(2, 0, 1))
