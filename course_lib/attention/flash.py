"""Tiled (FlashAttention-style) attention: query and key blocks sized for a fast memory,
counted memory traffic, and a backward pass that recomputes the weights.

Dao et al. (2022), "FlashAttention: Fast and Memory-Efficient Exact Attention with
IO-Awareness", Algorithm 1. A GPU has a large slow memory (HBM) and a small fast one
(on-chip SRAM) of M floats. With head size d the paper picks

    Bc = ceil(M / 4d)  keys per block,   Br = min(ceil(M / 4d), d)  queries per block,

so that a key block K_j and a value block V_j (2·Bc·d = M/2 floats), a query block Q_i
and its output block O_i (2·Br·d ≤ M/2) and the Br x Bc scores (≤ M/4) fit in O(M).
The outer loop runs over the Tc = ceil(N / Bc) key/value blocks, the inner loop over the
Tr = ceil(N / Br) query blocks; each inner step reads Q_i, O_i and the running (m_i, l_i)
from HBM, updates them with the online softmax and writes them back. HBM traffic is
Θ(N²d²/M) elements, against Θ(Nd + N²) for standard attention, which writes and reads
the N x N scores S and weights P (the paper's Theorem 2).

Forward saves only q, k, v, the output O and one float per query row, the log-sum-exp
L = m + log l. Backward recomputes each block of weights as P = exp(q k^T * scale - L)
and accumulates

    dV = P^T dO,   dP = dO V^T,   D = rowsum(dO * O),   dS = P * (dP - D),
    dQ = dS K * scale,   dK = dS^T Q * scale,

so training memory stays linear in N. Statistics and accumulators are float32 for
float16 / bfloat16 inputs. Mask convention: boolean ``attn_mask``, True = may attend; a row
with no allowed key gets a zero output (and L = -inf), never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .online_softmax import allowed_block, check_block_size, check_qkv, stats_dtype


def flash_block_sizes(sram_floats: int, head_dim: int) -> tuple[int, int]:
    """FlashAttention's block sizes for a fast memory of ``sram_floats`` (M) numbers.

    Args:
        sram_floats: M, how many numbers the fast memory holds.
        head_dim: d, the size of one query/key vector.

    Returns:
        (Br, Bc): queries per block ``min(ceil(M / 4d), d)`` and keys per block ``ceil(M / 4d)``.
    """
    check_block_size(sram_floats, "sram_floats")
    check_block_size(head_dim, "head_dim")
    block_k = math.ceil(sram_floats / (4 * head_dim))
    return min(block_k, head_dim), block_k


@dataclass
class HBMTraffic:
    """Numbers moved between slow memory (HBM) and fast memory, counted block by block."""

    reads: int = 0  # elements read from slow memory
    writes: int = 0  # elements written to slow memory

    @property
    def total(self) -> int:
        return self.reads + self.writes

    def read(self, *blocks: Tensor) -> None:
        self.reads += sum(block.numel() for block in blocks)

    def write(self, *blocks: Tensor) -> None:
        self.writes += sum(block.numel() for block in blocks)


def standard_attention_traffic(length: int, head_dim: int) -> HBMTraffic:
    """HBM traffic of standard attention for one (N, d) head (the paper's Algorithm 0).

    Read Q, K and write S = QK^T (N x N); read S, write P = softmax(S); read P and V, write O.

    Returns:
        reads 3Nd + 2N², writes Nd + 2N².
    """
    check_block_size(length, "length")
    check_block_size(head_dim, "head_dim")
    n, d = length, head_dim
    return HBMTraffic(reads=2 * n * d + n * n + n * n + n * d, writes=n * n + n * n + n * d)


def _forward(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None, is_causal: bool,
    block_q: int, block_k: int, scale: float, traffic: HBMTraffic | None,
) -> tuple[Tensor, Tensor]:
    """Algorithm 1: outer loop over key blocks, inner loop over query blocks. q/k/v share batch dims."""
    length_q, length_k = q.shape[-2], k.shape[-2]
    acc_dtype = stats_dtype(q.dtype)
    out = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=acc_dtype, device=q.device)  # (..., Lq, Dv), "HBM"
    row_sum = torch.zeros((*q.shape[:-1], 1), dtype=acc_dtype, device=q.device)  # l (..., Lq, 1)
    row_max = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=acc_dtype, device=q.device)  # m (..., Lq, 1)
    tiny = torch.finfo(acc_dtype).tiny
    for k_start in range(0, length_k, block_k):
        cols = slice(k_start, min(k_start + block_k, length_k))
        k_j, v_j = k[..., cols, :].to(acc_dtype), v[..., cols, :].to(acc_dtype)  # (..., Bc, D), (..., Bc, Dv)
        if traffic is not None:
            traffic.read(k[..., cols, :], v[..., cols, :])
        for q_start in range(0, length_q, block_q):
            rows = slice(q_start, min(q_start + block_q, length_q))
            if is_causal and cols.start > rows.stop - 1 + length_k - length_q:
                continue  # every key of this block lies in the future of every query: skip it
            q_i, o_i, l_i, m_i = q[..., rows, :].to(acc_dtype), out[..., rows, :], row_sum[..., rows, :], row_max[..., rows, :]
            if traffic is not None:
                traffic.read(q[..., rows, :], o_i, l_i, m_i)
            scores = (q_i @ k_j.transpose(-2, -1)) * scale  # (..., Br, Bc)
            allowed = allowed_block(attn_mask, is_causal, length_q, length_k, rows, cols, q.device)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            m_new = torch.maximum(m_i, scores.amax(dim=-1, keepdim=True))  # (..., Br, 1)
            shift = torch.where(torch.isfinite(m_new), m_new, torch.zeros_like(m_new))  # 0 while a row has seen no key
            p = torch.exp(scores - shift)  # (..., Br, Bc), 0 where masked
            old = l_i * torch.exp(m_i - shift)  # (..., Br, 1): the old sum under the new maximum
            l_new = old + p.sum(dim=-1, keepdim=True)
            o_new = (old * o_i + p @ v_j) / l_new.clamp_min(tiny)  # (..., Br, Dv), normalised as in Algorithm 1
            out[..., rows, :], row_sum[..., rows, :], row_max[..., rows, :] = o_new, l_new, m_new
            if traffic is not None:
                traffic.write(o_new, l_new, m_new)
    lse = (row_max + row_sum.log()).squeeze(-1)  # (..., Lq); -inf for a row with no allowed key
    return out.to(q.dtype), lse


def _backward(
    q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, grad_out: Tensor, attn_mask: Tensor | None,
    is_causal: bool, block_q: int, block_k: int, scale: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of q, k, v, recomputing each block of weights from the log-sum-exp L."""
    length_q, length_k = q.shape[-2], k.shape[-2]
    acc_dtype = lse.dtype
    grad_out = grad_out.to(acc_dtype)
    delta = (grad_out * out.to(acc_dtype)).sum(dim=-1, keepdim=True)  # D (..., Lq, 1)
    lse = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))[..., None]  # (..., Lq, 1); masked rows give P = 0
    dq = torch.zeros(q.shape, dtype=acc_dtype, device=q.device)  # (..., Lq, D)
    dk = torch.zeros(k.shape, dtype=acc_dtype, device=q.device)  # (..., Lk, D)
    dv = torch.zeros(v.shape, dtype=acc_dtype, device=q.device)  # (..., Lk, Dv)
    for k_start in range(0, length_k, block_k):
        cols = slice(k_start, min(k_start + block_k, length_k))
        k_j, v_j = k[..., cols, :].to(acc_dtype), v[..., cols, :].to(acc_dtype)
        for q_start in range(0, length_q, block_q):
            rows = slice(q_start, min(q_start + block_q, length_q))
            if is_causal and cols.start > rows.stop - 1 + length_k - length_q:
                continue
            q_i, do_i = q[..., rows, :].to(acc_dtype), grad_out[..., rows, :]
            scores = (q_i @ k_j.transpose(-2, -1)) * scale  # (..., Br, Bc)
            allowed = allowed_block(attn_mask, is_causal, length_q, length_k, rows, cols, q.device)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            p = torch.exp(scores - lse[..., rows, :])  # (..., Br, Bc): the weights, recomputed
            dv[..., cols, :] += p.transpose(-2, -1) @ do_i
            dp = do_i @ v_j.transpose(-2, -1)  # (..., Br, Bc)
            ds = p * (dp - delta[..., rows, :])  # (..., Br, Bc): gradient of the scores
            dq[..., rows, :] += (ds @ k_j) * scale
            dk[..., cols, :] += (ds.transpose(-2, -1) @ q_i) * scale
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


