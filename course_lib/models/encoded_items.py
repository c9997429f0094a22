"""Item vectors built by an item encoder instead of looked up in an ID table (a SASRec mixin).

A SASRec subclass whose items are encoded from features (images, texts, metadata) lists
:class:`EncodedItems` first among its bases and sets ``self.item_encoder``: a module mapping
item ids (...) to (..., D) vectors (``PAD_ID`` -> zeros) with ``all_items() -> (I + 1, D)``.
Inputs (the history) and outputs (the scored items) share the encoder, so they stay tied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import Tensor


class EncodedItems:
    """Mixin: ``embed_items`` / ``output_items`` from ``self.item_encoder``, encoded once per call."""

    _item_table: Tensor | None = None  # (I + 1, D), set only inside one loss/score call

    @contextmanager
    def _one_item_table(self) -> Iterator[None]:
        """Encode the whole catalogue once for one ``loss``/``score`` call (re-entrant).

        Inputs and outputs then share one encoder pass instead of two; the table is dropped
        when the outermost call ends, so nothing outlives it.
        """
        outer = self._item_table is None
        if outer:
            self._item_table = self.item_encoder.all_items()  # (I + 1, D)
        try:
            yield
        finally:
            if outer:
                self._item_table = None

    def embed_items(self, items: Tensor) -> Tensor:
        """(...) item ids -> (..., D) encoded vectors; ``PAD_ID`` gives zeros."""
        if self._item_table is not None:
            return self._item_table[items]
        return self.item_encoder(items)

    def output_items(self) -> Tensor:
        """(I, D) vectors of items 1..I (row c is item c + 1), tied to the inputs."""
        table = self._item_table if self._item_table is not None else self.item_encoder.all_items()
        return table[1:]
