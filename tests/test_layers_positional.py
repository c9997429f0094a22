"""Positional encodings: shapes and values at hand-computed points."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.layers import LearnedPositionalEncoding, SinusoidalPositionalEncoding, sinusoidal_positions


def test_sinusoidal_shape_and_hand_computed_values() -> None:
    p = sinusoidal_positions(50, 4)
    assert p.shape == (50, 4) and p.dtype == torch.float32
    torch.testing.assert_close(p[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))  # sin 0, cos 0, ...
    # D = 4: pair i=0 has frequency 1, pair i=1 has frequency 1/10000^(2/4) = 1/100.
    torch.testing.assert_close(p[1], torch.tensor([math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)]))
    torch.testing.assert_close(p[2, 2], torch.tensor(math.sin(0.02)))
    torch.testing.assert_close(p[49, 1], torch.tensor(math.cos(49.0)))
    assert p.abs().max() <= 1.0


def test_sinusoidal_d8_and_odd_d() -> None:
    p = sinusoidal_positions(10, 8)
    # column 6 = pair i=3: frequency 1/10000^(6/8) = 1/1000
    torch.testing.assert_close(p[7, 6], torch.tensor(math.sin(7 / 1000)))
    torch.testing.assert_close(p[7, 7], torch.tensor(math.cos(7 / 1000)))
    odd = sinusoidal_positions(5, 5)
    assert odd.shape == (5, 5)
    torch.testing.assert_close(odd[3, 4], torch.tensor(math.sin(3 / 10000 ** (4 / 5))))
    # every column c: sin(pos / 10000^(2*(c//2)/D)), shifted by pi/2 (a cosine) in odd columns
    by_hand = torch.tensor(
        [[math.sin(pos / 10000 ** (2 * (c // 2) / 5) + (math.pi / 2 if c % 2 else 0.0)) for c in range(5)] for pos in range(5)]
    )
    torch.testing.assert_close(odd, by_hand, atol=1e-6, rtol=1e-5)


def test_sinusoidal_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="positive int"):
        sinusoidal_positions(0, 4)
    with pytest.raises(ValueError, match="positive int"):
        sinusoidal_positions(4, 2.0)  # type: ignore[arg-type]


def test_sinusoidal_module_adds_encoding_and_has_no_parameters() -> None:
    module = SinusoidalPositionalEncoding(6, max_len=20)
    assert list(module.parameters()) == [] and "encoding" not in module.state_dict()
    x = torch.randn(3, 7, 6)
    torch.testing.assert_close(module(x), x + sinusoidal_positions(7, 6))
    # explicit positions (e.g. decoding with an offset of 5)
    torch.testing.assert_close(module(x, positions=torch.arange(5, 12)), x + sinusoidal_positions(12, 6)[5:])
    with pytest.raises(ValueError, match="max_len"):
        module(torch.randn(1, 21, 6))


def test_learned_module_shapes_positions_and_gradients() -> None:
    torch.manual_seed(0)
    module = LearnedPositionalEncoding(4, max_len=10)
    assert module.embedding.weight.shape == (10, 4)
    x = torch.zeros(2, 5, 4)
    out = module(x)
    assert out.shape == (2, 5, 4)
    torch.testing.assert_close(out[1], module.embedding.weight[:5])
    per_sequence = torch.tensor([[0, 1, 2, 3, 4], [3, 4, 5, 6, 7]])  # (B, L)
    torch.testing.assert_close(module(x, positions=per_sequence)[1], module.embedding.weight[3:8])
    out.sum().backward()
    assert module.embedding.weight.grad[:5].abs().sum() > 0 and module.embedding.weight.grad[5:].abs().sum() == 0
    with pytest.raises(ValueError, match="max_len"):
        module(torch.zeros(1, 11, 4))
    with pytest.raises(TypeError, match="integer"):
        module(x, positions=torch.zeros(5))


def test_slots_counted_from_the_newest_or_the_oldest_event():
    from course_lib.layers import positions_from_newest, positions_from_oldest

    assert positions_from_newest(4).tolist() == [3, 2, 1, 0]
    real = torch.tensor([[False, False, True, True, True], [True, True, True, True, True], [False] * 5])
    assert positions_from_oldest(real).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match="bool"):
        positions_from_oldest(real.long())
