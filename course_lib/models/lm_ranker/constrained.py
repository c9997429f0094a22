"""Generation that can only name real items: a token trie over the catalogue's titles.

Every catalogue title, tokenized and followed by the end marker ``;``, is one path of a prefix
tree. While a title is being generated, the tokens allowed next are the children of the node
reached so far; every other token's logit is set to ``-inf`` before the argmax. A finished
generation is therefore always a path to a leaf: a title of the catalogue (tested). Without the
trie the same greedy loop may string words together into a title that does not exist
(a *hallucinated* item).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .prompts import END
from .scoring import encode_words, left_pad


class TitleTrie:
    """A prefix tree of token sequences, each ending with the end token.

    Args:
        sequences: one token-id list per title (without the end token; it is appended).
        end_id: the end marker's token id.
    """

    def __init__(self, sequences: Sequence[Sequence[int]], end_id: int) -> None:
        if not sequences:
            raise ValueError("a trie needs at least one title.")
        self.end_id = end_id
        self.root: dict[int, dict] = {}
        self._complete: set[tuple[int, ...]] = set()
        for seq in sequences:
            seq = [int(t) for t in seq]
            if not seq or end_id in seq:
                raise ValueError(f"a title is a non-empty token list without the end token {end_id}, got {seq}.")
            node = self.root
            for token in [*seq, end_id]:
                node = node.setdefault(token, {})
            self._complete.add(tuple(seq))

    @classmethod
    def from_titles(cls, tokenizer, titles: Sequence[str]) -> TitleTrie:
        """The trie of ``titles`` as ``tokenizer`` splits them."""
        (end_id,) = encode_words(tokenizer, END)
        return cls([encode_words(tokenizer, t) for t in titles], end_id)

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Token ids that may follow ``prefix`` (the title's tokens generated so far); [] if none."""
        node = self.root
        for token in prefix:
            node = node.get(int(token))
            if node is None:
                return []
        return sorted(node)

    def __contains__(self, title_tokens: Sequence[int]) -> bool:
        """True when ``title_tokens`` (without the end token) is a whole catalogue title."""
        return tuple(int(t) for t in title_tokens) in self._complete

    def __len__(self) -> int:
        return len(self._complete)


@torch.no_grad()
def generate_titles(model: torch.nn.Module, tokenizer, prompts: Sequence[str], *, trie: TitleTrie | None = None,
                    max_tokens: int = 12) -> list[list[int]]:
    """Greedy decoding of one title per prompt, stopping at the end marker.

    Args:
        model: a Hugging Face causal LM (eval mode).
        tokenizer: its tokenizer.
        prompts: B prompts (``build_prompt``).
        trie: if given, only tokens the trie allows may be chosen (constrained decoding).
        max_tokens: stop after this many tokens without the end marker (the title is then unfinished).

    Returns:
        B token-id lists: each generated title without the end marker.
    """
    if not prompts:
        raise ValueError("no prompts to generate from.")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}.")
    (end_id,) = encode_words(tokenizer, END)
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    device = next(model.parameters()).device
    sequences = [encode_words(tokenizer, p) for p in prompts]
    generated: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    for _ in range(max_tokens):
        active = [b for b in range(len(prompts)) if not done[b]]
        if not active:
            break
        ids, mask, positions = left_pad([sequences[b] + generated[b] for b in active], pad_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                       logits_to_keep=1).logits[:, -1]  # (B_active, V): the next token
        if trie is not None:
            allowed = torch.zeros_like(logits, dtype=torch.bool)  # (B_active, V), True = may be generated
            for row, b in enumerate(active):
                allowed[row, trie.allowed(generated[b])] = True
            logits = logits.masked_fill(~allowed, -torch.inf)
        for row, b in enumerate(active):
            token = int(logits[row].argmax())
            if token == end_id:
                done[b] = True
            else:
                generated[b].append(token)
    return generated
