"""SOA angle conventions, in one place: what mepipe reports, and how the authors' code counts.

**mepipe's (reported) convention = the paper's.** An SOA angle is the orientation θ of the axis
``d = (cos θ, sin θ)`` along which the attention profile runs, in image coordinates (x to the
right, y downwards, as the arrays are stored). θ = 90° is the vertical axis: the profile is a
function of the row, every row is averaged over its width, and SOA *is* CVA (paper §3.4: "when θ
converges to π/2 the module degenerates to CVA; when it converges to 0 it becomes horizontal
attention"). Angles are axes, so θ and θ + 180° are one angle; reported values are folded into
[0, 180). The paper does not say which way an oblique angle turns; with y pointing down, a
positive θ turns ``d`` clockwise as seen on the screen (45° points right and down).
``results.json``, ``angles.png``, ``mepipe bench soa`` and ``mepipe synth --axis`` all use it.

**The authors' code** (``CA_block.py``, ``OrientationPoolingVec``) rotates the feature map with
``affine_grid`` by ``[[cos a, sin a], [-sin a, cos a]]`` and then averages over the width: at
``a = 0`` the map is not rotated and its rows are averaged, so **their 0 is CVA** (vertical), and
their profile axis is ``(sin a, cos a)``. Hence ``θ = 90° - a`` (mod 180°): their initial angle
2π/5 = 72° is θ = 18° here, 18° from horizontal.

Internally the model keeps θ in radians, unfolded (:mod:`mepipe.models.attention`); this module
turns it into reported degrees.
"""

from __future__ import annotations

import math

#: the vertical axis, CVA's, in the reported convention
VERTICAL_DEG = 90.0
#: the horizontal axis
HORIZONTAL_DEG = 0.0
#: SOA's start angle (``init_deg``): halfway between the horizontal and vertical axes, so that
#: neither of the two candidate priors is handed to the learned angle
DEFAULT_INIT_DEG = 45.0


def fold(deg: float) -> float:
    """An axis angle folded into [0, 180) (θ and θ + 180° are the same axis)."""
    v = float(deg) % 180.0
    return 0.0 if v == 180.0 else v  # -1e-17 % 180 rounds to 180.0


def reported_deg(theta_rad: float) -> float:
    """The model's internal angle (radians, unfolded) in the reported convention: degrees in [0, 180)."""
    return fold(math.degrees(float(theta_rad)))


def internal_rad(deg: float) -> float:
    """A reported angle (degrees) as the model's internal angle (radians)."""
    return math.radians(float(deg))


def from_authors(a_deg: float) -> float:
    """An angle of the authors' code (their 0 = CVA) in the reported convention (90 = CVA)."""
    return fold(90.0 - float(a_deg))


def to_authors(deg: float) -> float:
    """A reported angle (90 = CVA) in the authors' code's convention (0 = CVA), in [0, 180)."""
    return fold(90.0 - float(deg))


def axis_distance(a_deg: float, b_deg: float) -> float:
    """Angle between two axes in degrees, in [0, 90]."""
    d = abs(float(a_deg) - float(b_deg)) % 180.0
    return min(d, 180.0 - d)


def axis_mean(degs) -> float:
    """The mean of axes (the doubled-angle circular mean), degrees in [0, 180): 2° and 178° average
    to 0°, not to 90° as their arithmetic mean would. NaN for an empty list or axes that cancel."""
    degs = [float(d) for d in degs]
    s = sum(math.sin(math.radians(2 * d)) for d in degs)
    c = sum(math.cos(math.radians(2 * d)) for d in degs)
    if not degs or math.hypot(s, c) < 1e-12 * max(1, len(degs)):
        return float("nan")
    return fold(math.degrees(math.atan2(s, c)) / 2)


#: one line saying how the reported angles read (results.json, soa.json)
CONVENTION = (
    "degrees in [0, 180) (an axis: θ and θ + 180° are one), image x right and y down, 0 = horizontal, "
    "90 = vertical = CVA (the paper's convention; the authors' code's a is 90 - θ)"
)


def mirrored(deg: float) -> float:
    """The axis a horizontal flip (x -> -x) makes of axis ``deg``: 180° - θ. Only 0° and 90° are
    their own mirror images, so flips mix every oblique axis with another one."""
    return fold(180.0 - float(deg))


def rotated(deg: float, phi_deg: float) -> float:
    """The axis that a rotation of the image by ``phi_deg`` (same sense as θ: clockwise on
    screen for positive values, y pointing down) makes of axis ``deg``."""
    return fold(float(deg) + float(phi_deg))


#: how to read a learned angle (results.json ``angles_reading``, printed by ``mepipe train``)
LEARNED_READING = (
    "a learned SOA angle's end point is set by its start and by theta's learning rate wherever "
    "the loss depends little on the angle: on mepipe's planted-axis data the full model's held-out "
    "loss was flat in theta within seed noise, and the angles stopped where the network had "
    "fitted (docs/performance.md, 'SOA: learning a planted axis'). Read it as the data's axis only "
    "beside runs of facesleuth-soa-frozen at fixed angles on the same caches (mepipe compare), or "
    "runs from several start angles (model option init_deg)"
)


def start_deg(model: str, model_kwargs: dict | None = None) -> float | None:
    """The start angle (reported convention) of SOA model ``model`` with these options; ``None``
    for a model without an SOA angle."""
    from .models.registry import soa_mode

    mode = soa_mode(model)
    if mode is None:
        return None
    init = (model_kwargs or {}).get("init_deg")
    if init is not None:
        return fold(float(init))
    return HORIZONTAL_DEG if mode == "frozen" else DEFAULT_INIT_DEG


def is_learned(model: str) -> bool:
    """Whether model ``model`` learns its SOA angle (not CVA, not frozen)."""
    from .models.registry import soa_mode

    return soa_mode(model) in ("independent", "shared")


__all__ = [
    "VERTICAL_DEG",
    "HORIZONTAL_DEG",
    "DEFAULT_INIT_DEG",
    "LEARNED_READING",
    "CONVENTION",
    "fold",
    "reported_deg",
    "internal_rad",
    "from_authors",
    "to_authors",
    "axis_distance",
    "axis_mean",
    "mirrored",
    "rotated",
    "start_deg",
    "is_learned",
]
