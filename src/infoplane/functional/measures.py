"""One information-plane measurement of many layers at once, using the structure of the problem.

For a batch with input Gram ``K_X``, label ids ``y`` and layer Grams ``K_1..K_L`` this computes,
for every layer, ``S(T)``, ``I(X; T) = S(X) + S(T) - S(X, T)`` and
``I(T; Y) = S(T) + S(Y) - S(T, Y)`` with as little work as the maths allows:

* all eigenvalue problems of the step go to one batched ``eigvalsh`` call;
* the label Gram is a class indicator, so ``S(Y)`` is the plug-in Rényi entropy of the class
  counts (a closed form), and ``K_T o K_Y`` is block diagonal after sorting the samples by class:
  its spectrum is the union of the per-class blocks' spectra (sum of ``n_k^3`` work instead of
  ``N^3``). Blocks are zero-padded to one size; the padding adds zero eigenvalues, which add
  nothing to any Rényi entropy;
* ``alpha = 2`` needs no eigenvalues at all: ``S_2(A) = -log2 ||A||_F^2``.

These are private building blocks of :class:`infoplane.InformationPlane` (inputs are trusted).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from infoplane.functional.spectrum import entropy_from_eigenvalues, entropy_of_normalized


def _class_layout(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Host-side class layout of the labels (small: numpy, no per-operation dispatch cost).

    Returns ``(index, valid, counts)``: ``index[k, i]`` (``[K, n_max]``) is the sample index of
    the i-th member of the k-th present class (0 where padded), ``valid[k, i]`` marks real
    members, and ``counts`` are the class sizes. Reads the labels on the host once.
    """
    y_host = y.detach().to("cpu", torch.int64).numpy()
    _, counts = np.unique(y_host, return_counts=True)
    order = np.argsort(y_host, kind="stable")
    starts = np.cumsum(counts) - counts
    pos = np.arange(int(counts.max()))
    valid = pos[None, :] < counts[:, None]
    index = np.where(valid, order[np.minimum(starts[:, None] + pos, len(order) - 1)], 0)
    return torch.from_numpy(index), torch.from_numpy(valid), counts


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small host tensor to ``device`` without waiting for the device's queue."""
    if t.device == device:
        return t
    if device.type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)


