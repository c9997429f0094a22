"""A word-level tokenizer trained here on the catalogue's text, wrapped as a Hugging Face tokenizer.

Nothing comes from a hub: :func:`train_word_tokenizer` builds a ``tokenizers`` WordLevel model
(lower-cased; words and punctuation split apart) from the texts it is given, and wraps it in
``transformers.PreTrainedTokenizerFast``, so ``save_pretrained`` / ``AutoTokenizer.from_pretrained``
treat it like any downloaded tokenizer. Train it on the whole catalogue's titles (text known before
anyone interacts with an item), so a new item's title has no unknown word the others lack.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from .prompts import END

PAD_TOKEN = "[PAD]"  # fills short sequences in a batch (attention_mask 0 there)
UNK_TOKEN = "[UNK]"  # a word the vocabulary lacks


def train_word_tokenizer(texts: Iterable[str], *, min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is every word (lower-cased) of ``texts``.

    Args:
        texts: e.g. every catalogue title and genre name plus the prompt words (``build_prompt`` of one title).
        min_frequency: words seen fewer times become ``[UNK]``.

    Returns:
        A ``PreTrainedTokenizerFast`` with pad ``[PAD]``, unk ``[UNK]`` and eos ``;`` (the end of a title).
    """
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("train_word_tokenizer needs a non-empty list of strings (titles, prompts).")
    core = Tokenizer(models.WordLevel(unk_token=UNK_TOKEN))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()  # "Back, The" -> "back", ",", "the"
    trainer = trainers.WordLevelTrainer(special_tokens=[PAD_TOKEN, UNK_TOKEN], min_frequency=min_frequency)
    core.train_from_iterator(texts, trainer=trainer)
    if core.token_to_id(END) is None:
        raise ValueError(f"the texts never contain the end marker {END!r}; include at least one prompt (build_prompt).")
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN, eos_token=END)
