"""The checkers of notebook 05: pass on the reference, hint on typical mistakes,
"not answered" on the stub, and never raise."""

from __future__ import annotations

import math

import pytest
import torch
from checker_support import not_answered

from course_lib.exercises.transformer import check_greedy_decode, check_post_ln_block, check_sinusoidal_positions
from course_lib.layers import sinusoidal_positions
from course_lib.toy_tasks import greedy_decode


def _decode_from_first_position(model, prompt, n_new):
    tokens = prompt
    for _ in range(n_new):
        tokens = torch.cat([tokens, model(tokens)[:, 0].argmax(-1, keepdim=True)], dim=1)  # wrong position
    return tokens


def _decode(model, prompt, n_new):
    tokens = prompt
    for _ in range(n_new):
        tokens = torch.cat([tokens, model(tokens)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return tokens


def _verdict(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out.strip()


@pytest.mark.parametrize(
    "checker, right, wrong, hint",
    [
        (check_sinusoidal_positions, sinusoidal_positions,
         lambda n, d: sinusoidal_positions(n, d).roll(1, dims=1), "swapped"),
        (check_greedy_decode, _decode, lambda model, prompt, n: _decode_from_first_position(model, prompt, n), "last"),
    ],
)
def test_checkers_judge_answers(checker, right, wrong, hint, capsys) -> None:
    checker(right)
    assert _verdict(capsys).startswith("✅")
    checker(wrong)
    message = _verdict(capsys)
    assert message.startswith("❌") and hint in message, message
    checker(not_answered)
    assert _verdict(capsys).startswith("⏳")
    checker(None)
    assert _verdict(capsys).startswith("⏳")


def test_sinusoidal_checker_spots_the_wrong_exponent(capsys) -> None:
    def wrong(length: int, d_model: int) -> torch.Tensor:
        out = torch.zeros(length, d_model)
        pos = torch.arange(length)[:, None].float()
        freq = torch.exp(-math.log(10000.0) * torch.arange(d_model // 2) / d_model)  # i/D, not 2i/D
        out[:, 0::2], out[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        return out

    check_sinusoidal_positions(wrong)
    assert "2i/D" in _verdict(capsys)


def _post_ln(block, x):
    h = block.norm1(x + block.attention(query=x))
    return block.norm2(h + block.feed_forward(h))


def _pre_ln(block, x):
    h = x + block.attention(query=block.norm1(x))
    return h + block.feed_forward(block.norm2(h))


def _no_norms(block, x):
    h = x + block.attention(query=x)
    return h + block.feed_forward(h)


def _no_second_residual(block, x):
    return block.norm2(block.feed_forward(block.norm1(x + block.attention(query=x))))


def _ffn_reads_input(block, x):
    return block.norm2(block.norm1(x + block.attention(query=x)) + block.feed_forward(x))


def test_post_ln_checker_passes_the_right_order(capsys) -> None:
    check_post_ln_block(_post_ln)
    assert _verdict(capsys).startswith("✅")
    check_post_ln_block(lambda block, x: block(x))
    assert "called the block itself" in _verdict(capsys), "the whole block is the shortcut the exercise forbids"
    check_post_ln_block(not_answered)
    assert _verdict(capsys).startswith("⏳")


@pytest.mark.parametrize(
    ("answer", "hint"),
    [(_pre_ln, "this is pre-LN"), (_no_norms, "no LayerNorm"), (_no_second_residual, "lost its residual"),
     (_ffn_reads_input, "read the block's input x"), (lambda block, x: x + block.attention(query=x), "differs")],
    ids=["pre-LN", "no-norms", "no-second-residual", "ffn-reads-input", "attention-only"],
)
def test_post_ln_checker_names_each_wrong_order(capsys, answer, hint) -> None:
    check_post_ln_block(answer)
    out = _verdict(capsys)
    assert out.startswith("❌") and hint in out, out


def test_decode_checker_spots_the_missing_feedback(capsys) -> None:
    def no_feedback(model, prompt, n_new):
        first = model(prompt)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        return torch.cat([prompt, first.expand(-1, n_new)], dim=1)

    check_greedy_decode(no_feedback)
    assert "feed each generated token back" in _verdict(capsys)
    check_greedy_decode(lambda model, prompt, n_new: _decode(model, prompt, n_new)[:, prompt.shape[1]:])
    assert "prompt followed by" in _verdict(capsys)
    check_greedy_decode(lambda model, prompt, n_new: greedy_decode(model, prompt, n_new))
    assert "calls `greedy_decode`" in _verdict(capsys)
