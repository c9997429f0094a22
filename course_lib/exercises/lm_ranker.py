"""Checkers for notebook 17 (a language model as ranker).

* :func:`check_lora_forward` - a frozen linear layer plus the low-rank update (alpha / r) B A x;
* :func:`check_candidate_log_likelihood` - the log-likelihood of a candidate's tokens from a
  causal LM's logits (each position predicts the next token).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .core import Mismatch, answered, call, expect, expect_close, report, run_check


def _lora_case(seed: int):
    g = torch.Generator().manual_seed(seed)
    d_in, d_out, r = 6 + seed, 5 + 2 * seed, 2 + seed
    x = torch.randn(3, 4, d_in, generator=g)  # (B, T, d_in)
    weight, bias = torch.randn(d_out, d_in, generator=g), torch.randn(d_out, generator=g)
    lora_a, lora_b = torch.randn(r, d_in, generator=g), torch.randn(d_out, r, generator=g)
    alpha = 4.0 + seed
    return x, weight, bias, lora_a, lora_b, alpha, r


def check_lora_forward(student: Callable[..., torch.Tensor]) -> None:
    """Check ``student(x (..., d_in), weight (d_out, d_in), bias (d_out,), lora_a (r, d_in), lora_b (d_out, r), alpha, r)``."""

    def trial() -> None:
        for seed in range(3):
            x, weight, bias, lora_a, lora_b, alpha, r = _lora_case(seed)
            got = answered(call(student, x, weight, bias, lora_a, lora_b, alpha, r), "the layer's output")
            expected = x @ weight.T + bias + (alpha / r) * (x @ lora_a.T @ lora_b.T)
            if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
                given = getattr(got, "shape", type(got).__name__)
                raise Mismatch(f"return a tensor of shape {tuple(expected.shape)} (..., d_out), got {given}.")
            expect(not torch.allclose(got, x @ weight.T + bias + x @ lora_a.T @ lora_b.T, atol=1e-4),
                   "the update is scaled: multiply B A x by alpha / r.")
            expect(not torch.allclose(got, x @ weight.T + bias, atol=1e-4),
                   "that is the frozen layer alone; add the low-rank update (alpha / r) B A x.")
            expect_close(got, expected, what="W x + b + (alpha / r) B A x",
                         hint="x @ weight.T + bias + (alpha / r) * (x @ lora_a.T) @ lora_b.T")
        x, weight, bias, lora_a, _, alpha, r = _lora_case(0)
        zero_b = torch.zeros(weight.shape[0], r)
        got = call(student, x, weight, bias, lora_a, zero_b, alpha, r)
        expect_close(got, x @ weight.T + bias, what="the output with B = 0 (LoRA's initial state)",
                     hint="with B = 0 the layer must equal the frozen one.")

    report(run_check("Exercise 1 (the LoRA forward pass)", trial, "It matches a frozen layer plus (alpha / r) B A x."))


def _reference_log_likelihood(logits: torch.Tensor, tokens: torch.Tensor, start: int) -> torch.Tensor:
    log_probs = logits.log_softmax(dim=-1)  # (T, V)
    return sum(log_probs[t - 1, tokens[t]] for t in range(start, len(tokens)))


def check_candidate_log_likelihood(student: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]) -> None:
    """Check ``student(logits (T, V), tokens (T,), start) -> log P(tokens[start:] | tokens[:start])``."""

    def trial() -> None:
        # worked case: 3 tokens, vocabulary 2; the candidate is tokens[1:] = [1, 0]
        logits = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]])
        tokens = torch.tensor([0, 1, 0])
        got = float(answered(call(student, logits, tokens, 1), "the log-likelihood"))
        expected = float(_reference_log_likelihood(logits, tokens, 1))
        shifted_wrong = float(logits.log_softmax(-1)[1, 1] + logits.log_softmax(-1)[2, 0])  # logits t scored for token t
        expect(abs(got - shifted_wrong) > 1e-4, "the logits at position t predict token t + 1: score token t with logits[t - 1].")
        expect(abs(got - float(logits[0, 1] + logits[1, 0])) > 1e-4,
               "raw logits are not log-probabilities: take log_softmax over the vocabulary first.")
        expect(abs(got - expected) < 1e-4, f"expected {expected:.4f} (log 0.5 + log(e^2 / (e^2 + 1))), got {got:.4f}.")
        for seed in range(3):
            g = torch.Generator().manual_seed(seed)
            length, vocab, start = 7 + seed, 11, 3 + seed
            logits = torch.randn(length, vocab, generator=g) * 3
            tokens = torch.randint(0, vocab, (length,), generator=g)
            got = torch.as_tensor(call(student, logits, tokens, start), dtype=torch.float32)
            expect(got.numel() == 1, f"return one number (a sum over the candidate's tokens), got shape {tuple(got.shape)}.")
            expect_close(got.reshape(()), _reference_log_likelihood(logits, tokens, start).float(), what="the sum of log-probabilities",
                         hint="sum over t = start .. T-1 of log_softmax(logits[t - 1])[tokens[t]].")

    report(run_check("Exercise 2 (a candidate's log-likelihood from logits)", trial, "It matches the sum of next-token log-probabilities."))
