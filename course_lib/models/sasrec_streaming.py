"""Streaming SASRec: a key/value cache turns each new event into one cheap step.

A causal model's state after event t depends only on events <= t. So when a user's next
event arrives, the keys and values of the earlier events, in every layer, are the same as
before, *provided their input vectors did not change*. Then only the new event has to go
through the blocks: its query attends over the cached keys/values plus its own, and its
key/value are appended to the cache. Per event that costs O(L·D + D²) instead of the
O(L·D² + L²·D) of recomputing the whole history.

The proviso fails for SASRec's default positions: it counts them back from the newest event
(``P[L-1-l]``), so a new event shifts the position vector of every earlier event, changes
every input vector and invalidates every cached key. A model that streams needs positions
that do not move when events are appended: ``SASRecConfig(..., positions="oldest")``
(:class:`~course_lib.models.sasrec.StreamingSASRec`) counts them from the user's *oldest*
event (position p = the p-th real event, ``PAD_ID`` ignored), so left padding still changes
nothing.

Mask convention: boolean ``attn_mask``, True = may attend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..attention import causal_mask
from ..constants import PAD_ID
from ..layers import positions_from_oldest
from .item_encoders import lookup
from .sasrec import SASRec


@dataclass
class KVCache:
    """Keys and values of every event seen so far, for every layer of a streamable SASRec."""

    keys: list[Tensor]  # one (B, H, T, Dh) tensor per layer: projected keys of the T cached slots
    values: list[Tensor]  # one (B, H, T, Dh) tensor per layer: projected values of the T cached slots
    real: Tensor  # (B, T) bool; True = a real event (may be attended), False = PAD_ID slot

    @property
    def length(self) -> int:
        """T, the number of cached slots (real events and padding)."""
        return self.real.shape[1]

    def nbytes(self) -> int:
        """Bytes held by the cached keys and values."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


def _check_streamable(model: SASRec) -> None:
    if not isinstance(model, SASRec) or model.config.positions != "oldest":
        got = type(model).__name__ if not isinstance(model, SASRec) else f"a SASRec with positions={model.config.positions!r}"
        raise TypeError(
            f"streaming needs a SASRec whose positions count from the oldest event (StreamingSASRec, or "
            f"SASRecConfig(..., positions='oldest')), got {got}. Positions counted back from the newest event "
            "move with every new event, so every cached key would change."
        )
    if model.config.time_gaps is not None:
        raise TypeError("streaming with time-gap buckets is not supported: build the model with time_gaps=None.")


def empty_cache(model: SASRec, batch_size: int, *, device: torch.device | str | None = None) -> KVCache:
    """A cache with no events yet (T = 0) for ``batch_size`` users."""
    _check_streamable(model)
    n_heads = model.config.n_heads
    d_head = model.config.d_model // n_heads
    dtype = next(model.parameters()).dtype
    empty = [torch.zeros(batch_size, n_heads, 0, d_head, dtype=dtype, device=device) for _ in range(model.config.n_layers)]
    return KVCache(
        keys=empty,
        values=[t.clone() for t in empty],
        real=torch.zeros(batch_size, 0, dtype=torch.bool, device=device),
    )


