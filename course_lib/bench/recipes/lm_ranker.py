"""A small GPT-2 trained on ML-100K history prompts (notebook 17): build, train, save and load.

The model is ``transformers``' own ``GPT2LMHeadModel`` built from a small ``GPT2Config``, with a
word-level tokenizer trained on the catalogue's titles (nothing from a hub). It is trained to
continue a prompt (``build_prompt``) with the next item's title: the loss is the negative
log-likelihood of the title's tokens and its end marker only, exactly the quantity
``candidate_log_likelihoods`` scores with, averaged per token. ``save_lm`` / ``load_lm`` go through
``save_pretrained`` and ``AutoModelForCausalLM`` / ``AutoTokenizer.from_pretrained``, the path any
downloaded causal LM takes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from ...constants import PAD_ID
from ...data.batch import Batch
from ...data.split import SequenceSplit
from ...models.lm_ranker.prompts import END, PromptFormat, build_prompt, training_text
from ...models.lm_ranker.scoring import encode_words, sequence_log_likelihoods
from ...models.lm_ranker.tokenizer import train_word_tokenizer
from ...seeding import set_seed


@dataclass(frozen=True)
class LMConfig:
    """The small GPT-2 and how it is trained."""

    n_layer: int = 2  # Transformer blocks
    n_embd: int = 64  # model width D
    n_head: int = 2  # attention heads per block
    n_positions: int = 128  # longest token sequence (prompt + title)
    examples_per_user: int = 8  # training prompts per user: the last ones of the training sequence
    epochs: int = 3  # passes over the training prompts
    lr: float = 3e-3  # Adam learning rate
    batch_size: int = 64  # prompts per step
    seed: int = 0  # weights, shuffling

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_embd", "n_head", "n_positions", "examples_per_user", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LMConfig.{name} must be a positive int, got {value!r}.")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}.")


def catalogue_tokenizer(titles: Sequence[str], genres: Sequence[Sequence[str]]):
    """The word-level tokenizer of every title, every genre and the prompt words."""
    words = [*titles, *(" ".join(g) for g in genres), training_text(build_prompt([titles[0]]), titles[0]), "[ ] genres unknown"]
    return train_word_tokenizer(words)


def build_gpt2(tokenizer, config: LMConfig) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 sized by ``config`` for ``tokenizer``'s vocabulary (seeded)."""
    set_seed(config.seed)
    (end_id,) = encode_words(tokenizer, END)
    gpt2 = GPT2Config(vocab_size=len(tokenizer), n_positions=config.n_positions, n_embd=config.n_embd, n_layer=config.n_layer,
                      n_head=config.n_head, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=end_id, bos_token_id=end_id)
    return GPT2LMHeadModel(gpt2)


def training_pairs(split: SequenceSplit, titles: Sequence[str], genres: Sequence[Sequence[str]], fmt: PromptFormat,
                   examples_per_user: int, users: Sequence[int] | None = None) -> list[tuple[str, str]]:
    """(prompt, next title) pairs from the training events only: the last ``examples_per_user`` targets of each user.

    ``titles[c]`` / ``genres[c]`` belong to item id ``c + 1``. Each target's prompt names the
    ``fmt.max_items`` items before it.
    """
    pairs = []
    for user in range(split.num_users) if users is None else users:
        seq = split.train_sequence(int(user))
        for end in range(max(1, len(seq) - examples_per_user), len(seq)):
            history = seq[max(0, end - fmt.max_items):end]
            prompt = build_prompt([titles[i - 1] for i in history], fmt, [genres[i - 1] for i in history])
            pairs.append((prompt, titles[seq[end] - 1]))
    return pairs


def catalogue_pairs(titles: Sequence[str], genres: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """(prompt, title) pairs that describe the catalogue itself: ``"genres : Animation Comedy ; next :"`` -> the title.

    Text known before any interaction: what "pretraining" on item descriptions looks like at this scale.
    """
    return [(f"genres : {' '.join(g) if len(g) else 'unknown'} ; next :", t) for t, g in zip(titles, genres)]


def fit_lm(model: torch.nn.Module, tokenizer, pairs: Sequence[tuple[str, str]], config: LMConfig) -> float:
    """Train ``model`` (its parameters with ``requires_grad``) on (prompt, title) pairs; returns seconds.

    Loss: minus the log-likelihood of each title and its end marker given the prompt, per token.
    """
    if not pairs:
        raise ValueError("no training pairs.")
    end = encode_words(tokenizer, END)
    prompts = [encode_words(tokenizer, p) for p, _ in pairs]
    titles = [encode_words(tokenizer, t) + end for _, t in pairs]
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameter.")
    optimizer = torch.optim.Adam(trainable, lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    model.train()
    start = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(pairs), generator=generator).tolist()
        for s in range(0, len(order), config.batch_size):
            rows = order[s:s + config.batch_size]
            log_likelihood = sequence_log_likelihoods(model, [prompts[r] for r in rows], [titles[r] for r in rows])  # (B,)
            loss = -log_likelihood.sum() / sum(len(titles[r]) for r in rows)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return time.perf_counter() - start


def batch_prompts(batch: Batch, titles: Sequence[str], genres: Sequence[Sequence[str]], fmt: PromptFormat) -> list[str]:
    """One prompt per user of an evaluation batch, from the most recent items of its history (PAD_ID skipped)."""
    prompts = []
    for row in batch.history.tolist():
        items = [i for i in row if i != PAD_ID]
        if not items:
            raise ValueError("a user with an empty history has no prompt.")
        prompts.append(build_prompt([titles[i - 1] for i in items], fmt, [genres[i - 1] for i in items]))
    return prompts


def save_lm(model: torch.nn.Module, tokenizer, folder: Path | str) -> Path:
    """``save_pretrained`` of the model and the tokenizer into ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def load_lm(folder: Path | str, *, attn_implementation: str = "eager"):
    """(model, tokenizer) from a local folder: any causal LM saved with ``save_pretrained`` (nothing is downloaded).

    ``attn_implementation="eager"`` computes the attention weights as a tensor, so
    ``output_attentions=True`` can return them.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {folder}: save a model there with save_lm (save_pretrained) first.")
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, attn_implementation=attn_implementation)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.eval(), tokenizer
