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
threads (``prange`` over pairs). They release the GIL (``nogil``), so Python threads (``--backend
threading``) can run them at the same time.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit, prange

_FM = True  # fastmath: lets LLVM reorder float reductions (results differ by rounding only)
# error_model="numpy" below: no ZeroDivisionError branch in divisions, so the loops vectorise


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def resize_bilinear(src, oh, ow):
    """Bilinear resize of a float32 (H, W) image to (oh, ow), half-pixel centres (``cv2.resize``
    INTER_LINEAR mapping), source coordinates clamped to the image."""
    ih, iw = src.shape
    out = np.empty((oh, ow), dtype=np.float32)
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
            out[y, x] = a + ty * (b - a)
    return out


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def centered_gradient(src, dx, dy):
    """Half central differences (``0.5 (I(x+1) - I(x-1))``) with the border replicated."""
    h, w = src.shape
    for y in range(h):
        ym = y - 1 if y > 0 else 0
        yp = y + 1 if y < h - 1 else h - 1
        for x in range(w):
            xm = x - 1 if x > 0 else 0
            xp = x + 1 if x < w - 1 else w - 1
            dx[y, x] = 0.5 * (src[y, xp] - src[y, xm])
            dy[y, x] = 0.5 * (src[yp, x] - src[ym, x])


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy", inline="always")
def _cubic_weights(t):
    a = np.float32(-0.75)
    t1 = t + np.float32(1.0)
    w0 = ((a * t1 - 5.0 * a) * t1 + 8.0 * a) * t1 - 4.0 * a
    w1 = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0
    s = np.float32(1.0) - t
    w2 = ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0
    w3 = np.float32(1.0) - w0 - w1 - w2
    return w0, w1, w2, w3


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def warp_bicubic3(a, b, c, u1, u2, oa, ob, oc):
    """Sample images ``a``, ``b``, ``c`` at ``(x + u1, y + u2)`` (bicubic, Keys a = -0.75, each tap
    clamped to the image) into ``oa``, ``ob``, ``oc``."""
    h, w = a.shape
    xi = np.empty(4, dtype=np.int64)
    yi = np.empty(4, dtype=np.int64)
    for y in range(h):
        for x in range(w):
            fx = np.float32(x) + u1[y, x]
            fy = np.float32(y) + u2[y, x]
            # keep far-away coordinates finite for the int conversion; taps are clamped below
            fx = min(max(fx, np.float32(-2.0)), np.float32(w + 1.0))
            fy = min(max(fy, np.float32(-2.0)), np.float32(h + 1.0))
            ix = int(np.floor(fx))
            iy = int(np.floor(fy))
            wx0, wx1, wx2, wx3 = _cubic_weights(np.float32(fx - ix))
            wy0, wy1, wy2, wy3 = _cubic_weights(np.float32(fy - iy))
            if ix >= 1 and ix + 2 < w and iy >= 1 and iy + 2 < h:
                # interior: all 16 taps inside the image
                sa = np.float32(0.0)
                sb = np.float32(0.0)
                sc = np.float32(0.0)
                for k in range(4):
                    wy = wy0 if k == 0 else (wy1 if k == 1 else (wy2 if k == 2 else wy3))
                    ra = a[iy - 1 + k]
                    rb = b[iy - 1 + k]
                    rc = c[iy - 1 + k]
                    sa += wy * (wx0 * ra[ix - 1] + wx1 * ra[ix] + wx2 * ra[ix + 1] + wx3 * ra[ix + 2])
                    sb += wy * (wx0 * rb[ix - 1] + wx1 * rb[ix] + wx2 * rb[ix + 1] + wx3 * rb[ix + 2])
                    sc += wy * (wx0 * rc[ix - 1] + wx1 * rc[ix] + wx2 * rc[ix + 1] + wx3 * rc[ix + 2])
                oa[y, x] = sa
                ob[y, x] = sb
                oc[y, x] = sc
                continue
            for k in range(4):
                xx = ix - 1 + k
                xi[k] = 0 if xx < 0 else (w - 1 if xx > w - 1 else xx)
                yy = iy - 1 + k
                yi[k] = 0 if yy < 0 else (h - 1 if yy > h - 1 else yy)
            sa = np.float32(0.0)
            sb = np.float32(0.0)
            sc = np.float32(0.0)
            for k in range(4):
                wy = wy0 if k == 0 else (wy1 if k == 1 else (wy2 if k == 2 else wy3))
                r = yi[k]
                ra = wx0 * a[r, xi[0]] + wx1 * a[r, xi[1]] + wx2 * a[r, xi[2]] + wx3 * a[r, xi[3]]
                rb = wx0 * b[r, xi[0]] + wx1 * b[r, xi[1]] + wx2 * b[r, xi[2]] + wx3 * b[r, xi[3]]
                rc = wx0 * c[r, xi[0]] + wx1 * c[r, xi[1]] + wx2 * c[r, xi[2]] + wx3 * c[r, xi[3]]
                sa += wy * ra
                sb += wy * rb
                sc += wy * rc
            oa[y, x] = sa
            ob[y, x] = sb
            oc[y, x] = sc


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


@lru_cache(maxsize=None)
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
            known[c + a, c + a:c + k] = True
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