def extend(model: SASRec, items: Tensor, cache: KVCache) -> tuple[Tensor, KVCache]:
    """Run only the new events through the model, attending over the cache; return the grown cache.

    Equal to ``model(cat(history_so_far, items))[:, T:]`` (the last columns of a full
    recomputation) but it computes queries, keys and values for the new events only.
    ``extend(model, history, empty_cache(...))`` is the "prefill" of a whole history;
    ``extend(model, item[:, None], cache)`` is one streaming step.

    Args:
        model: a streamable SASRec (oldest-anchored positions, e.g. :class:`StreamingSASRec`)
            in eval mode (dropout would make the cache differ from a recomputation).
        items: (B, Lnew) new item ids, oldest first; ``PAD_ID`` marks "no event" (left
            padding of a user whose history is shorter).
        cache: the cache of the B users' earlier slots (T of them; may be empty).

    Returns:
        hidden states of the new slots (B, Lnew, D) (``model.item_scores`` of the last one
        ranks the next item), and a new cache of T + Lnew slots (the input is not modified).
    """
    _check_streamable(model)
    if model.training:
        raise RuntimeError("call model.eval() first: with dropout active the cached keys would not match a recomputation.")
    if items.ndim != 2 or items.dtype != torch.long:
        raise ValueError(f"items must be item ids (B, Lnew) of dtype long, got {tuple(items.shape)} {items.dtype}.")
    if items.shape[0] != cache.real.shape[0]:
        raise ValueError(f"items hold {items.shape[0]} users but the cache holds {cache.real.shape[0]}.")
    past, new = cache.length, items.shape[1]
    if past + new > model.config.max_len:
        raise ValueError(
            f"the cache would hold {past + new} slots but the model has only max_len = {model.config.max_len} "
            "position vectors; start a new cache or build the model with a larger max_len."
        )
    table = model.item_encoder.table()  # (I + 1, D)
    if new == 0:  # nothing new: no hidden states, the same cache
        return torch.zeros(items.shape[0], 0, model.config.d_model, dtype=table.dtype, device=items.device), cache
    real_new = items != PAD_ID  # (B, Lnew)
    real = torch.cat([cache.real, real_new], dim=1)  # (B, T + Lnew)
    positions = positions_from_oldest(real)[:, past:]  # (B, Lnew), the same rule as the model's forward
    encoder = model.encoder
    x = encoder.positions(lookup(table, items), positions=positions)  # (B, Lnew, D); dropout is off in eval
    # new query i (slot T + i) may see cached and new slots <= T + i that are real events
    mask = causal_mask(new, past + new, device=items.device) & real[:, None, None, :]  # (B, 1, Lnew, T + Lnew)
    keys, values = [], []
    for layer, block in enumerate(encoder.transformer.blocks):
        attention = block.attention
        h = block.norm1(x) if block.norm_first else x  # what the block feeds to attention
        q = attention.split_heads(attention.q_proj(h))  # (B, H, Lnew, Dh)
        k = torch.cat([cache.keys[layer], attention.split_heads(attention.k_proj(h))], dim=2)  # (B, H, T + Lnew, Dh)
        v = torch.cat([cache.values[layer], attention.split_heads(attention.v_proj(h))], dim=2)  # (B, H, T + Lnew, Dh)
        attended, _ = attention.attend(q, k, v, mask)  # (B, Lnew, D)
        attended = block.dropout1(attended)
        if block.norm_first:  # the same two residual sublayers as TransformerBlock.forward
            x = x + attended
            x = x + block.dropout2(block.feed_forward(block.norm2(x)))  # (B, Lnew, D)
        else:
            x = block.norm1(x + attended)
            x = block.norm2(x + block.dropout2(block.feed_forward(x)))  # (B, Lnew, D)
        keys.append(k)
        values.append(v)
    return encoder.transformer.final_norm(x), KVCache(keys=keys, values=values, real=real)


def step(model: SASRec, item: Tensor, cache: KVCache) -> tuple[Tensor, KVCache]:
    """One streaming step: each user's newest event ``item`` (B,) in, its hidden state (B, D) out.

    Args:
        model: a streamable SASRec in eval mode.
        item: (B,) the new event of each user (``PAD_ID`` = no event for that user).
        cache: the cache of the earlier events.

    Returns:
        (B, D) hidden state after the new event, and the cache with it appended.
    """
    if item.ndim != 1:
        raise ValueError(f"item must be one new item id per user, shape (B,), got {tuple(item.shape)}.")
    hidden, cache = extend(model, item[:, None], cache)  # (B, 1, D)
    return hidden[:, 0], cache
