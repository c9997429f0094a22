"""Time gaps between events, cut into log-scale buckets (for time-aware attention).

Gaps between a user's events span seconds (a burst of ratings) to months (a user who comes
back). Equal-width buckets would put almost everything in the first one, so buckets grow
geometrically, as in TiSASRec's clipped intervals or T5's log-spaced relative positions:

    bucket(g) = 1 + min(floor(log2(1 + g / unit)), num_buckets - 2)      for a gap g >= 0 seconds

Bucket 1 holds gaps in [0, unit), bucket 2 [unit, 3 unit), bucket 3 [3 unit, 7 unit), ...:
bucket b >= 1 starts at (2^(b-1) - 1) * unit, and the last bucket takes every longer gap.
Bucket ``NO_GAP = 0`` is reserved for "no gap to measure": padding slots, and the oldest event
of a window, whose predecessor is not in the window.

Which gap? :func:`gaps_to_previous` measures each event against the event right before it,
which a causal model may use at every position (it looks only backwards).
:func:`gaps_to_reference` measures each event against one reference time per row (the newest
event, or the moment of the prediction): natural for a single user vector, but *not* causal
when a model predicts at every position of a training window, because every earlier position
would then see the time of the newest event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

NO_GAP = 0  # bucket of padding slots and of an event whose predecessor is not in the window


@dataclass(frozen=True)
class TimeBucketConfig:
    unit_seconds: float = 60.0  # the width of bucket 1; bucket b >= 1 starts at (2^(b-1) - 1) * unit
    num_buckets: int = 20  # bucket ids 0..num_buckets-1, including NO_GAP = 0; the last one is open-ended

    def __post_init__(self) -> None:
        if not self.unit_seconds > 0:
            raise ValueError(f"unit_seconds must be > 0, got {self.unit_seconds!r}.")
        if isinstance(self.num_buckets, bool) or not isinstance(self.num_buckets, int) or self.num_buckets < 2:
            raise ValueError(f"num_buckets must be an int >= 2 (NO_GAP plus at least one gap bucket), got {self.num_buckets!r}.")

    def bucket_starts(self) -> list[float]:
        """Start of each gap bucket 1..num_buckets-1 in seconds (bucket b covers [start_b, start_{b+1}))."""
        return [(2.0 ** (b - 1) - 1.0) * self.unit_seconds for b in range(1, self.num_buckets)]


def _check_times(times: Tensor, history_mask: Tensor) -> None:
    if not isinstance(times, Tensor) or times.ndim != 2:
        shape = tuple(times.shape) if isinstance(times, Tensor) else type(times).__name__
        raise ValueError(f"times must be a (B, L) tensor of unix seconds, got {shape}.")
    if times.is_floating_point() or times.dtype == torch.bool:
        raise TypeError(f"times must be integer unix seconds (torch.long), got dtype {times.dtype}.")
    if not isinstance(history_mask, Tensor) or history_mask.dtype != torch.bool or history_mask.shape != times.shape:
        got = f"{tuple(history_mask.shape)} {history_mask.dtype}" if isinstance(history_mask, Tensor) else type(history_mask).__name__
        raise ValueError(
            f"history_mask must be a bool tensor shaped like times {tuple(times.shape)} "
            f"(True = a real event, e.g. history != PAD_ID), got {got}."
        )


def log_time_buckets(gaps: Tensor, *, valid: Tensor | None = None, config: TimeBucketConfig | None = None) -> Tensor:
    """Bucket ids 1..num_buckets-1 of non-negative gaps (``NO_GAP`` where ``valid`` is False).

    Args:
        gaps: (...) gaps in seconds, integer or float, >= 0 wherever ``valid``.
        valid: bool (...) shaped like ``gaps``; True = a gap to bucket, False = ``NO_GAP``.
            None = every entry is a gap.
        config: the unit and the number of buckets (default :class:`TimeBucketConfig()`).

    Returns:
        long tensor shaped like ``gaps``.
    """
    if not isinstance(gaps, Tensor) or gaps.dtype == torch.bool or gaps.is_complex():
        got = gaps.dtype if isinstance(gaps, Tensor) else type(gaps).__name__
        raise TypeError(f"gaps must be a torch.Tensor of seconds (integer or float), got {got}.")
    config = TimeBucketConfig() if config is None else config
    if not isinstance(config, TimeBucketConfig):
        raise TypeError(f"config must be a TimeBucketConfig, got {type(config).__name__}.")
    if valid is None:
        valid = torch.ones_like(gaps, dtype=torch.bool)
    if not isinstance(valid, Tensor) or valid.dtype != torch.bool or valid.shape != gaps.shape:
        got = f"{tuple(valid.shape)} {valid.dtype}" if isinstance(valid, Tensor) else type(valid).__name__
        raise ValueError(f"valid must be a bool tensor shaped like gaps {tuple(gaps.shape)}, got {got}.")
    checked = gaps[valid]
    if bool((checked < 0).any()) or (gaps.is_floating_point() and bool(checked.isnan().any())):
        raise ValueError(
            f"gaps must be >= 0 seconds, got a minimum of {checked.min().item()}; are the events in time order "
            "(oldest first, as evaluation_batches and training_windows build them)?"
        )
    # floor(log2(1 + g/u)) counts the bucket starts at or below g: compare with the starts instead of taking
    # a float logarithm, which is exact for integer seconds on every device (no float64 needed)
    starts = config.bucket_starts()[1:]  # starts of buckets 2 .. num_buckets-1
    if not gaps.is_floating_point():
        starts = [math.ceil(s) for s in starts]  # an integer gap g >= s exactly when g >= ceil(s)
    boundaries = torch.tensor(starts, dtype=gaps.dtype, device=gaps.device)  # (num_buckets - 2,)
    buckets = 1 + torch.bucketize(gaps, boundaries, right=True)  # boundaries[i-1] <= g < boundaries[i] -> 1 + i
    return torch.where(valid, buckets, torch.full_like(buckets, NO_GAP))


def gaps_to_previous(times: Tensor, history_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Seconds from the previous event to each event (causal: looks backwards only).

    Args:
        times: (B, L) long unix seconds, oldest first; any value at padding.
        history_mask: (B, L) bool, True = a real event. Real events must be contiguous
            (all padding on one side), as :func:`~course_lib.data.pad_sequences` builds them.

    Returns:
        (gaps (B, L) long, valid (B, L) bool): ``gaps[b, l] = times[b, l] - times[b, l-1]`` where
        both slots are real events (``valid`` True); 0 and ``valid`` False elsewhere (padding, and
        the oldest event of each row).
    """
    _check_times(times, history_mask)
    previous_real = torch.zeros_like(history_mask)  # (B, L)
    previous_real[:, 1:] = history_mask[:, :-1]
    valid = history_mask & previous_real  # (B, L)
    gaps = torch.zeros_like(times)
    gaps[:, 1:] = times[:, 1:] - times[:, :-1]
    gaps = torch.where(valid, gaps, torch.zeros_like(gaps))
    if bool((gaps < 0).any()):
        raise ValueError(
            "times must be non-decreasing along L over the real events (oldest first); "
            "some event is older than the one before it."
        )
    return gaps, valid


