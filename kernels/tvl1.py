"""Dual TV-L1 optical flow (Numba, float32).

The scheme of Zach, Pock and Bischof (2007) as described by Sánchez, Meinhardt-Llopis and
Facciolo ("TV-L1 Optical Flow Estimation", IPOL 2013), organised like OpenCV's
``DualTVL1OpticalFlow`` so that its parameters mean the same thing:

- an image pyramid of ``nscales`` levels, each ``scaleStep`` times the size of the one below
  (bilinear resampling with half-pixel centres, as ``cv2.resize``; levels under 16 pixels are
  dropped);
- per level, ``warps`` warps of the second image by the current flow (bicubic, Keys a = -0.75,
  border replicated), linearising the brightness constancy around the warped image;
- per warp, up to ``outerIterations`` x ``innerIterations`` primal-dual iterations (thresholding
  step for v, primal step for u, projected dual step for p) stopped as soon as the mean squared
  change of the flow falls below ``epsilon²``; before each outer iteration the flow is median
  filtered (``medianFiltering`` x ``medianFiltering`` window, border replicated);
- the flow is resized to the next finer level and scaled by the size ratio.

Differences from OpenCV, all on the side of accuracy: warps use exact float coordinates (OpenCV's
``remap`` rounds them to 1/32 pixel) and replicate the border (OpenCV reads zeros outside the
image), and the flow is rescaled by the actual size ratio between levels.

All functions work on one pair in one thread; :func:`tvl1_batch` spreads pairs over the Numba
threads (``prange`` over tasks that each take every T-th pair). They release the GIL
(``nogil``), so Python threads (``--backend threading``) can run them at the same time. The
planes of a pair are views of one workspace (:func:`tvl1_pair_into`), so that a caller running
many pairs allocates nothing per pair. Speed notes (measured, per kernel) are in the docstrings
and in docs/performance.md ("Kernel rewrite").
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import njit, prange

_FM = True  # fastmath: lets LLVM reorder float reductions (results differ by rounding only)
# error_model="numpy" below: no ZeroDivisionError branch in divisions, so the loops vectorise


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def resize_bilinear(src, oh, ow):
    """Bilinear resize of a float32 (H, W) image to (oh, ow), half-pixel centres (``cv2.resize``
    INTER_LINEAR mapping), source coordinates clamped to the image."""
    out = np.empty((oh, ow), dtype=np.float32)
    resize_into(src, out, np.float32(1.0))
    return out


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def resize_into(src, out, scale):
    """:func:`resize_bilinear` of ``src`` to the shape of ``out``, into ``out``, times ``scale``
    (the flow's size ratio between levels; 1 for images)."""
    ih, iw = src.shape
    oh, ow = out.shape
    sy = ih / oh
    sx = iw / ow
    x0s = np.empty(ow, dtype=np.int64)
    x1s = np.empty(ow, dtype=np.int64)
    txs = np.empty(ow, dtype=np.float32)
    for x in range(ow):
        fx = (x + 0.5) * sx - 0.5
        if fx < 0.0:
            fx = 0.0
        x0 = int(fx)
        if x0 >= iw - 1:
            x0s[x] = iw - 1
            x1s[x] = iw - 1
            txs[x] = 0.0
        else:
            x0s[x] = x0
            x1s[x] = x0 + 1
            txs[x] = fx - x0
    for y in range(oh):
        fy = (y + 0.5) * sy - 0.5
        if fy < 0.0:
            fy = 0.0
        y0 = int(fy)
        if y0 >= ih - 1:
            y0 = ih - 1
            y1 = ih - 1
            ty = np.float32(0.0)
        else:
            y1 = y0 + 1
            ty = np.float32(fy - y0)
        for x in range(ow):
            a = src[y0, x0s[x]] + txs[x] * (src[y0, x1s[x]] - src[y0, x0s[x]])
            b = src[y1, x0s[x]] + txs[x] * (src[y1, x1s[x]] - src[y1, x0s[x]])
            out[y, x] = (a + ty * (b - a)) * scale


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def centered_gradient(src, dx, dy):
    """Half central differences (``0.5 (I(x+1) - I(x-1))``) with the border replicated. The first
    and last columns are done apart, so that the row loop has no branch and vectorises."""
    h, w = src.shape
    half = np.float32(0.5)
    for y in range(h):
        r = src[y]
        rm = src[max(y - 1, 0)]
        rp = src[min(y + 1, h - 1)]
        ox = dx[y]
        oy = dy[y]
        for x in range(1, w - 1):
            ox[x] = half * (r[x + 1] - r[x - 1])
        ox[0] = half * (r[min(1, w - 1)] - r[0])
        ox[w - 1] = half * (r[w - 1] - r[max(w - 2, 0)])
        for x in range(w):
            oy[x] = half * (rp[x] - rm[x])


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy", inline="always")
def _cubic_weights(t):
    """Keys (a = -0.75) weights of the taps at -1, 0, 1, 2 for a fractional position t in [0, 1),
    in float32 (float literals would turn the whole warp into float64 arithmetic)."""
    a = np.float32(-0.75)
    one = np.float32(1.0)
    t1 = t + one
    w0 = ((a * t1 - np.float32(5.0) * a) * t1 + np.float32(8.0) * a) * t1 - np.float32(4.0) * a
    w1 = ((a + np.float32(2.0)) * t - (a + np.float32(3.0))) * t * t + one
    s = one - t
    w2 = ((a + np.float32(2.0)) * s - (a + np.float32(3.0))) * s * s + one
    w3 = one - w0 - w1 - w2
    return w0, w1, w2, w3


#: border of the padded images of :func:`pad_replicate`: a warp coordinate is clamped to
#: [-2, size + 1], so its taps reach 3 pixels before the image and 3 past its last pixel
PAD_LO, PAD_HI = 3, 4


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def pad_replicate(src, out):
    """``out`` (H + 7, W + 7): ``src`` with its border replicated ``PAD_LO`` pixels before and
    ``PAD_HI`` after, so that clamped bicubic taps become plain reads."""
    h, w = src.shape
    for y in range(h + PAD_LO + PAD_HI):
        row = src[min(max(y - PAD_LO, 0), h - 1)]
        o = out[y]
        for x in range(PAD_LO):
            o[x] = row[0]
        for x in range(w):
            o[x + PAD_LO] = row[x]
        for x in range(PAD_HI):
            o[PAD_LO + w + x] = row[w - 1]


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy", inline="always")
def _taps16(F, b0, st, wx0, wx1, wx2, wx3, wy0, wy1, wy2, wy3):
    """Bicubic sum over the 4 x 4 taps of the flat padded image ``F`` from index ``b0`` (top left
    tap), row stride ``st`` (unsigned indices: no negative-index wraparound code)."""
    one = np.uint64(1)
    two = np.uint64(2)
    three = np.uint64(3)
    b1 = b0 + st
    b2 = b1 + st
    b3 = b2 + st
    return (
        wy0 * (wx0 * F[b0] + wx1 * F[b0 + one] + wx2 * F[b0 + two] + wx3 * F[b0 + three])
        + wy1 * (wx0 * F[b1] + wx1 * F[b1 + one] + wx2 * F[b1 + two] + wx3 * F[b1 + three])
        + wy2 * (wx0 * F[b2] + wx1 * F[b2 + one] + wx2 * F[b2 + two] + wx3 * F[b2 + three])
        + wy3 * (wx0 * F[b3] + wx1 * F[b3 + one] + wx2 * F[b3 + two] + wx3 * F[b3 + three])
    )


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def warp_linearise(P, Px, Py, I0, u1, u2, I1wx, I1wy, igrad, rho_c, wts, base):
    """Warp ``I1`` and its gradient by the flow and linearise the data term around it.

    ``P``, ``Px``, ``Py``: ``I1``, ``∂I1/∂x``, ``∂I1/∂y`` padded by :func:`pad_replicate`. Each is
    sampled at ``(x + u1, y + u2)`` (bicubic, Keys a = -0.75, taps clamped to the image: the
    coordinate is clamped to [-2, size + 1] and the padding replicates the border). Writes the
    warped gradient ``I1wx``, ``I1wy``, ``igrad = 1 / |∇I1w|²`` (kept finite where the image is
    flat: the thresholding step then saturates at ±λθ times a vanishing gradient, i.e. does
    nothing) and ``rho_c = I1w - ∇I1w · u - I0``. ``wts`` (9, W) float32 and ``base`` (W,) uint64
    are scratch rows.

    Per row, a first loop (vectorised) computes the coordinates and the 8 tap weights, a second
    one (scalar: its 48 loads are gathers) sums the taps, a third (vectorised) linearises.
    Measured at 256²: 11 ns per pixel, against 31 ns for the single loop with clamped taps it
    replaced (whose weights were computed in float64).
    """
    h, w = u1.shape
    st = np.uint64(w + PAD_LO + PAD_HI)
    lo = np.float32(-2.0)
    hix = np.float32(w + 1.0)
    hiy = np.float32(h + 1.0)
    Pf = P.ravel()
    Pxf = Px.ravel()
    Pyf = Py.ravel()
    q0 = wts[0]
    q1 = wts[1]
    q2 = wts[2]
    q3 = wts[3]
    q4 = wts[4]
    q5 = wts[5]
    q6 = wts[6]
    q7 = wts[7]
    warped = wts[8]
    for y in range(h):
        u1r = u1[y]
        u2r = u2[y]
        fyb = np.float32(y)
        for x in range(w):
            # keep far-away coordinates finite for the int conversion; the padding clamps the taps
            fx = min(max(np.float32(x) + u1r[x], lo), hix)
            fy = min(max(fyb + u2r[x], lo), hiy)
            fxf = np.floor(fx)
            fyf = np.floor(fy)
            wx0, wx1, wx2, wx3 = _cubic_weights(fx - fxf)
            wy0, wy1, wy2, wy3 = _cubic_weights(fy - fyf)
            q0[x] = wx0
            q1[x] = wx1
            q2[x] = wx2
            q3[x] = wx3
            q4[x] = wy0
            q5[x] = wy1
            q6[x] = wy2
            q7[x] = wy3
            # top-left tap (ix - 1, iy - 1) in padded coordinates; the integer clamp keeps the reads
            # inside the padded image even for a NaN flow (whose float clamp is not guaranteed)
            ix = min(max(np.int64(fxf), -2), w + 1)
            iy = min(max(np.int64(fyf), -2), h + 1)
            base[x] = np.uint64(iy + (PAD_LO - 1)) * st + np.uint64(ix + (PAD_LO - 1))
        oxr = I1wx[y]
        oyr = I1wy[y]
        for x in range(w):
            b0 = base[x]
            wx0 = q0[x]
            wx1 = q1[x]
            wx2 = q2[x]
            wx3 = q3[x]
            wy0 = q4[x]
            wy1 = q5[x]
            wy2 = q6[x]
            wy3 = q7[x]
            warped[x] = _taps16(Pf, b0, st, wx0, wx1, wx2, wx3, wy0, wy1, wy2, wy3)
            oxr[x] = _taps16(Pxf, b0, st, wx0, wx1, wx2, wx3, wy0, wy1, wy2, wy3)
            oyr[x] = _taps16(Pyf, b0, st, wx0, wx1, wx2, wx3, wy0, wy1, wy2, wy3)
        igr = igrad[y]
        rcr = rho_c[y]
        i0r = I0[y]
        for x in range(w):
            gx = oxr[x]
            gy = oyr[x]
            igr[x] = np.float32(1.0) / max(gx * gx + gy * gy, np.float32(1e-30))
            rcr[x] = warped[x] - gx * u1r[x] - gy * u2r[x] - i0r[x]


def _batcher_pairs(n):
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for ``n`` (a power of two) wires."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def _sorting_pairs(n):
    """A sorting network for ``n`` wires: Batcher's for the next power of two, comparators that
    touch the padding wires (which would hold +inf) removed."""
    size = 1
    while size < n:
        size *= 2
    return [(i, j) for i, j in _batcher_pairs(size) if j < n]


def _closure(known):
    while True:
        k = known.astype(np.int32)
        nxt = known | ((k @ k) > 0)
        if (nxt == known).all():
            return known
        known = nxt


@cache
def median_network(ksize: int):
    """Comparator networks for a ``ksize`` x ``ksize`` median: ``(column_net, median_net)``.

    ``column_net`` sorts the ``ksize`` values of one window column. ``median_net`` acts on the
    ``ksize²`` wires ``c * ksize + r`` (column c, rank r inside its sorted column) and leaves the
    median on wire ``ksize² // 2``. It is a full sorting network with the comparators removed
    whose order is already implied by the sorted columns (tracked as a partial order) and those
    that cannot influence the middle wire.
    """
    k = int(ksize)
    n = k * k
    known = np.eye(n, dtype=bool)
    for c in range(0, n, k):
        for a in range(k):
            known[c + a, c + a : c + k] = True
    kept = []
    for i, j in _sorting_pairs(n):
        if known[i, j]:
            continue  # already ordered: the comparator never swaps
        kept.append((i, j))
        le_i, le_j = known[:, i].copy(), known[:, j].copy()  # rows k with value_k <= old_i / old_j
        ge_i, ge_j = known[i, :].copy(), known[j, :].copy()  # columns k with old_i / old_j <= value_k
        known[:, i] = le_i & le_j  # k <= min(i, j)
        known[i, :] = ge_i | ge_j  # min(i, j) <= k
        known[:, j] = le_i | le_j  # k <= max(i, j)
        known[j, :] = ge_i & ge_j  # max(i, j) <= k
        known[i, j], known[j, i] = True, False
        known[i, i] = known[j, j] = True
        known = _closure(known)
    need = {n // 2}
    pruned = []
    for i, j in reversed(kept):
        if i in need or j in need:
            pruned.append((i, j))
            need |= {i, j}
    col = np.asarray(_sorting_pairs(k), dtype=np.int64).reshape(-1, 2)
    return col, np.asarray(pruned[::-1], dtype=np.int64).reshape(-1, 2)


@njit(cache=True, nogil=True)
def _compare_rows(lo, hi):
    """One comparator on two distinct rows, elementwise: ``lo, hi = min, max``.

    ``np.minimum``/``np.maximum`` without fastmath, in a function of its own: so it compiles to
    plain vector min/max (fastmath turns the in-place min into masked stores, slow on AMD cores,
    and inlined into the caller's loop nest it measured 3-4x slower)."""
    for x in range(lo.shape[0]):
        a = lo[x]
        b = hi[x]
        lo[x] = np.minimum(a, b)
        hi[x] = np.maximum(a, b)


def _order_network(n, cols, pads):
    """Batcher's sorting network on ``n`` wires, given that each list of wires in ``cols`` holds
    ascending values and the wires ``pads`` hold +inf. Returns ``[(kind, i, j)]``: ``"cmp"`` for a
    comparator whose outcome is unknown, ``"swap"`` where the order is known to be reversed (a
    renaming of the two wires, no work); comparators already known in order are dropped."""
    known = np.eye(n, dtype=bool)
    for c in cols:
        for a in range(len(c)):
            known[c[a], c[a:]] = True
    known[:, list(pads)] = True
    known = _closure(known)
    ops = []
    for i, j in _batcher_pairs(n):
        if known[i, j]:
            continue
        if known[j, i]:
            ops.append(("swap", i, j))
            known[[i, j], :] = known[[j, i], :]
            known[:, [i, j]] = known[:, [j, i]]
            continue
        ops.append(("cmp", i, j))
        le_i, le_j = known[:, i].copy(), known[:, j].copy()
        ge_i, ge_j = known[i, :].copy(), known[j, :].copy()
        known[:, i] = le_i & le_j
        known[i, :] = ge_i | ge_j
        known[:, j] = le_i | le_j
        known[j, :] = ge_i & ge_j
        known[i, j], known[j, i] = True, False
        known[i, i] = known[j, j] = True
        known = _closure(known)
    return ops


def median_pair_network(ksize: int):
    """Comparators giving the order statistics ``med - k .. med`` (``med = k² // 2``) of the
    ``k (k - 1)`` values of ``k - 1`` sorted columns of ``k`` values.

    Returns ``(wires, comparators, ranks)``: ``wires[(c, r)]`` is the wire holding rank ``r`` of
    column ``c`` (columns laid out at a power-of-two stride, so that Batcher's merges line up with
    them: 51 comparators for k = 5, where one full window takes 86), ``comparators`` the
    ``(i, j)`` pairs to apply in order (``min`` to ``i``, ``max`` to ``j``) with the known swaps
    already folded into the wire numbers, and ``ranks[q]`` the wire holding order statistic q.
    """
    k = int(ksize)
    med = k * k // 2
    stride = 1
    while stride < k:
        stride *= 2
    n = 1
    while n < stride * (k - 1):
        n *= 2
    cols = [[c * stride + r for r in range(k)] for c in range(k - 1)]
    real = {w for c in cols for w in c}
    ops = _order_network(n, cols, [w for w in range(n) if w not in real])
    need = set(range(med - k, med + 1))
    keep = [False] * len(ops)
    for idx in range(len(ops) - 1, -1, -1):
        kind, i, j = ops[idx]
        if kind == "swap":
            need = {j if w == i else (i if w == j else w) for w in need}
        elif i in need or j in need:
            keep[idx] = True
            need |= {i, j}
    at = list(range(n))  # at[position] = the wire (initial position) whose variable holds it
    comparators = []
    for (kind, i, j), kp in zip(ops, keep):
        if kind == "swap":
            at[i], at[j] = at[j], at[i]
        elif kp:
            comparators.append((at[i], at[j]))
    wires = {(c, r): c * stride + r for c in range(k - 1) for r in range(k)}
    return wires, comparators, {q: at[q] for q in range(med - k, med + 1)}


def median_source(ksize: int) -> str:
    """Source of the straight-line kernels ``_sort{k}_columns`` and ``_median{k}_pairs`` for a
    ``k`` x ``k`` median (``k = ksize``), as pasted below for ksize 3 and 5.

    The window's columns are sorted once per row (``_sort{k}_columns``, network of
    :func:`median_network`). Two neighbouring outputs ``2m`` and ``2m + 1`` share ``k - 1`` of
    their columns: the order statistics ``med - k .. med`` of those are computed once
    (:func:`median_pair_network`), and each output is then the ``med``-th smallest of them and of
    its own last column ``B``: ``min_j max(A[med - j], B[j - 1])``, j = 0..k (``B[-1]`` = -inf):
    for 5 x 5, 44 + 10 min/max per output against 148 for one window (86 comparators).
    Written out as one comparator per line on local variables, the windows stay in vector
    registers, and LLVM drops the halves of comparators whose output is never read. The columns
    are held even/odd split (``E``, ``O``) so that a pair's loads are contiguous, and indices are
    unsigned (``u + np.uint64(c)``: with a signed ``x + c``, Numba's negative-index wraparound
    turned the loads into gathers). Both kernels are inlined into the row loop (as calls, the
    reference counting of their row arguments made the sort of a 53-pixel row cost 3.8 instead of
    0.65 ns per pixel), and the pair loop runs over a multiple of :data:`_PAIR_BLOCK` pairs.
    Measured for 5 x 5 in a compiled loop: 1.8-2.0 ns per pixel at 256², 2.8-3.0 at 53²; called
    from Python, 2.5 and 6.6 against 10.2 and 26.7 for the networks applied to whole rows
    (:func:`_median_rows_generic`, the previous kernel). ``tests/stages/test_flow_engines.py`` checks the
    pasted code equals this output.
    """
    k = int(ksize)
    col, _ = median_network(k)
    med = k * k // 2
    wires, comps, ranks = median_pair_network(k)
    dec = '@njit(cache=True, nogil=True, error_model="numpy", inline="always")'
    rows = ", ".join(f"r{i}" for i in range(k))
    out = [
        dec,
        f"def _sort{k}_columns({rows}, cols, off):",
        f'    """Sort each column of the rows {rows} into cols[:, off:off + w]."""',
    ]
    out += [f"    s{i} = cols[{i}, off:]" for i in range(k)]
    out.append("    for x in range(r0.shape[0]):")
    out += [f"        v{i} = r{i}[x]" for i in range(k)]
    out += [f"        v{i}, v{j} = min(v{i}, v{j}), max(v{i}, v{j})" for i, j in col.tolist()]
    out += [f"        s{i}[x] = v{i}" for i in range(k)]
    out += [
        "",
        "",
        dec,
        f"def _median{k}_pairs(E, O, out):",
        f'    """out[2m], out[2m + 1]: medians over the sorted padded columns 2m .. 2m + {k - 1} and 2m + 1 ..'
        f' 2m + {k}\n    (column p in E[:, p // 2] if p is even, else in O[:, p // 2])."""',
    ]
    for r in range(k):
        out += [f"    e{r} = E[{r}]", f"    o{r} = O[{r}]"]
    out += ["    for m in range(out.shape[0] // 2):", "        u = np.uint64(m)"]

    def column(p):  # padded column 2m + p
        return ("o", (p - 1) // 2) if p % 2 else ("e", p // 2)

    name = {w: f"a{w}" for w in wires.values()}
    for (c, r), w in sorted(wires.items()):
        arr, off = column(1 + c)
        out.append(f"        {name[w]} = {arr}{r}[u + np.uint64({off})]")
    for tag, p in (("x", 0), ("y", k)):
        arr, off = column(p)
        out += [f"        {tag}{r} = {arr}{r}[u + np.uint64({off})]" for r in range(k)]
    out += [f"        {name[i]}, {name[j]} = min({name[i]}, {name[j]}), max({name[i]}, {name[j]})" for i, j in comps]
    for tag, o in (("x", 0), ("y", 1)):
        out += [f"        {tag}{j - 1} = max({name[ranks[med - j]]}, {tag}{j - 1})" for j in range(1, k + 1)]
        terms = [name[ranks[med]]] + [f"{tag}{j}" for j in range(k)]
        while len(terms) > 2:  # a balanced tree of mins: short dependency chains
            nxt = []
            for i in range(0, len(terms) - 1, 2):
                out.append(f"        {terms[i + 1]} = min({terms[i]}, {terms[i + 1]})")
                nxt.append(terms[i + 1])
            terms = nxt + terms[len(terms) - len(terms) % 2 :]
        out.append(f"        out[np.uint64(2) * u + np.uint64({o})] = min({terms[0]}, {terms[1]})")
    return "\n".join(out) + "\n"


# --- generated by median_source(3) and median_source(5); do not edit by hand ---
@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sort3_columns(r0, r1, r2, cols, off):
    """Sort each column of the rows r0, r1, r2 into cols[:, off:off + w]."""
    s0 = cols[0, off:]
    s1 = cols[1, off:]
    s2 = cols[2, off:]
    for x in range(r0.shape[0]):
        v0 = r0[x]
        v1 = r1[x]
        v2 = r2[x]
        v0, v1 = min(v0, v1), max(v0, v1)
        v0, v2 = min(v0, v2), max(v0, v2)
        v1, v2 = min(v1, v2), max(v1, v2)
        s0[x] = v0
        s1[x] = v1
        s2[x] = v2


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _median3_pairs(E, O, out):
    """out[2m], out[2m + 1]: medians over the sorted padded columns 2m .. 2m + 2 and 2m + 1 .. 2m + 3
    (column p in E[:, p // 2] if p is even, else in O[:, p // 2])."""
    e0 = E[0]
    o0 = O[0]
    e1 = E[1]
    o1 = O[1]
    e2 = E[2]
    o2 = O[2]
    for m in range(out.shape[0] // 2):
        u = np.uint64(m)
        a0 = o0[u + np.uint64(0)]
        a1 = o1[u + np.uint64(0)]
        a2 = o2[u + np.uint64(0)]
        a4 = e0[u + np.uint64(1)]
        a5 = e1[u + np.uint64(1)]
        a6 = e2[u + np.uint64(1)]
        x0 = e0[u + np.uint64(0)]
        x1 = e1[u + np.uint64(0)]
        x2 = e2[u + np.uint64(0)]
        y0 = o0[u + np.uint64(1)]
        y1 = o1[u + np.uint64(1)]
        y2 = o2[u + np.uint64(1)]
        a0, a4 = min(a0, a4), max(a0, a4)
        a1, a5 = min(a1, a5), max(a1, a5)
        a2, a6 = min(a2, a6), max(a2, a6)
        a2, a4 = min(a2, a4), max(a2, a4)
        a1, a2 = min(a1, a2), max(a1, a2)
        a5, a4 = min(a5, a4), max(a5, a4)
        x0 = max(a5, x0)
        x1 = max(a2, x1)
        x2 = max(a1, x2)
        x0 = min(a4, x0)
        x2 = min(x1, x2)
        out[np.uint64(2) * u + np.uint64(0)] = min(x0, x2)
        y0 = max(a5, y0)
        y1 = max(a2, y1)
        y2 = max(a1, y2)
        y0 = min(a4, y0)
        y2 = min(y1, y2)
        out[np.uint64(2) * u + np.uint64(1)] = min(y0, y2)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sort5_columns(r0, r1, r2, r3, r4, cols, off):
    """Sort each column of the rows r0, r1, r2, r3, r4 into cols[:, off:off + w]."""
    s0 = cols[0, off:]
    s1 = cols[1, off:]
    s2 = cols[2, off:]
    s3 = cols[3, off:]
    s4 = cols[4, off:]
    for x in range(r0.shape[0]):
        v0 = r0[x]
        v1 = r1[x]
        v2 = r2[x]
        v3 = r3[x]
        v4 = r4[x]
        v0, v1 = min(v0, v1), max(v0, v1)
        v2, v3 = min(v2, v3), max(v2, v3)
        v0, v2 = min(v0, v2), max(v0, v2)
        v1, v3 = min(v1, v3), max(v1, v3)
        v1, v2 = min(v1, v2), max(v1, v2)
        v0, v4 = min(v0, v4), max(v0, v4)
        v2, v4 = min(v2, v4), max(v2, v4)
        v1, v2 = min(v1, v2), max(v1, v2)
        v3, v4 = min(v3, v4), max(v3, v4)
        s0[x] = v0
        s1[x] = v1
        s2[x] = v2
        s3[x] = v3
        s4[x] = v4


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _median5_pairs(E, O, out):
    """out[2m], out[2m + 1]: medians over the sorted padded columns 2m .. 2m + 4 and 2m + 1 .. 2m + 5
    (column p in E[:, p // 2] if p is even, else in O[:, p // 2])."""
    e0 = E[0]
    o0 = O[0]
    e1 = E[1]
    o1 = O[1]
    e2 = E[2]
    o2 = O[2]
    e3 = E[3]
    o3 = O[3]
    e4 = E[4]
    o4 = O[4]
    for m in range(out.shape[0] // 2):
        u = np.uint64(m)
        a0 = o0[u + np.uint64(0)]
        a1 = o1[u + np.uint64(0)]
        a2 = o2[u + np.uint64(0)]
        a3 = o3[u + np.uint64(0)]
        a4 = o4[u + np.uint64(0)]
        a8 = e0[u + np.uint64(1)]
        a9 = e1[u + np.uint64(1)]
        a10 = e2[u + np.uint64(1)]
        a11 = e3[u + np.uint64(1)]
        a12 = e4[u + np.uint64(1)]
        a16 = o0[u + np.uint64(1)]
        a17 = o1[u + np.uint64(1)]
        a18 = o2[u + np.uint64(1)]
        a19 = o3[u + np.uint64(1)]
        a20 = o4[u + np.uint64(1)]
        a24 = e0[u + np.uint64(2)]
        a25 = e1[u + np.uint64(2)]
        a26 = e2[u + np.uint64(2)]
        a27 = e3[u + np.uint64(2)]
        a28 = e4[u + np.uint64(2)]
        x0 = e0[u + np.uint64(0)]
        x1 = e1[u + np.uint64(0)]
        x2 = e2[u + np.uint64(0)]
        x3 = e3[u + np.uint64(0)]
        x4 = e4[u + np.uint64(0)]
        y0 = o0[u + np.uint64(2)]
        y1 = o1[u + np.uint64(2)]
        y2 = o2[u + np.uint64(2)]
        y3 = o3[u + np.uint64(2)]
        y4 = o4[u + np.uint64(2)]
        a0, a8 = min(a0, a8), max(a0, a8)
        a1, a9 = min(a1, a9), max(a1, a9)
        a2, a10 = min(a2, a10), max(a2, a10)
        a3, a11 = min(a3, a11), max(a3, a11)
        a4, a12 = min(a4, a12), max(a4, a12)
        a16, a24 = min(a16, a24), max(a16, a24)
        a17, a25 = min(a17, a25), max(a17, a25)
        a18, a26 = min(a18, a26), max(a18, a26)
        a19, a27 = min(a19, a27), max(a19, a27)
        a20, a28 = min(a20, a28), max(a20, a28)
        a4, a8 = min(a4, a8), max(a4, a8)
        a20, a24 = min(a20, a24), max(a20, a24)
        a2, a4 = min(a2, a4), max(a2, a4)
        a3, a9 = min(a3, a9), max(a3, a9)
        a10, a8 = min(a10, a8), max(a10, a8)
        a18, a20 = min(a18, a20), max(a18, a20)
        a19, a25 = min(a19, a25), max(a19, a25)
        a26, a24 = min(a26, a24), max(a26, a24)
        a1, a2 = min(a1, a2), max(a1, a2)
        a3, a4 = min(a3, a4), max(a3, a4)
        a9, a10 = min(a9, a10), max(a9, a10)
        a11, a8 = min(a11, a8), max(a11, a8)
        a17, a18 = min(a17, a18), max(a17, a18)
        a19, a20 = min(a19, a20), max(a19, a20)
        a25, a26 = min(a25, a26), max(a25, a26)
        a27, a24 = min(a27, a24), max(a27, a24)
        a0, a16 = min(a0, a16), max(a0, a16)
        a1, a17 = min(a1, a17), max(a1, a17)
        a2, a18 = min(a2, a18), max(a2, a18)
        a3, a19 = min(a3, a19), max(a3, a19)
        a4, a20 = min(a4, a20), max(a4, a20)
        a9, a25 = min(a9, a25), max(a9, a25)
        a10, a26 = min(a10, a26), max(a10, a26)
        a11, a27 = min(a11, a27), max(a11, a27)
        a8, a24 = min(a8, a24), max(a8, a24)
        a12, a28 = min(a12, a28), max(a12, a28)
        a8, a16 = min(a8, a16), max(a8, a16)
        a12, a17 = min(a12, a17), max(a12, a17)
        a4, a8 = min(a4, a8), max(a4, a8)
        a9, a12 = min(a9, a12), max(a9, a12)
        a10, a18 = min(a10, a18), max(a10, a18)
        a11, a19 = min(a11, a19), max(a11, a19)
        a20, a16 = min(a20, a16), max(a20, a16)
        a25, a17 = min(a25, a17), max(a25, a17)
        a10, a8 = min(a10, a8), max(a10, a8)
        a11, a12 = min(a11, a12), max(a11, a12)
        a18, a20 = min(a18, a20), max(a18, a20)
        a19, a25 = min(a19, a25), max(a19, a25)
        a11, a8 = min(a11, a8), max(a11, a8)
        a12, a18 = min(a12, a18), max(a12, a18)
        a19, a20 = min(a19, a20), max(a19, a20)
        x0 = max(a19, x0)
        x1 = max(a18, x1)
        x2 = max(a12, x2)
        x3 = max(a8, x3)
        x4 = max(a11, x4)
        x0 = min(a20, x0)
        x2 = min(x1, x2)
        x4 = min(x3, x4)
        x2 = min(x0, x2)
        out[np.uint64(2) * u + np.uint64(0)] = min(x2, x4)
        y0 = max(a19, y0)
        y1 = max(a18, y1)
        y2 = max(a12, y2)
        y3 = max(a8, y3)
        y4 = max(a11, y4)
        y0 = min(a20, y0)
        y2 = min(y1, y2)
        y4 = min(y3, y4)
        y2 = min(y0, y2)
        out[np.uint64(2) * u + np.uint64(1)] = min(y2, y4)


# --- end of generated code ---


@njit(cache=True, nogil=True)
def _median_rows_generic(src, ksize, col_net, med_net, out):
    """Median filter of ``src`` into ``out`` for any odd ``ksize``: the networks' comparators
    applied to whole rows."""
    h, w = src.shape
    r = ksize // 2
    n = ksize * ksize
    wp = w + 2 * r
    cols = np.empty((ksize, wp), dtype=np.float32)
    wires = np.empty((n, w), dtype=np.float32)
    for y in range(h):
        for k in range(ksize):
            yy = min(max(y + k - r, 0), h - 1)
            for x in range(wp):
                cols[k, x] = src[yy, min(max(x - r, 0), w - 1)]
        for e in range(col_net.shape[0]):
            _compare_rows(cols[col_net[e, 0]], cols[col_net[e, 1]])
        for c in range(ksize):
            for k in range(ksize):
                for x in range(w):
                    wires[c * ksize + k, x] = cols[k, x + c]
        for e in range(med_net.shape[0]):
            _compare_rows(wires[med_net[e, 0]], wires[med_net[e, 1]])
        for x in range(w):
            out[y, x] = wires[n // 2, x]


@njit(cache=True, nogil=True)
def _split_even_odd(src, Se, So):
    """``Se[y, m] = src[y, 2m]``, ``So[y, m] = src[y, 2m + 1]``."""
    h, w = src.shape
    two = np.uint64(2)
    for y in range(h):
        s = src[y]
        e = Se[y]
        o = So[y]
        for m in range(w // 2):
            u = np.uint64(m)
            e[u] = s[two * u]
            o[u] = s[two * u + np.uint64(1)]
        if w % 2 == 1:
            e[w // 2] = s[w - 1]


@njit(cache=True, nogil=True)
def _plane(buf, off, h, w):
    """A C-contiguous (h, w) view of the flat ``buf`` from ``off``, and the offset after it."""
    return buf[off : off + h * w].reshape((h, w)), off + h * w


#: the pair loops run over a multiple of this many pairs (the vector width in float32 lanes), so
#: that no pair falls into LLVM's scalar remainder loop: on a 53-pixel row (the coarsest level
#: of a 128² pair) 3 scalar pairs cost as much as the 24 vectorised ones
_PAIR_BLOCK = 8


@njit(cache=True, nogil=True)
def _n_pairs(w):
    """Output pairs per row of a ``w``-wide image, rounded up to :data:`_PAIR_BLOCK`."""
    half = (w + 1) // 2
    return (half + _PAIR_BLOCK - 1) // _PAIR_BLOCK * _PAIR_BLOCK


@njit(cache=True, nogil=True)
def median_scratch_size(h, w, ksize):
    """float32 elements of scratch :func:`median_filter_into` needs for an (h, w) image."""
    n = _n_pairs(w)
    r = ksize // 2
    return h * 2 * n + 2 * h * n + 2 * ksize * (n + r + 1)


@njit(cache=True, nogil=True)
def _median_pairs(src, ksize, out, scratch):
    """``ksize`` 3 or 5 median of ``src`` into ``out`` (H, 2 :func:`_n_pairs`) with the
    straight-line kernels of :func:`median_source`. Image column x is padded column x + r; the
    columns after the image (the border and the rounding of the pair count) are copies of the
    last image column's sorted column, those before it of the first one's. ``scratch``: flat
    float32, at least ``2 h n + 2 ksize (n + r + 1)`` elements (n = :func:`_n_pairs`); the columns
    of ``Se``/``So`` past the image are never written and only feed padded columns that are then
    overwritten."""
    h, w = src.shape
    r = ksize // 2
    n = _n_pairs(w)
    n_pad = 2 * n + 2 * r  # padded columns the pairs read
    Se, off = _plane(scratch, 0, h, n)
    So, off = _plane(scratch, off, h, n)
    _split_even_odd(src, Se, So)
    E, off = _plane(scratch, off, ksize, (n_pad + 1) // 2)
    O, off = _plane(scratch, off, ksize, (n_pad + 1) // 2)
    last = w + r - 1  # padded column of the last image column
    for y in range(h):
        if ksize == 5:
            y0, y1, y3, y4 = max(y - 2, 0), max(y - 1, 0), min(y + 1, h - 1), min(y + 2, h - 1)
            # image column 2m -> padded 2m + 2 = E[m + 1], 2m + 1 -> padded 2m + 3 = O[m + 1]
            _sort5_columns(Se[y0], Se[y1], Se[y], Se[y3], Se[y4], E, 1)
            _sort5_columns(So[y0], So[y1], So[y], So[y3], So[y4], O, 1)
        else:
            y0, y2 = max(y - 1, 0), min(y + 1, h - 1)
            # image column 2m -> padded 2m + 1 = O[m], 2m + 1 -> padded 2m + 2 = E[m + 1]
            _sort3_columns(Se[y0], Se[y], Se[y2], O, 0)
            _sort3_columns(So[y0], So[y], So[y2], E, 1)
        for i in range(ksize):
            ei = E[i]
            oi = O[i]
            first = ei[r // 2] if r % 2 == 0 else oi[r // 2]
            end = ei[last // 2] if last % 2 == 0 else oi[last // 2]
            # padded columns p < r and p > last (E holds p = 2m, O holds p = 2m + 1)
            for m in range((r + 1) // 2):
                ei[m] = first
            for m in range(r // 2):
                oi[m] = first
            for m in range((last + 2) // 2, ei.shape[0]):
                ei[m] = end
            for m in range((last + 1) // 2, oi.shape[0]):
                oi[m] = end
        if ksize == 5:
            _median5_pairs(E, O, out[y])
        else:
            _median3_pairs(E, O, out[y])


@njit(cache=True, nogil=True)
def median_filter(src, ksize, col_net, med_net):
    """Median filter of float32 ``src`` in place (``ksize`` x ``ksize`` window, border replicated
    as ``cv2.medianBlur``) with the comparator networks ``col_net``, ``med_net`` of
    :func:`median_network`: each window column is sorted once per row, then a selection network
    runs. ksize 3 and 5 run the straight-line kernels of :func:`median_source` (pairs of outputs
    sharing their columns), other sizes ``med_net`` per pixel, applied to whole rows."""
    h, w = src.shape
    median_filter_into(src, ksize, col_net, med_net, np.empty(median_scratch_size(h, w, ksize), dtype=np.float32))


@njit(cache=True, nogil=True)
def median_filter_into(src, ksize, col_net, med_net, scratch):
    """:func:`median_filter` with a flat float32 ``scratch`` of at least
    :func:`median_scratch_size` elements (the solver passes one it reuses for every call)."""
    h, w = src.shape
    out, off = _plane(scratch, 0, h, 2 * _n_pairs(w))
    if ksize == 3 or ksize == 5:
        _median_pairs(src, ksize, out, scratch[off:])
    else:
        _median_rows_generic(src, ksize, col_net, med_net, out[:, :w])
    for y in range(h):  # row by row: a 2-D copy from the wider ``out`` ran element by element
        s = src[y]
        o = out[y]
        for x in range(w):
            s[x] = o[x]


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy", inline="always")
def _primal(gx, gy, ig, rc, a1, a2, d1, d2, l_t, theta):
    """Primal step at one pixel: new (u1, u2) and the squared change."""
    rho = rc + gx * a1 + gy * a2
    f = min(max(-rho * ig, -l_t), l_t)
    n1 = a1 + f * gx + theta * d1
    n2 = a2 + f * gy + theta * d2
    return n1, n2, (n1 - a1) * (n1 - a1) + (n2 - a2) * (n2 - a2)


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy", inline="always")
def _primal_row(y, ym, fy, I1wx, I1wy, igrad, rho_c, u1, u2, p11, p12, p21, p22, l_t, theta):
    """Primal step on row ``y`` (``ym`` the row above, ``fy`` 0 on the first row, else 1): u1[y],
    u2[y] updated in place; returns the row's sum of squared changes."""
    w = u1.shape[1]
    gxr = I1wx[y]
    gyr = I1wy[y]
    igr = igrad[y]
    rcr = rho_c[y]
    a1r = u1[y]
    a2r = u2[y]
    q11 = p11[y]
    q12 = p12[y]
    q21 = p21[y]
    q22 = p22[y]
    q12m = p12[ym]
    q22m = p22[ym]
    # x = 0 has no left neighbour in the divergence
    d1 = q11[0] + q12[0] - fy * q12m[0]
    d2 = q21[0] + q22[0] - fy * q22m[0]
    n1, n2, err = _primal(gxr[0], gyr[0], igr[0], rcr[0], a1r[0], a2r[0], d1, d2, l_t, theta)
    a1r[0] = n1
    a2r[0] = n2
    for x in range(1, w):
        d1 = q11[x] - q11[x - 1] + q12[x] - fy * q12m[x]
        d2 = q21[x] - q21[x - 1] + q22[x] - fy * q22m[x]
        n1, n2, e = _primal(gxr[x], gyr[x], igr[x], rcr[x], a1r[x], a2r[x], d1, d2, l_t, theta)
        err += e
        a1r[x] = n1
        a2r[x] = n2
    return err


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy", inline="always")
def _dual(u1x, u1y, u2x, u2y, q11, q12, q21, q22, x, taut):
    """Dual step at column x of one row of p, given the forward differences of u there."""
    one = np.float32(1.0)
    i1 = one / (one + taut * np.sqrt(u1x * u1x + u1y * u1y))
    i2 = one / (one + taut * np.sqrt(u2x * u2x + u2y * u2y))
    q11[x] = (q11[x] + taut * u1x) * i1
    q12[x] = (q12[x] + taut * u1y) * i1
    q21[x] = (q21[x] + taut * u2x) * i2
    q22[x] = (q22[x] + taut * u2y) * i2


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy", inline="always")
def _dual_row(r, rn, fr, u1, u2, p11, p12, p21, p22, taut):
    """Dual step on row ``r`` of p (``rn`` the row below, ``fr`` 0 on the last row, else 1)."""
    w = u1.shape[1]
    b1 = u1[r]
    b2 = u2[r]
    c1 = u1[rn]
    c2 = u2[rn]
    q11 = p11[r]
    q12 = p12[r]
    q21 = p21[r]
    q22 = p22[r]
    for x in range(w - 1):
        _dual(
            b1[x + 1] - b1[x],
            fr * (c1[x] - b1[x]),
            b2[x + 1] - b2[x],
            fr * (c2[x] - b2[x]),
            q11,
            q12,
            q21,
            q22,
            x,
            taut,
        )
    # the last column has no right neighbour: zero x-derivative
    x = w - 1
    _dual(np.float32(0.0), fr * (c1[x] - b1[x]), np.float32(0.0), fr * (c2[x] - b2[x]), q11, q12, q21, q22, x, taut)


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def tvl1_iteration(I1wx, I1wy, igrad, rho_c, u1, u2, p11, p12, p21, p22, l_t, theta, taut):
    """One primal-dual iteration at one warp; returns the sum over pixels of the squared flow change.

    v = u + thresholding step of the linearised data term, ``clip(-rho / |∇I1w|², ±λθ) ∇I1w``
    (``igrad`` holds ``1 / |∇I1w|²``); u <- v + θ div(p); p <- (p + τ/θ ∇u) / (1 + τ/θ |∇u|),
    with forward differences for ∇ (zero on the last column/row) and backward differences for
    div (its negative adjoint). Rows are processed in one sweep: the dual update of row y-1
    follows the primal update of row y (it needs the new u of rows y-1 and y), so each row of the
    ten planes is read from memory about once per iteration. Loops run on 1-D row views.

    The first and last rows are peeled off the sweep so that its body has no branch: written with
    ``if y > 0`` / ``if y < h`` inside the row loop (as before), the same row loops ran about 4x
    slower (6.4 against 1.5 ns per pixel at 256², measured), as if LLVM's vectorised loop versions
    were not taken.
    """
    h = u1.shape[0]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    err = _primal_row(0, 0, zero, I1wx, I1wy, igrad, rho_c, u1, u2, p11, p12, p21, p22, l_t, theta)
    for y in range(1, h):
        err += _primal_row(y, y - 1, one, I1wx, I1wy, igrad, rho_c, u1, u2, p11, p12, p21, p22, l_t, theta)
        _dual_row(y - 1, y, one, u1, u2, p11, p12, p21, p22, taut)
    _dual_row(h - 1, h - 1, zero, u1, u2, p11, p12, p21, p22, taut)
    return err


@njit(cache=True, nogil=True)
def level_work_size(h, w, median):
    """float32 elements of the scratch :func:`solve_level` needs at an (h, w) level."""
    hp, wp = h + PAD_LO + PAD_HI, w + PAD_LO + PAD_HI
    return 10 * h * w + 3 * hp * wp + 9 * w + (median_scratch_size(h, w, median) if median > 1 else 0)


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def solve_level(I0, I1, u1, u2, tau, lam, theta, warps, epsilon, inner, outer, median, col_net, med_net, work, base):
    """Refine the flow ``(u1, u2)`` in place at one pyramid level; returns iterations done.

    ``work``: flat float32 scratch of at least :func:`level_work_size` elements, ``base``: uint64
    scratch of at least W elements (both fully written before they are read)."""
    h, w = I0.shape
    hp, wp = h + PAD_LO + PAD_HI, w + PAD_LO + PAD_HI
    I1x, off = _plane(work, 0, h, w)
    I1y, off = _plane(work, off, h, w)
    centered_gradient(I1, I1x, I1y)
    P, off = _plane(work, off, hp, wp)
    Px, off = _plane(work, off, hp, wp)
    Py, off = _plane(work, off, hp, wp)
    pad_replicate(I1, P)
    pad_replicate(I1x, Px)
    pad_replicate(I1y, Py)
    wts, off = _plane(work, off, 9, w)
    I1wx, off = _plane(work, off, h, w)
    I1wy, off = _plane(work, off, h, w)
    igrad, off = _plane(work, off, h, w)
    rho_c, off = _plane(work, off, h, w)
    p11, off = _plane(work, off, h, w)
    p12, off = _plane(work, off, h, w)
    p21, off = _plane(work, off, h, w)
    p22, off = _plane(work, off, h, w)
    p11[:, :] = 0.0
    p12[:, :] = 0.0
    p21[:, :] = 0.0
    p22[:, :] = 0.0
    med_scratch = work[off:]
    l_t = np.float32(lam * theta)
    taut = np.float32(tau / theta)
    th = np.float32(theta)
    scaled_eps = epsilon * epsilon * h * w
    iters = 0
    for _ in range(warps):
        warp_linearise(P, Px, Py, I0, u1, u2, I1wx, I1wy, igrad, rho_c, wts, base[:w])
        err = np.inf
        n_outer = 0
        while err > scaled_eps and n_outer < outer:
            if median > 1:
                median_filter_into(u1, median, col_net, med_net, med_scratch)
                median_filter_into(u2, median, col_net, med_net, med_scratch)
            n_inner = 0
            while err > scaled_eps and n_inner < inner:
                err = tvl1_iteration(I1wx, I1wy, igrad, rho_c, u1, u2, p11, p12, p21, p22, l_t, th, taut)
                n_inner += 1
                iters += 1
            n_outer += 1
    return iters


@njit(cache=True, nogil=True)
def pair_work_size(hs, ws, median):
    """float32 elements of the workspace :func:`tvl1_pair_into` needs for these pyramid levels."""
    npix = 0
    for s in range(hs.shape[0]):
        npix += hs[s] * ws[s]
    return 2 * npix + 4 * hs[0] * ws[0] + level_work_size(hs[0], ws[0], median)


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def tvl1_pair(prev, nxt, hs, ws, tau, lam, theta, warps, epsilon, inner, outer, median, col_net, med_net, out):
    """Dual TV-L1 flow from uint8 ``prev`` to ``nxt`` into ``out`` (2, H, W) float32.

    ``hs``/``ws`` are the pyramid level sizes, finest first (see ``pyramid_sizes``); ``col_net`` and
    ``med_net`` the comparator networks of ``median_network(median)`` (unused when ``median <= 1``).
    Returns the total number of primal-dual iterations. Allocates the workspace of
    :func:`tvl1_pair_into`; callers running many pairs keep one and call that instead.
    """
    work = np.empty(pair_work_size(hs, ws, median), dtype=np.float32)
    base = np.empty(ws[0], dtype=np.uint64)
    return tvl1_pair_into(
        prev, nxt, hs, ws, tau, lam, theta, warps, epsilon, inner, outer, median, col_net, med_net, out, work, base
    )


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def tvl1_pair_into(
    prev, nxt, hs, ws, tau, lam, theta, warps, epsilon, inner, outer, median, col_net, med_net, out, work, base
):
    """:func:`tvl1_pair` in a given workspace: ``work`` flat float32 of at least
    :func:`pair_work_size` elements, ``base`` uint64 of at least W (their contents do not matter:
    everything is written before it is read, so the result does not depend on them).

    Every plane is a view of ``work``: the pyramid, the flows, the level planes (reused level after
    level) and the median filter's scratch (reused by every call). Allocated plane by plane, planes
    of 128 KiB and more came from mmap and went back to the system at every free; even one
    allocation per pair can cost up to 4 ms of page faults at 256² (measured in a process whose
    allocator had seen other work), where the whole pair takes 8.5.
    """
    n = hs.shape[0]
    h0, w0 = hs[0], ws[0]
    I0s = []
    I1s = []
    off = 0
    for s in range(n):
        a, off = _plane(work, off, hs[s], ws[s])
        b, off = _plane(work, off, hs[s], ws[s])
        I0s.append(a)
        I1s.append(b)
    for y in range(h0):
        for x in range(w0):
            I0s[0][y, x] = prev[y, x]
            I1s[0][y, x] = nxt[y, x]
    for s in range(1, n):
        resize_into(I0s[s - 1], I0s[s], np.float32(1.0))
        resize_into(I1s[s - 1], I1s[s], np.float32(1.0))
    flow = work[off : off + 4 * h0 * w0]
    level_work = work[off + 4 * h0 * w0 :]
    hn, wn = hs[n - 1], ws[n - 1]
    u1, _ = _plane(flow, 0, hn, wn)
    u2, _ = _plane(flow, h0 * w0, hn, wn)
    u1[:, :] = 0.0
    u2[:, :] = 0.0
    iters = 0
    side = 0  # the flow of the current level is in flow[2 side h0 w0:], the next one goes to the other half
    for s in range(n - 1, -1, -1):
        iters += solve_level(
            I0s[s],
            I1s[s],
            u1,
            u2,
            tau,
            lam,
            theta,
            warps,
            epsilon,
            inner,
            outer,
            median,
            col_net,
            med_net,
            level_work,
            base,
        )
        if s == 0:
            break
        side = 1 - side
        n1, _ = _plane(flow, 2 * side * h0 * w0, hs[s - 1], ws[s - 1])
        n2, _ = _plane(flow, (2 * side + 1) * h0 * w0, hs[s - 1], ws[s - 1])
        resize_into(u1, n1, np.float32(ws[s - 1] / ws[s]))
        resize_into(u2, n2, np.float32(hs[s - 1] / hs[s]))
        u1 = n1
        u2 = n2
    out[0] = u1
    out[1] = u2
    return iters


@njit(cache=True, nogil=True, parallel=True)
def tvl1_batch(
    prev, nxt, hs, ws, tau, lam, theta, warps, epsilon, inner, outer, median, col_net, med_net, out, workspaces=0
):
    """:func:`tvl1_pair` on every pair of ``prev``/``nxt`` (B, H, W) into ``out`` (B, 2, H, W),
    pairs spread over the Numba threads. Returns the iterations per pair (B,).

    ``workspaces``: how many workspaces to allocate (pass the number of Numba threads; 0 = one per
    pair). The pairs are dealt round-robin to that many parallel tasks, each reusing its workspace
    (``numba.get_num_threads()`` cannot be read here: it would keep the function out of the cache).
    """
    b = prev.shape[0]
    iters = np.zeros(b, dtype=np.int64)
    nt = b if workspaces <= 0 else min(workspaces, b)
    size = pair_work_size(hs, ws, median)
    for t in prange(nt):
        work = np.empty(size, dtype=np.float32)
        base = np.empty(ws[0], dtype=np.uint64)
        for i in range(t, b, nt):
            iters[i] = tvl1_pair_into(
                prev[i],
                nxt[i],
                hs,
                ws,
                tau,
                lam,
                theta,
                warps,
                epsilon,
                inner,
                outer,
                median,
                col_net,
                med_net,
                out[i],
                work,
                base,
            )
    return iters


def pyramid_sizes(h: int, w: int, nscales: int, scale_step: float):
    """Level sizes (hs, ws), finest first: each level ``round(scaleStep x)`` the one below, stopping
    before a level under 16 pixels on a side (as OpenCV)."""
    hs, ws = [int(h)], [int(w)]
    for _ in range(1, int(nscales)):
        nh, nw = int(round(hs[-1] * scale_step)), int(round(ws[-1] * scale_step))
        if nh < 16 or nw < 16:
            break
        hs.append(nh)
        ws.append(nw)
    return np.asarray(hs, dtype=np.int64), np.asarray(ws, dtype=np.int64)