def _scaled(entries: list[tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor:
    """``[a / N or a o b / N for (a, b) in entries]`` (each ``[m, N, N]``, ``a`` broadcast to
    ``b``'s ``m``) written into one buffer: no temporary copy of the batch."""
    n = entries[0][0].shape[-1]
    sizes = [(a if b is None else b).shape[0] for a, b in entries]
    dtype = entries[0][0].dtype
    for t in (t for pair in entries for t in pair if t is not None):
        dtype = torch.promote_types(dtype, t.dtype)
    out = torch.empty((sum(sizes), n, n), dtype=dtype, device=entries[0][0].device)
    at = 0
    for (a, b), m in zip(entries, sizes, strict=True):
        if b is None:
            torch.div(a, n, out=out[at : at + m])
        else:
            torch.mul(a, b, out=out[at : at + m]).div_(n)
        at += m
    return out


def _class_blocks(k_t: torch.Tensor, index: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The within-class blocks ``[L, K, n_max, n_max]`` of unit-diagonal layer Grams ``[L, N, N]``
    under the class layout ``index`` of :func:`_class_layout` (or that layout with the samples
    permuted, ``perm[index]``: the blocks of the permuted Grams), zero-padded and divided by N.

    ``A_T o A_Y / tr = (K_T o K_Y) / N`` for an indicator label kernel: its non-zero entries are
    these blocks, so its spectrum is the union of theirs (padding adds zero eigenvalues).
    """
    n = k_t.shape[-1]
    blocks = k_t[:, index[:, :, None], index[:, None, :]]  # a fresh tensor: scaled in place
    return blocks.mul_((valid[:, :, None] & valid[:, None, :]).to(k_t.dtype)).div_(n)


def _indicator_entropies(
    matrices: torch.Tensor, blocks: torch.Tensor, p: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(S of each matrix [R], S of each block-diagonal matrix [L], S of the distribution p)``
    for normalized ``matrices`` ``[R, N, N]``, the diagonal blocks ``[L, K, n, n]`` of L
    normalized block-diagonal matrices and class frequencies ``p`` ``[K]``.

    The spectra go through one :func:`entropy_from_eigenvalues` pass: its dozen element-wise
    operations cost more than the arithmetic at these sizes. Rows are zero-padded to one
    length (zero eigenvalues add nothing) and each keeps its own rank tolerance. At
    ``alpha = 2`` no eigenvalues are needed.
    """
    if alpha == 2.0:
        return (
            entropy_of_normalized(matrices, alpha),
            entropy_of_normalized(blocks, alpha, blocks=True),
            entropy_from_eigenvalues(p, alpha),
        )
    spectra = [
        torch.linalg.eigvalsh(matrices),
        torch.linalg.eigvalsh(blocks).flatten(-2),
        p[None].to(matrices.dtype),
    ]
    width = max(lam.shape[-1] for lam in spectra)
    lam = torch.zeros(
        (sum(x.shape[0] for x in spectra), width), dtype=matrices.dtype, device=matrices.device
    )
    sizes = []
    at = 0
    for x in spectra:
        lam[at : at + x.shape[0], : x.shape[1]] = x
        sizes += [float(x.shape[1])] * x.shape[0]
        at += x.shape[0]
    size = torch.tensor(sizes, dtype=lam.dtype)[:, None]
    s = entropy_from_eigenvalues(lam, alpha, size=_to_device(size, lam.device))
    r, num_layers = matrices.shape[0], blocks.shape[0]
    return s[:r], s[r : r + num_layers], s[-1]


def plane_step(
    k_x: torch.Tensor,
    k_t: torch.Tensor,
    y: torch.Tensor | None,
    alpha: float,
    *,
    k_y: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Entropies and mutual informations of every layer of one batch.

    Args:
        k_x: ``[N, N]`` unit-diagonal input Gram.
        k_t: ``[L, N, N]`` unit-diagonal layer Grams.
        y: ``[N]`` integer labels for the indicator label kernel (fast path), or None when
            ``k_y`` is given. Their class layout is built on the host: labels already there
            (as a data loader yields them) cost no device-to-host copy.
        alpha: Rényi order.
        k_y: ``[N, N]`` unit-diagonal label Gram of another kind (general path).

    Returns:
        ``h_x``, ``h_y`` (0-d), and ``h_t``, ``i_xt``, ``i_ty`` (``[L]``), float64 bits.
    """
    if y is not None:
        return plane_step_with_controls(k_x, k_t, y, alpha)
    num_layers = k_t.shape[0]
    entries = [
        (k_x[None], None),
        (k_t, None),
        (k_x[None], k_t),
        (k_y[None], k_t),
        (k_y[None], None),
    ]
    s = entropy_of_normalized(_scaled(entries), alpha)
    h_x = s[0]
    h_t = s[1 : 1 + num_layers]
    return {
        "h_x": h_x,
        "h_y": s[-1],
        "h_t": h_t,
        "i_xt": h_x + h_t - s[1 + num_layers : 1 + 2 * num_layers],
        "i_ty": h_t + s[-1] - s[1 + 2 * num_layers : 1 + 3 * num_layers],
    }


#: Bytes of float64 matrices one batched eigenvalue call of the null distribution may take; the
#: permuted draws are split into chunks of at most this size, so a large B or N never builds
#: every draw's ``[L, N, N]`` product at once.
NULL_CHUNK_BYTES = 1 << 27


def plane_step_with_controls(
    k_x: torch.Tensor,
    k_t: torch.Tensor,
    y: torch.Tensor,
    alpha: float,
    *,
    null: tuple[torch.Tensor, torch.Tensor] | None = None,
    fixed: tuple[torch.Tensor | None, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`plane_step` (indicator labels) and its controls.

    Args:
        k_x, k_t, y, alpha: as :func:`plane_step`.
        null: ``(perms_x, perms_y)``, ``[B, N]`` permutations: adds ``i_xt_draws`` ``[L, B]``,
            I(X;T) with the samples of X permuted (``K_X[p][:, p]``), and ``i_ty_draws``
            ``[L, B]``, I(T;Y) with the labels permuted (``y[q]``), at the same Grams: the
            null distribution of the step (:func:`null_summary` reads it).
        fixed: ``(k_x_fixed, k_t_fixed)``, the Grams at held widths: adds ``i_xt_fixed``,
            ``i_ty_fixed`` and ``h_t_fixed``. ``k_x_fixed`` None: the input's held width is the
            estimate's, so the control uses ``k_x`` and ``S(X)`` (one eigenvalue problem fewer).

    The estimate and its controls share S(X), S(T) and S(Y), which are computed once; the
    estimate's and the fixed control's spectra go to one batched ``eigvalsh`` (and one for the
    class blocks), the null draws to chunked calls of at most :data:`NULL_CHUNK_BYTES`. I(T;Y)
    with permuted labels uses ``S(A_T o A_{Y[q]}) = S(A_{T'} o A_Y)`` with ``T'`` the samples of
    T under the inverse permutation, so its class blocks are gathered from ``K_T`` through the
    permuted layout, with the same class sizes as the others.
    """
    num_layers = k_t.shape[0]
    index, valid, counts = _class_layout(y)
    device = k_t.device
    index, valid = _to_device(index, device), _to_device(valid, device)
    # Each entry is (a, b): the matrices a / N, or a o b / N; written into one buffer.
    entries = [(k_x[None], None), (k_t, None), (k_x[None], k_t)]
    with_labels = [(k_t, index)]
    if fixed is not None:
        k_x_f, k_t_f = fixed
        if k_x_f is not None:
            entries.append((k_x_f[None], None))
        entries += [(k_t_f, None), ((k_x if k_x_f is None else k_x_f)[None], k_t_f)]
        with_labels.append((k_t_f, index))
    parts = [_class_blocks(k, at, valid) for k, at in with_labels]
    blocks = parts[0] if len(parts) == 1 else torch.cat(parts)
    p = _to_device(torch.from_numpy(counts / counts.sum()), device)
    s, s_ty, h_y = _indicator_entropies(_scaled(entries), blocks, p, alpha)
    h_x, h_t = s[0], s[1 : 1 + num_layers]
    out = {
        "h_x": h_x,
        "h_y": h_y,
        "h_t": h_t,
        "i_xt": h_x + h_t - s[1 + num_layers : 1 + 2 * num_layers],
        "i_ty": h_t + h_y - s_ty[:num_layers],
    }
    if fixed is not None:
        at = 1 + 2 * num_layers
        if fixed[0] is None:
            h_xf = h_x
        else:
            h_xf = s[at]
            at += 1
        h_tf, h_xtf = s[at : at + num_layers], s[at + num_layers : at + 2 * num_layers]
        out["h_t_fixed"] = h_tf
        out["i_xt_fixed"] = h_xf + h_tf - h_xtf
        out["i_ty_fixed"] = h_tf + h_y - s_ty[num_layers : 2 * num_layers]
    if null is not None:
        s_xt, s_ty_null = _null_joint_entropies(k_x, k_t, index, valid, null, alpha)
        out["i_xt_draws"] = (h_x + h_t)[:, None] - s_xt
        out["i_ty_draws"] = (h_t + h_y)[:, None] - s_ty_null
    return out


def _null_joint_entropies(
    k_x: torch.Tensor,
    k_t: torch.Tensor,
    index: torch.Tensor,
    valid: torch.Tensor,
    null: tuple[torch.Tensor, torch.Tensor],
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S(X[p], T), S(T, Y[q]))`` ``[L, B]`` of every draw, in chunks of draws."""
    perms_x, perms_y = null
    num_layers, n = k_t.shape[0], k_t.shape[-1]
    draws = perms_x.shape[0]
    chunk = max(1, NULL_CHUNK_BYTES // max(1, 8 * num_layers * n * n))
    s_xt, s_ty = [], []
    for start in range(0, draws, chunk):
        px, py = perms_x[start : start + chunk], perms_y[start : start + chunk]
        entries = [(k_x[q][:, q][None], k_t) for q in px]
        blocks = torch.cat([_class_blocks(k_t, torch.argsort(q)[index], valid) for q in py])
        ones = torch.ones(1, dtype=k_t.dtype, device=k_t.device)
        s, sb, _ = _indicator_entropies(_scaled(entries), blocks, ones, alpha)
        s_xt.append(s.reshape(len(px), num_layers))
        s_ty.append(sb.reshape(len(py), num_layers))
    return torch.cat(s_xt).T, torch.cat(s_ty).T


def null_summary(
    estimate: torch.Tensor, draws: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mean, 95% quantile, p-value)`` ``[L]`` of the null draws ``[L, B]`` against the
    estimate ``[L]``: the permutation p-value ``(1 + #{draw >= estimate}) / (B + 1)``, valid
    (exact for exchangeable draws, conservative under ties) at every level."""
    b = draws.shape[-1]
    exceed = (draws >= estimate[:, None]).sum(dim=-1).to(draws.dtype)
    return draws.mean(dim=-1), torch.quantile(draws, 0.95, dim=-1), (1.0 + exceed) / (b + 1.0)


#: A Gram is saturated when S(T) is within this fraction of log2 N of log2 N or of 0, or when its
#: mean off-diagonal value is within ``SATURATION_OFFDIAG`` of 0 (the identity) or of 1 (11^T).
SATURATION_FRACTION = 0.01
SATURATION_OFFDIAG = 1e-3


def saturated(h_t: torch.Tensor, k_t: torch.Tensor) -> torch.Tensor:
    """1.0 where a layer's unit-diagonal Gram ``[L, N, N]`` with entropy ``h_t`` ``[L]`` is
    saturated (see :data:`SATURATION_FRACTION`), else 0.0: such an estimate measures its
    kernel width, not the representation."""
    n = k_t.shape[-1]
    top = math.log2(n)
    off = (k_t.sum(dim=(-2, -1)) - n) / (n * (n - 1))
    near = SATURATION_FRACTION * top
    flags = (
        (h_t >= top - near)
        | (h_t <= near)
        | (off <= SATURATION_OFFDIAG)
        | (off >= 1.0 - SATURATION_OFFDIAG)
    )
    return flags.to(h_t.dtype)