class FlashAttentionFunction(torch.autograd.Function):
    """Autograd wrapper: saves q, k, v, O and L only; backward recomputes the weights."""

    @staticmethod
    def forward(ctx, q, k, v, attn_mask, is_causal, block_q, block_k, scale, traffic):  # noqa: ANN001, D102
        out, lse = _forward(q, k, v, attn_mask, is_causal, block_q, block_k, scale, traffic)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.attn_mask, ctx.settings = attn_mask, (is_causal, block_q, block_k, scale)
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):  # noqa: ANN001, ARG004, D102
        q, k, v, out, lse = ctx.saved_tensors
        is_causal, block_q, block_k, scale = ctx.settings
        dq, dk, dv = _backward(q, k, v, out, lse, grad_out, ctx.attn_mask, is_causal, block_q, block_k, scale)
        return dq, dk, dv, None, None, None, None, None, None


def flash_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    *,
    is_causal: bool = False,
    block_q: int = 64,
    block_k: int = 64,
    scale: float | None = None,
    traffic: HBMTraffic | None = None,
    return_lse: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """``softmax(q k^T * scale + mask) v`` in query x key tiles, with a recomputing backward pass.

    Args:
        q: queries (..., Lq, D).
        k: keys (..., Lk, D).
        v: values (..., Lk, Dv).
        attn_mask: bool, broadcastable to (..., Lq, Lk); True = may attend. None = attend to all.
        is_causal: also apply ``causal_mask(Lq, Lk)`` (queries are the last Lq keys), AND-ed with
            ``attn_mask``; blocks entirely in the future are skipped.
        block_q: Br, queries per tile (``flash_block_sizes`` gives the paper's choice).
        block_k: Bc, keys per tile.
        scale: score scale; default ``1/sqrt(D)``.
        traffic: if given, counts the elements the forward loop reads from and writes to slow memory.
        return_lse: also return the log-sum-exp L (..., Lq) of each row's scores, float32 for half inputs.

    Returns:
        output (..., Lq, Dv) in q's dtype (rows with no allowed key are zero), and L if ``return_lse``.
    """
    batch_shape = check_qkv(q, k, v, attn_mask, is_causal)
    check_block_size(block_q, "block_q")
    check_block_size(block_k, "block_k")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    q = q.expand(*batch_shape, *q.shape[-2:])  # views: autograd sums the gradient back over broadcast dims
    k = k.expand(*batch_shape, *k.shape[-2:])
    v = v.expand(*batch_shape, *v.shape[-2:])
    out, lse = FlashAttentionFunction.apply(q, k, v, attn_mask, is_causal, block_q, block_k, scale, traffic)
    return (out, lse) if return_lse else out
