"""One autograd node for a masked, routed module: the hot path of every masked forward.

Computes, for flat token rows (N, ·) and the routed rows R (unique indices, or every row):

    y[R] = (x[R]·V ⊙ (m[R] − m_Δ[R]))·U + m_Δ[R]·(o[R] − b) + b,   y[rest] = o[rest]

exactly the formula of `ComponentModel._combine` (see component_model.py), but with a hand-written
backward: the routed rows are gathered once and scattered back with `index_copy` into zeros (the
indices are unique), where autograd's generic `index_select` backward uses a scatter-add that is
two orders of magnitude slower on CPU; the few elementwise products are saved once and reused; and
gradients nobody asked for (U and V in the PGD ascent pass, masks of a no-grad pass) are skipped.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _rows(t: Tensor, idx: Tensor | None) -> Tensor:
    return t if idx is None else t.index_select(0, idx)


def _scatter(rows: Tensor, idx: Tensor | None, n: int) -> Tensor:
    if idx is None:
        return rows
    return rows.new_zeros((n, *rows.shape[1:])).index_copy_(0, idx, rows)


class _MaskedComponents(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, out, m, m_delta, V, U, bias, idx):
        """x (N, d_in), out (N, d_out), m (N, C), m_delta (N,) or None, idx (R,) unique or None (all rows)."""
        n = out.shape[0]
        xs = _rows(x, idx)
        a = xs @ V.to(xs.dtype)
        ms = _rows(m, idx)
        if m_delta is None:
            w, mds, base = ms, None, None
        else:
            mds = _rows(m_delta, idx).unsqueeze(-1)
            w = ms - mds
        y = (a * w) @ U.to(xs.dtype)
        if m_delta is not None:
            os = _rows(out, idx)
            base = os if bias is None else os - bias
            y = y + mds * base
        if bias is not None:
            y = y + bias
        y = y.to(out.dtype)
        result = y if idx is None else out.index_copy(0, idx, y)
        ctx.save_for_backward(xs, a, w, mds, base, V, U, idx)
        ctx.n = n
        ctx.has_delta = m_delta is not None
        return result

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad):
        xs, a, w, mds, base, V, U, idx = ctx.saved_tensors
        need_x, need_out, need_m, need_md, need_V, need_U = ctx.needs_input_grad[:6]
        n = ctx.n
        gys = _rows(grad, idx)
        g_x = g_out = g_m = g_md = g_V = g_U = None
        if need_out:
            if not ctx.has_delta:
                g_out = None if idx is None else grad.index_fill(0, idx, 0)
            else:
                g_out = (gys * mds).to(grad.dtype)
                if idx is not None:
                    g_out = grad.index_copy(0, idx, g_out)
        gys_c = gys.to(a.dtype)
        if need_U:
            g_U = (a * w).to(a.dtype).T @ gys_c
        if need_x or need_V or need_m or need_md:
            gh = (gys_c @ U.to(a.dtype).T).to(w.dtype)  # the mask products' dtype, as autograd would give
            if need_m or need_md:
                gw = gh * a
                if need_m:
                    g_m = _scatter(gw, idx, n)
                if need_md:
                    g_md = _scatter((gys * base).sum(-1) - gw.sum(-1), idx, n)
            if need_x or need_V:
                ga = (gh * w).to(a.dtype)
                if need_V:
                    g_V = xs.T @ ga
                if need_x:
                    g_x = _scatter(ga @ V.to(a.dtype).T, idx, n)
        return g_x, g_out, g_m, g_md, g_V, g_U, None, None


def masked_components(x: Tensor, out: Tensor, m: Tensor, m_delta: Tensor | None, V: Tensor, U: Tensor, bias: Tensor | None, idx: Tensor | None) -> Tensor:
    """Flat rows: x (N, d_in), out (N, d_out), m (N, C), m_delta (N,) or None; idx: unique routed rows or None (all)."""
    return _MaskedComponents.apply(x, out, m, m_delta, V, U, bias, idx)


def _ci_forward(z: Tensor, p: Tensor, alpha: float, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(σ_lower(z), Σ_tokens (σ_upper(z) + ε)^p, d(σ_upper(z) + ε)^p/dz); z is (N, C), p a 0-d float32 tensor."""
    g = z.clamp(0.0, 1.0)
    zf = z.float()
    # σ_upper = clamp(z, 0, 1) + α·relu(z − 1): exactly 1 + α(z − 1) above 1, z on [0, 1], 0 below.
    t = g.float() + alpha * (zf - 1).clamp(min=0) + eps
    tp = t.pow(p)
    s = tp.sum(0)
    # d(t^p)/dz = p·t^(p−1)·σ_upper'(z), σ_upper' = 0 below 0, 1 on [0, 1], α above 1 (plain autograd's slopes).
    slope = torch.where(zf > 1, alpha, (zf >= 0).to(zf.dtype))
    return g, s, tp / t * slope * p


def _ci_backward(z: Tensor, factor: Tensor, grad_g: Tensor, grad_s: Tensor, alpha: float) -> Tensor:
    # lower-leaky: grad on (0, 1], 0 above 1, α·grad below 0 only where grad < 0 (it would raise a dead CI).
    lower = torch.where(z <= 0, grad_g.clamp(max=0) * alpha, grad_g * (z <= 1))
    return lower.to(factor.dtype) + factor * grad_s.to(factor.dtype)


_compiled: dict[str, object] = {}


def _impl(name: str, fn, compiled: bool):
    """fn itself, or its torch.compile'd version (one fused loop; static shapes, compiled on first use)."""
    if not compiled:
        return fn
    if name not in _compiled:
        _compiled[name] = torch.compile(fn, dynamic=False)
    return _compiled[name]


class _CiActivations(torch.autograd.Function):
    """z → (g = σ_lower(z), S = Σ_tokens (σ_upper(z) + ε)^p): both sigmoids and the p-norm sum of importance
    minimality in one node, whose backward is one short elementwise pass."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, z, p, alpha, eps, compiled):
        flat = z.reshape(-1, z.shape[-1])
        g, s, factor = _impl("ci_forward", _ci_forward, compiled)(flat, torch.tensor(p, dtype=torch.float32, device=z.device), alpha, eps)
        ctx.save_for_backward(flat, factor)
        ctx.alpha = alpha
        ctx.shape = z.shape
        ctx.compiled = compiled
        return g.view(z.shape), s

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad_g, grad_s):
        z, factor = ctx.saved_tensors
        if grad_g is None:
            grad_g = torch.zeros_like(z)
        if grad_s is None:
            grad_s = factor.new_zeros(factor.shape[-1])
        grad = _impl("ci_backward", _ci_backward, ctx.compiled)(z, factor, grad_g.reshape(z.shape), grad_s, ctx.alpha)
        return grad.to(z.dtype).view(ctx.shape), None, None, None, None


def ci_activations(z: Tensor, p: float, alpha: float, eps: float, compiled: bool = False) -> tuple[Tensor, Tensor]:
    """(σ_lower(z), Σ over all leading dims of (σ_upper(z) + ε)^p in float32, shape (C,)).

    `compiled`: run the elementwise chain through torch.compile (same math; the first call compiles)."""
    return _CiActivations.apply(z, p, alpha, eps, compiled)
