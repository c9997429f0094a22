"""The reversal toy task, the tiny causal model and greedy decoding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.constants import PAD_ID
from course_lib.layers import TransformerConfig
from course_lib.toy_tasks import ReversalTask, TinyCausalLM, greedy_decode


def test_reversal_samples_have_the_documented_layout() -> None:
    task = ReversalTask(length=5, n_symbols=7)
    seqs = task.sample(64, torch.Generator().manual_seed(0))
    assert seqs.shape == (64, 11) and seqs.dtype == torch.long
    assert task.sep_id == 8 and task.vocab_size == 9
    assert torch.all(seqs[:, 5] == task.sep_id)
    x, y = seqs[:, :5], seqs[:, 6:]
    assert torch.all((x >= 1) & (x <= 7)) and not (x == PAD_ID).any()
    torch.testing.assert_close(y, x.flip(1))
    assert task.answer_positions().tolist() == [5, 6, 7, 8, 9]
    assert task.expected_keys().tolist() == [4, 3, 2, 1, 0]
    # answer position L + i predicts token L + 1 + i, which is input token L - 1 - i
    for q, k in zip(task.answer_positions(), task.expected_keys()):
        assert torch.equal(seqs[:, q + 1], seqs[:, k])


def test_reversal_sampling_is_reproducible() -> None:
    task = ReversalTask()
    a = task.sample(10, torch.Generator().manual_seed(3))
    b = task.sample(10, torch.Generator().manual_seed(3))
    c = task.sample(10, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def _model(seed: int = 0) -> TinyCausalLM:
    torch.manual_seed(seed)
    task = ReversalTask(length=4, n_symbols=5)
    config = TransformerConfig(d_model=16, n_heads=2, n_layers=2, dropout=0.0, causal=True)
    return TinyCausalLM(task.vocab_size, task.seq_len, config).eval()


def test_tiny_model_is_causal_and_returns_weights() -> None:
    model = _model()
    tokens = ReversalTask(length=4, n_symbols=5).sample(3, torch.Generator().manual_seed(0))
    logits, weights = model(tokens, return_attention=True)
    assert logits.shape == (3, 9, 7) and weights.shape == (3, 2, 2, 9, 9)
    changed = tokens.clone()
    changed[:, 6:] = 1
    torch.testing.assert_close(model(changed)[:, :6], logits[:, :6], atol=1e-6, rtol=1e-5)


def test_tiny_model_needs_a_causal_config() -> None:
    with pytest.raises(ValueError, match="causal"):
        TinyCausalLM(7, 9, TransformerConfig(d_model=16, n_heads=2, causal=False))


class _NextIsPlusOne(nn.Module):
    """A stand-in model whose logits always favour (last seen token + 1)."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(tokens + 1, 20).float()  # (B, L, V)


def test_greedy_decode_appends_one_argmax_at_a_time() -> None:
    out = greedy_decode(_NextIsPlusOne(), torch.tensor([[3, 5], [1, 1]]), n_new=3)
    assert out.tolist() == [[3, 5, 6, 7, 8], [1, 1, 2, 3, 4]]


def test_greedy_decode_matches_teacher_forcing_for_a_trained_guess() -> None:
    model = _model(1)
    prompt = ReversalTask(length=4, n_symbols=5).sample(4, torch.Generator().manual_seed(2))[:, :5]
    out = greedy_decode(model, prompt, n_new=4)
    assert torch.equal(out[:, :5], prompt)
    # each generated token is the argmax of the model run on the tokens before it
    with torch.no_grad():
        assert torch.equal(model(out[:, :-1]).argmax(-1)[:, 4:], out[:, 5:])


def _train_briefly(seed: int, steps: int = 15) -> TinyCausalLM:
    task = ReversalTask(length=4, n_symbols=5)
    torch.manual_seed(seed)
    model = TinyCausalLM(task.vocab_size, task.seq_len, TransformerConfig(d_model=16, n_heads=2, dropout=0.1, causal=True))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.Generator().manual_seed(seed)
    answers = task.answer_positions()
    for _ in range(steps):
        batch = task.sample(32, data)
        logits = model(batch[:, :-1])
        loss = nn.functional.cross_entropy(logits[:, answers].flatten(0, 1), batch[:, answers + 1].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def test_training_is_deterministic_given_the_seed() -> None:
    a, b, c = _train_briefly(0), _train_briefly(0), _train_briefly(1)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.head.weight, c.head.weight)