def gaps_to_reference(times: Tensor, history_mask: Tensor, reference: Tensor | None = None) -> Tensor:
    """Seconds from each event to a reference time per row (default: the row's newest event).

    Not causal inside a window: every position sees the reference (see the module docstring).

    Args:
        times: (B, L) long unix seconds; any value at padding.
        history_mask: (B, L) bool, True = a real event.
        reference: (B,) long, e.g. ``batch.target_times`` (the moment of the prediction);
            default the latest real event of each row.

    Returns:
        (B, L) long, ``reference[b] - times[b, l]`` at real events, 0 at padding.
    """
    _check_times(times, history_mask)
    if reference is None:
        smallest = torch.iinfo(times.dtype).min
        reference = times.masked_fill(~history_mask, smallest).amax(dim=1)  # (B,)
        reference = torch.where(history_mask.any(dim=1), reference, torch.zeros_like(reference))
    elif not isinstance(reference, Tensor) or reference.shape != times.shape[:1]:
        got = tuple(reference.shape) if isinstance(reference, Tensor) else type(reference).__name__
        raise ValueError(f"reference must be one time per row, shape ({times.shape[0]},), got {got}.")
    gaps = torch.where(history_mask, reference[:, None] - times, torch.zeros_like(times))  # (B, L)
    if bool((gaps < 0).any()):
        raise ValueError("some event is later than its row's reference time; the reference must be at or after every event.")
    return gaps
