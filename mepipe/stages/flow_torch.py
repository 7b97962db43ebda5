"""The ``torch`` flow engine: dual TV-L1 on batched tensors ``(B, 1, H, W)``, CPU or CUDA.

The same scheme, parameters and discretisation as the ``numba`` engine (``mepipe.kernels.tvl1``):
pyramid by bilinear resampling with half-pixel centres (levels under 16 px dropped), bicubic
warps (Keys a = -0.75, border replicated: ``grid_sample(mode="bicubic", padding_mode="border")``),
median filtering of the flow before each outer iteration, and the per-pair stopping rule (mean
squared flow change below ``epsilon²``). Pairs of a batch that have converged are frozen while the
others keep iterating, so each pair gets exactly the iterations it would get alone.

The device is explicit: ``device="cpu" | "cuda" | "auto"`` (``auto`` = CUDA when available); the
choice is logged.
"""

from __future__ import annotations

import logging

import numpy as np

from .flow import FlowEngine, register_engine
from .flow_numba import check_numba_params

log = logging.getLogger(__name__)


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of 1-D bilinear resampling with half-pixel centres (the numba kernel's
    ``resize_bilinear`` along one axis)."""
    m = np.zeros((n_out, n_in), dtype=np.float64)
    s = n_in / n_out
    for i in range(n_out):
        f = max((i + 0.5) * s - 0.5, 0.0)
        i0 = int(f)
        if i0 >= n_in - 1:
            m[i, n_in - 1] = 1.0
        else:
            t = np.float32(f - i0)
            m[i, i0] += 1.0 - t
            m[i, i0 + 1] += t
    return m.astype(np.float32)


class TorchTVL1(FlowEngine):
    """Dual TV-L1 flow with torch on a batch of pairs at once."""

    name = "torch"
    OPTIONS = ("device",)

    def __init__(self, **params):
        super().__init__(**params)
        self.device_request = self.options.get("device") or "auto"
        self._device = None

    def check(self, params: dict) -> None:
        check_numba_params(params, self.name)

    @property
    def device(self):
        if self._device is None:
            import torch

            from ..device import resolve_device

            self._device = torch.device(resolve_device(self.device_request, purpose="torch flow engine"))
        return self._device

    # -- numpy in, numpy out -------------------------------------------------------------------
    def _compute(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        return self._compute_batch(prev[None], nxt[None])[0]

    def _compute_batch(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        """The whole batch at once on the engine's device."""
        import torch

        dev = self.device
        a = torch.from_numpy(prev).to(dev)[:, None].float()
        b = torch.from_numpy(nxt).to(dev)[:, None].float()
        with torch.no_grad():
            flow = self.compute_tensor(a, b)
        return flow.cpu().numpy()

    # -- tensors -------------------------------------------------------------------------------
    def compute_tensor(self, I0, I1):
        """Flow ``(B, 2, H, W)`` for float tensors ``(B, 1, H, W)`` in grey levels 0..255 on one device."""
        import torch

        from mepipe.kernels.tvl1 import pyramid_sizes

        if I0.ndim != 4 or I0.shape[1] != 1 or I0.shape != I1.shape:
            raise ValueError(
                f"compute_tensor needs two (B, 1, H, W) tensors of one shape, got {tuple(I0.shape)} and {tuple(I1.shape)}"
            )
        p = self.params
        bsz, _, h, w = I0.shape
        hs, ws = pyramid_sizes(h, w, int(p["nscales"]), float(p["scaleStep"]))
        I0s, I1s = [I0[:, 0].float()], [I1[:, 0].float()]
        for s in range(1, len(hs)):
            I0s.append(self._resize(I0s[-1], int(hs[s]), int(ws[s])))
            I1s.append(self._resize(I1s[-1], int(hs[s]), int(ws[s])))
        n = len(hs)
        u1 = torch.zeros((bsz, int(hs[-1]), int(ws[-1])), device=I0.device)
        u2 = torch.zeros_like(u1)
        iters = torch.zeros(bsz, dtype=torch.int64, device=I0.device)
        for s in range(n - 1, -1, -1):
            u1, u2 = self._solve_level(I0s[s], I1s[s], u1, u2, iters)
            if s == 0:
                break
            fx, fy = float(np.float32(ws[s - 1] / ws[s])), float(np.float32(hs[s - 1] / hs[s]))
            u1 = self._resize(u1, int(hs[s - 1]), int(ws[s - 1])) * fx
            u2 = self._resize(u2, int(hs[s - 1]), int(ws[s - 1])) * fy
        self.last_iterations = iters.cpu().numpy()
        return torch.stack([u1, u2], dim=1)

    @staticmethod
    def _resize(x, oh: int, ow: int):
        import torch

        _, ih, iw = x.shape
        ry = torch.from_numpy(_resize_matrix(ih, oh)).to(x.device)
        rx = torch.from_numpy(_resize_matrix(iw, ow)).to(x.device)
        return ry @ x @ rx.T

    @staticmethod
    def _gradient(I):
        """Half central differences with the border replicated, as ``centered_gradient``."""
        import torch.nn.functional as F

        pad = F.pad(I[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
        return 0.5 * (pad[:, 1:-1, 2:] - pad[:, 1:-1, :-2]), 0.5 * (pad[:, 2:, 1:-1] - pad[:, :-2, 1:-1])

    @staticmethod
    def _warp(stack, u1, u2):
        """Sample ``stack`` (B, C, H, W) at ``(x + u1, y + u2)``: bicubic, border replicated."""
        import torch
        import torch.nn.functional as F

        _, _, h, w = stack.shape
        ys = torch.arange(h, device=u1.device, dtype=u1.dtype)[:, None]
        xs = torch.arange(w, device=u1.device, dtype=u1.dtype)[None, :]
        gx = (xs + u1) * (2.0 / max(w - 1, 1)) - 1.0
        gy = (ys + u2) * (2.0 / max(h - 1, 1)) - 1.0
        grid = torch.stack([gx, gy], dim=-1)
        return F.grid_sample(stack, grid, mode="bicubic", padding_mode="border", align_corners=True)

    def _median(self, u):
        import torch.nn.functional as F

        k = int(self.params["medianFiltering"])
        r = k // 2
        b, h, w = u.shape
        pad = F.pad(u[:, None], (r, r, r, r), mode="replicate")
        cols = F.unfold(pad, kernel_size=k)  # (B, k*k, H*W)
        return cols.median(dim=1).values.view(b, h, w)

    def _solve_level(self, I0, I1, u1, u2, iters):
        import torch
        import torch.nn.functional as F

        p = self.params
        bsz, h, w = I0.shape
        l_t = float(np.float32(p["lambda"] * p["theta"]))
        taut = float(np.float32(p["tau"] / p["theta"]))
        theta = float(np.float32(p["theta"]))
        scaled_eps = float(p["epsilon"]) ** 2 * h * w
        inner, outer, median = int(p["innerIterations"]), int(p["outerIterations"]), int(p["medianFiltering"])
        I1x, I1y = self._gradient(I1)
        stack = torch.stack([I1, I1x, I1y], dim=1)
        p11, p12, p21, p22 = (torch.zeros_like(u1) for _ in range(4))
        for _ in range(int(p["warps"])):
            warped = self._warp(stack, u1, u2)
            I1w, gx, gy = warped[:, 0], warped[:, 1], warped[:, 2]
            igrad = 1.0 / torch.clamp(gx * gx + gy * gy, min=1e-30)
            rho_c = I1w - gx * u1 - gy * u2 - I0
            active = torch.ones(bsz, dtype=torch.bool, device=u1.device)
            for _ in range(outer):
                if not bool(active.any()):
                    break
                act = active[:, None, None]
                if median > 1:
                    u1 = torch.where(act, self._median(u1), u1)
                    u2 = torch.where(act, self._median(u2), u2)
                for _ in range(inner):
                    if not bool(active.any()):
                        break
                    act = active[:, None, None]
                    rho = rho_c + gx * u1 + gy * u2
                    f = torch.clamp(-rho * igrad, -l_t, l_t)
                    div1 = p11 - F.pad(p11[:, :, :-1], (1, 0)) + p12 - F.pad(p12[:, :-1, :], (0, 0, 1, 0))
                    div2 = p21 - F.pad(p21[:, :, :-1], (1, 0)) + p22 - F.pad(p22[:, :-1, :], (0, 0, 1, 0))
                    n1 = u1 + f * gx + theta * div1
                    n2 = u2 + f * gy + theta * div2
                    err = ((n1 - u1) ** 2 + (n2 - u2) ** 2).sum(dim=(1, 2))
                    u1 = torch.where(act, n1, u1)
                    u2 = torch.where(act, n2, u2)
                    u1x = F.pad(u1[:, :, 1:] - u1[:, :, :-1], (0, 1))
                    u1y = F.pad(u1[:, 1:, :] - u1[:, :-1, :], (0, 0, 0, 1))
                    u2x = F.pad(u2[:, :, 1:] - u2[:, :, :-1], (0, 1))
                    u2y = F.pad(u2[:, 1:, :] - u2[:, :-1, :], (0, 0, 0, 1))
                    i1 = 1.0 / (1.0 + taut * torch.sqrt(u1x * u1x + u1y * u1y))
                    i2 = 1.0 / (1.0 + taut * torch.sqrt(u2x * u2x + u2y * u2y))
                    p11 = torch.where(act, (p11 + taut * u1x) * i1, p11)
                    p12 = torch.where(act, (p12 + taut * u1y) * i1, p12)
                    p21 = torch.where(act, (p21 + taut * u2x) * i2, p21)
                    p22 = torch.where(act, (p22 + taut * u2y) * i2, p22)
                    iters += active.long()
                    active = active & (err > scaled_eps)
        return u1, u2


register_engine("torch", TorchTVL1)
