"""A prefix trie of the valid item codes, and the next-token mask it gives.

Every item has a unique code ``(c_0, ..., c_{C-1})`` with ``c_l`` in ``0 .. V_l - 1``. A
prefix of ``l`` tokens is valid when some item's code starts with it; the tokens allowed
after it are the ``l``-th tokens of those items. Masking every other token to ``-inf``
before choosing the next one means a decoder can only ever spell out real items.

Stored as tensors, level by level: the prefixes of length l are numbered by a mixed-radix
key ``k = ((c_0 V_1 + c_1) V_2 + c_2) ...``, kept sorted, so looking up a batch of prefixes
is one ``searchsorted``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...constants import PAD_ID


def check_codes(codes: object, level_sizes: tuple[int, ...] | None = None) -> Tensor:
    """Raise a clear error unless ``codes`` is an integer (I, C) tensor with every token in range."""
    if not isinstance(codes, Tensor) or codes.ndim != 2 or codes.is_floating_point() or codes.dtype == torch.bool:
        got = f"{tuple(codes.shape)} {codes.dtype}" if isinstance(codes, Tensor) else type(codes).__name__
        raise ValueError(f"codes must be an integer tensor (I, C): one code of C tokens per item; got {got}.")
    if codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError(f"codes must hold at least one item and one level, got shape {tuple(codes.shape)}.")
    if level_sizes is not None:
        if len(level_sizes) != codes.shape[1]:
            raise ValueError(f"codes have C = {codes.shape[1]} levels but level_sizes names {len(level_sizes)}.")
        sizes = torch.tensor(level_sizes)
        if bool((codes < 0).any()) or bool((codes >= sizes).any()):
            raise ValueError(f"every token of level l must lie in 0 .. level_sizes[l] - 1 = {[s - 1 for s in level_sizes]}.")
    return codes


def _keys(prefixes: Tensor, sizes: Tensor) -> Tensor:
    """Mixed-radix key of each prefix (N, l) -> (N,) int64 (0 for l = 0)."""
    key = torch.zeros(prefixes.shape[0], dtype=torch.long)
    for level in range(prefixes.shape[1]):
        key = key * int(sizes[level]) + prefixes[:, level]
    return key


class CodeTrie:
    """The valid codes of a catalogue (item id = row + 1), with masks for the next token.

    Args:
        codes: (N, C) long, unique codes; row c is item id c + 1 unless ``item_ids`` says otherwise.
        level_sizes: V_l, the number of possible tokens at each level (default: max + 1).
        item_ids: (N,) long, the item id of each row (a trie over part of a catalogue, e.g. only
            its new items); default 1..N.
    """

    def __init__(self, codes: Tensor, level_sizes: tuple[int, ...] | None = None, *, item_ids: Tensor | None = None) -> None:
        check_codes(codes)
        codes = codes.detach().cpu().long()
        if level_sizes is None:
            level_sizes = tuple(int(v) + 1 for v in codes.max(dim=0).values)
        check_codes(codes, tuple(level_sizes))
        self.codes = codes  # (I, C)
        self.level_sizes = tuple(int(v) for v in level_sizes)
        self.sizes = torch.tensor(self.level_sizes)
        if torch.unique(codes, dim=0).shape[0] != codes.shape[0]:
            raise ValueError("two items share one code; add a disambiguation token first (add_disambiguation).")
        self.node_keys, self.children = [], []  # per level l: sorted prefix keys (n_l,), allowed next tokens (n_l, V_l)
        for level in range(self.levels):
            keys = _keys(codes[:, :level], self.sizes)  # (I,)
            unique, node = torch.unique(keys, return_inverse=True)  # sorted
            allowed = torch.zeros(unique.numel(), self.level_sizes[level], dtype=torch.bool)
            allowed[node, codes[:, level]] = True
            self.node_keys.append(unique)
            self.children.append(allowed)
        full = _keys(codes, self.sizes)  # (I,)
        self.leaf_keys, order = full.sort()
        if item_ids is None:
            item_ids = torch.arange(1, codes.shape[0] + 1)
        elif not isinstance(item_ids, Tensor) or item_ids.shape != (codes.shape[0],) or bool((item_ids < 1).any()):
            got = getattr(item_ids, "shape", item_ids)
            raise ValueError(f"item_ids must be (N = {codes.shape[0]},) ids >= 1, one per code, got {got}.")
        self.item_ids = item_ids.detach().cpu().long()  # (N,)
        self.leaf_items = self.item_ids[order]  # item id of each sorted full key

    @property
    def levels(self) -> int:
        """C, tokens per code."""
        return self.codes.shape[1]

    @property
    def num_items(self) -> int:
        """N, the codes in this trie."""
        return self.codes.shape[0]

    def subset(self, items: Tensor) -> CodeTrie:
        """A trie of only the given item ids (e.g. a shelf of new items), with the same level sizes."""
        items = torch.as_tensor(items).long().flatten()
        if items.numel() == 0 or not bool(torch.isin(items, self.item_ids).all()):
            raise ValueError("subset needs a non-empty set of item ids that are all in this trie.")
        rows = (self.item_ids[None, :] == items[:, None]).nonzero()[:, 1]  # (n,) row of each item
        return CodeTrie(self.codes[rows], self.level_sizes, item_ids=self.item_ids[rows])

    def _find(self, keys: Tensor, table: Tensor) -> tuple[Tensor, Tensor]:
        at = torch.searchsorted(table, keys).clamp_max(table.numel() - 1)
        return at, table[at] == keys

    def next_token_mask(self, prefixes: Tensor) -> Tensor:
        """Which tokens may follow each prefix.

        Args:
            prefixes: (N, l) long, l < C tokens each (l = 0: the first token).

        Returns:
            bool (N, V_l); True = some item's code continues the prefix with that token. A prefix
            that is no item's prefix allows nothing (an all-False row).
        """
        if not isinstance(prefixes, Tensor) or prefixes.ndim != 2 or prefixes.is_floating_point():
            got = f"{tuple(prefixes.shape)}" if isinstance(prefixes, Tensor) else type(prefixes).__name__
            raise ValueError(f"prefixes must be an integer tensor (N, l), got {got}.")
        level = prefixes.shape[1]
        if level >= self.levels:
            raise ValueError(f"a prefix of {level} tokens is already a whole code (C = {self.levels}); nothing follows it.")
        device = prefixes.device
        prefixes = prefixes.cpu().long()
        in_range = ((prefixes >= 0) & (prefixes < self.sizes[:level])).all(dim=1)  # (N,)
        at, found = self._find(_keys(prefixes.clamp_min(0), self.sizes), self.node_keys[level])
        mask = self.children[level][at] & (found & in_range)[:, None]  # (N, V_l)
        return mask.to(device)

    def items_of(self, codes: Tensor) -> Tensor:
        """(N, C) whole codes -> (N,) item ids; ``PAD_ID`` where a code is no item's."""
        if not isinstance(codes, Tensor) or codes.ndim != 2 or codes.shape[1] != self.levels:
            raise ValueError(f"codes must be (N, C = {self.levels}), got {getattr(codes, 'shape', type(codes).__name__)}.")
        device = codes.device
        codes = codes.cpu().long()
        in_range = ((codes >= 0) & (codes < self.sizes)).all(dim=1)
        at, found = self._find(_keys(codes.clamp_min(0), self.sizes), self.leaf_keys)
        return torch.where(found & in_range, self.leaf_items[at], torch.full_like(at, PAD_ID)).to(device)