@njit(cache=True, nogil=True)
def median_filter(src, ksize, col_net, med_net):
    """Median filter of float32 ``src`` in place (``ksize`` x ``ksize`` window, border replicated
    as ``cv2.medianBlur``), using the comparator networks of :func:`median_network` on whole rows."""
    h, w = src.shape
    r = ksize // 2
    n = ksize * ksize
    wp = w + 2 * r
    cols = np.empty((ksize, wp), dtype=np.float32)
    wires = np.empty((n, w), dtype=np.float32)
    out = np.empty((h, w), dtype=np.float32)
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
    src[:, :] = out


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
        _dual(b1[x + 1] - b1[x], fr * (c1[x] - b1[x]), b2[x + 1] - b2[x], fr * (c2[x] - b2[x]),
              q11, q12, q21, q22, x, taut)
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


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def solve_level(I0, I1, u1, u2, tau, lam, theta, warps, epsilon, inner, outer, median, col_net, med_net):
    """Refine the flow ``(u1, u2)`` in place at one pyramid level; returns iterations done."""
    h, w = I0.shape
    I1x = np.empty((h, w), dtype=np.float32)
    I1y = np.empty((h, w), dtype=np.float32)
    centered_gradient(I1, I1x, I1y)
    I1w = np.empty((h, w), dtype=np.float32)
    I1wx = np.empty((h, w), dtype=np.float32)
    I1wy = np.empty((h, w), dtype=np.float32)
    igrad = np.empty((h, w), dtype=np.float32)
    rho_c = np.empty((h, w), dtype=np.float32)
    p11 = np.zeros((h, w), dtype=np.float32)
    p12 = np.zeros((h, w), dtype=np.float32)
    p21 = np.zeros((h, w), dtype=np.float32)
    p22 = np.zeros((h, w), dtype=np.float32)
    l_t = np.float32(lam * theta)
    taut = np.float32(tau / theta)
    th = np.float32(theta)
    scaled_eps = epsilon * epsilon * h * w
    iters = 0
    for _ in range(warps):
        warp_bicubic3(I1, I1x, I1y, u1, u2, I1w, I1wx, I1wy)
        for y in range(h):
            for x in range(w):
                gx = I1wx[y, x]
                gy = I1wy[y, x]
                # 1/|∇I|², kept finite where the image is flat (the step then saturates at ±λθ
                # times a vanishing gradient, i.e. does nothing)
                igrad[y, x] = np.float32(1.0) / max(gx * gx + gy * gy, np.float32(1e-30))
                rho_c[y, x] = I1w[y, x] - gx * u1[y, x] - gy * u2[y, x] - I0[y, x]
        err = np.inf
        n_outer = 0
        while err > scaled_eps and n_outer < outer:
            if median > 1:
                median_filter(u1, median, col_net, med_net)
                median_filter(u2, median, col_net, med_net)
            n_inner = 0
            while err > scaled_eps and n_inner < inner:
                err = tvl1_iteration(I1wx, I1wy, igrad, rho_c, u1, u2, p11, p12, p21, p22, l_t, th, taut)
                n_inner += 1
                iters += 1
            n_outer += 1
    return iters


@njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def tvl1_pair(prev, nxt, hs, ws, tau, lam, theta, warps, epsilon, inner, outer, median, col_net, med_net,
              out):
    """Dual TV-L1 flow from uint8 ``prev`` to ``nxt`` into ``out`` (2, H, W) float32.

    ``hs``/``ws`` are the pyramid level sizes, finest first (see ``pyramid_sizes``); ``col_net`` and
    ``med_net`` the comparator networks of ``median_network(median)`` (unused when ``median <= 1``).
    Returns the total number of primal-dual iterations.
    """
    n = hs.shape[0]
    I0s = [prev.astype(np.float32)]
    I1s = [nxt.astype(np.float32)]
    for s in range(1, n):
        I0s.append(resize_bilinear(I0s[s - 1], hs[s], ws[s]))
        I1s.append(resize_bilinear(I1s[s - 1], hs[s], ws[s]))
    u1 = np.zeros((hs[n - 1], ws[n - 1]), dtype=np.float32)
    u2 = np.zeros((hs[n - 1], ws[n - 1]), dtype=np.float32)
    iters = 0
    for s in range(n - 1, -1, -1):
        iters += solve_level(I0s[s], I1s[s], u1, u2, tau, lam, theta, warps, epsilon, inner, outer, median,
                             col_net, med_net)
        if s == 0:
            break
        fx = np.float32(ws[s - 1] / ws[s])
        fy = np.float32(hs[s - 1] / hs[s])
        u1 = resize_bilinear(u1, hs[s - 1], ws[s - 1]) * fx
        u2 = resize_bilinear(u2, hs[s - 1], ws[s - 1]) * fy
    out[0] = u1
    out[1] = u2
    return iters


@njit(cache=True, nogil=True, parallel=True)
def tvl1_batch(prev, nxt, hs, ws, tau, lam, theta, warps, epsilon, inner, outer, median, col_net, med_net,
               out):
    """:func:`tvl1_pair` on every pair of ``prev``/``nxt`` (B, H, W) into ``out`` (B, 2, H, W),
    pairs spread over the Numba threads. Returns the iterations per pair (B,)."""
    b = prev.shape[0]
    iters = np.zeros(b, dtype=np.int64)
    for i in prange(b):
        iters[i] = tvl1_pair(prev[i], nxt[i], hs, ws, tau, lam, theta, warps, epsilon, inner, outer,
                             median, col_net, med_net, out[i])
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
