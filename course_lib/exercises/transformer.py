"""Checkers for notebook 05 (the Transformer block).

Each ``check_*`` takes the student's function, prints a pass, a hint or "not answered
yet", and returns None; it never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..layers import TransformerBlock, TransformerConfig, sinusoidal_positions
from ..toy_tasks import TinyCausalLM, greedy_decode
from .core import Mismatch, answered, call, expect, expect_close, forbid, report, run_check

__all__ = ["check_greedy_decode", "check_post_ln_block", "check_sinusoidal_positions"]


def _seeded_weights(module: nn.Module, seed: int) -> nn.Module:
    """``module`` in eval mode with every parameter redrawn from a local generator.

    The same layer on every run whatever the notebook's random state, and torch's global
    generator is never seeded (building the module draws from it; run_check puts that back).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return module.eval()


def check_sinusoidal_positions(fn: Callable[[int, int], Tensor] | None) -> None:
    """Check ``fn(length, d_model)`` against ``P[pos, 2i] = sin(pos / 10000^(2i/D))``, ``P[pos, 2i+1] = cos(...)``."""

    def trial() -> None:
        answered(fn, "sinusoidal")
        for length, d_model in ((6, 4), (10, 8), (3, 16)):
            got = answered(call(fn, length, d_model), "the value returned by your function")
            expected = sinusoidal_positions(length, d_model)
            if isinstance(got, Tensor) and got.shape == expected.shape and not torch.allclose(got.float(), expected, atol=1e-5):
                if got.shape[1] >= 2 and torch.allclose(got[:, 1::2].float(), expected[:, 0::2], atol=1e-5):
                    raise Mismatch("sine and cosine are swapped: even columns 2i hold the sine, odd columns 2i+1 the cosine.")
                i = torch.arange(d_model // 2, dtype=torch.float32)
                wrong_freq = torch.exp(-math.log(10000.0) * i / d_model)  # exponent i/D instead of 2i/D
                if torch.allclose(got[:, 0::2].float(), torch.sin(torch.arange(length)[:, None] * wrong_freq), atol=1e-5):
                    raise Mismatch("the exponent is 2i/D where i indexes the sine/cosine *pair*: "
                                   "column 2i and 2i+1 share the frequency 1/10000^(2i/D).")
            expect_close(got, expected, what=f"your encoding for length={length}, d_model={d_model}",
                         hint="Row pos, column 2i: sin(pos / 10000**(2i/D)); column 2i+1: cos of the same angle. "
                         "Row 0 must read 0, 1, 0, 1, ...", atol=1e-5)

    report(run_check("Exercise 1 (sinusoidal positions)", trial, "Row 0 is 0,1,0,1,... and every value lies in [-1, 1]."))


def check_post_ln_block(fn: Callable[[TransformerBlock, Tensor], Tensor] | None) -> None:
    """Check ``fn(block, x)``, a post-LN forward pass written with the block's own sublayers.

    ``x = norm1(x + attention(x)); x = norm2(x + feed_forward(x))`` (no dropout: eval mode).
    """

    def trial() -> None:
        answered(fn, "post_ln_block")
        block = _seeded_weights(TransformerBlock(TransformerConfig(d_model=16, n_heads=4, dropout=0.0, norm_first=False)), 0)
        x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = block(x)

            def whole_block(*args: object, **kwargs: object) -> Tensor:
                raise Mismatch("your function called the block itself (`block(x)`); write the two post-LN "
                               "steps with its parts: block.attention, block.norm1, block.feed_forward, block.norm2.")

            block.forward = whole_block  # this check's own block: calling it whole is the shortcut
            try:
                got = answered(call(fn, block, x.clone()), "the value returned by your function")
            finally:
                del block.forward
            h = x + block.attention(query=block.norm1(x))
            pre_ln = h + block.feed_forward(block.norm2(h))
            h = block.norm1(x + block.attention(query=x))
            no_second_residual = block.norm2(block.feed_forward(h))
            h = x + block.attention(query=x)
            no_norms = h + block.feed_forward(h)
            h = block.norm1(x + block.attention(query=x))
            ffn_reads_input = block.norm2(h + block.feed_forward(x))

        def same(candidate: Tensor) -> bool:
            return isinstance(got, Tensor) and got.shape == candidate.shape and bool(torch.allclose(got, candidate, atol=1e-5))

        known_mistakes = (
            (pre_ln, "this is pre-LN (normalise the sublayer's input, add the raw x). Post-LN adds first "
                     "and normalises the sum: norm1(x + attention(x))."),
            (no_norms, "no LayerNorm was applied: after each residual addition, normalise the sum "
                       "(block.norm1 after the attention, block.norm2 after the feed-forward network)."),
            (no_second_residual, "the feed-forward sublayer lost its residual connection: add its input back "
                                 "before block.norm2, norm2(h + feed_forward(h))."),
            (ffn_reads_input, "the feed-forward network read the block's input x; it should read h, the output "
                              "of the attention sublayer (after norm1)."),
        )
        for mistake, hint in known_mistakes:
            expect(not same(mistake), hint)
        expect_close(got, expected, what="your block's output",
                     hint="Two post-LN steps: h = block.norm1(x + block.attention(query=x)); "
                     "then block.norm2(h + block.feed_forward(h)).")

    report(run_check("Exercise 2 (post-LN block)", trial, "Your forward pass equals TransformerBlock(norm_first=False)."))


def check_greedy_decode(fn: Callable[[nn.Module, Tensor, int], Tensor] | None) -> None:
    """Check ``fn(model, prompt, n_new)``: autoregressive greedy decoding.

    Append the argmax of the *last* position's logits, ``n_new`` times, rerunning the model
    on everything so far; return prompt + generated tokens (B, L0 + n_new).
    """

    def trial() -> None:
        answered(fn, "decode")
        forbid(fn, ("greedy_decode",), "write the loop: run the model, take the last position's argmax, append it.")
        config = TransformerConfig(d_model=16, n_heads=2, n_layers=1, dropout=0.0, causal=True)
        model = _seeded_weights(TinyCausalLM(vocab_size=9, max_len=12, config=config), 0)
        prompt = torch.tensor([[3, 1, 4, 8], [2, 7, 1, 8]])
        expected = greedy_decode(model, prompt, 5)
        with torch.no_grad():
            got = answered(call(fn, model, prompt.clone(), 5), "the value returned by your function")
        expect(isinstance(got, Tensor), f"return a torch.Tensor, got {type(got).__name__}.")
        expect(
            tuple(got.shape) == tuple(expected.shape),
            f"return the prompt followed by the new tokens, shape {tuple(expected.shape)}; got {tuple(got.shape)}.",
        )
        expect(torch.equal(got[:, :4], prompt), "the output must start with the prompt, unchanged.")
        with torch.no_grad():
            one_shot = model(prompt).argmax(-1)[:, -1:].expand(-1, 5)  # no feedback loop
        if torch.equal(got[:, 4:], one_shot) and not torch.equal(got, expected):
            raise Mismatch("every new token equals the first one: feed each generated token back in "
                           "(torch.cat it to the sequence) before predicting the next.")
        expect(torch.equal(got, expected),
               "at each step run the model on all tokens so far and take logits[:, -1].argmax(-1): "
               "the prediction at the *last* position is the next token.")

    report(run_check("Exercise 3 (greedy decoding)", trial, "That loop is how GPT-style models write."))
