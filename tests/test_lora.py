"""LoRA from scratch (course_lib.models.lm_ranker.lora): starts equal to the frozen model, trains only A and B, equals peft."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from course_lib.models.lm_ranker.lora import LoRALinear, apply_lora, lora_delta, trainable_parameters


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=50, n_positions=16, n_embd=16, n_layer=2, n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config).eval()


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(6, 12)
        self.down = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


def randomise_b(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALinear):
                module.lora_b.copy_(torch.randn(module.lora_b.shape, generator=g) * 0.3)


def copy_into_peft(ours: nn.Module, peft_model: nn.Module) -> None:
    with torch.no_grad():
        for name, module in ours.named_modules():
            if isinstance(module, LoRALinear):
                theirs = peft_model.base_model.model.get_submodule(name)
                theirs.lora_A["default"].weight.copy_(module.lora_a)
                theirs.lora_B["default"].weight.copy_(module.lora_b)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["linear", "conv1d"])
def test_lora_starts_equal_to_the_frozen_layer_and_adds_scaled_ba(seed, kind):
    torch.manual_seed(seed)
    base = nn.Linear(7, 5) if kind == "linear" else Conv1D(5, 7)  # Conv1D(nf=d_out, nx=d_in)
    x = torch.randn(3, 4, 7)
    expected = base(x).detach()
    layer = LoRALinear(base, r=3, alpha=6.0)
    torch.testing.assert_close(layer(x), expected)  # B = 0
    assert torch.equal(layer.lora_b, torch.zeros(5, 3)) and layer.lora_a.abs().sum() > 0
    with torch.no_grad():
        layer.lora_b.normal_()
    weight = base.weight if kind == "linear" else base.weight.T  # (d_out, d_in)
    torch.testing.assert_close(layer(x), x @ weight.T + base.bias + 2.0 * x @ layer.lora_a.T @ layer.lora_b.T)
    torch.testing.assert_close(layer(x), lora_delta(x, layer.lora_a, layer.lora_b, 2.0) + expected)
    merged = layer.merged_weight()
    torch.testing.assert_close(layer(x), x @ merged.T + base.bias if kind == "linear" else x @ merged + base.bias)


def test_only_a_and_b_train():
    model = tiny_gpt2()
    total = sum(p.numel() for p in model.parameters())
    wrapped = apply_lora(model, ["c_attn", "c_fc"], r=2, alpha=4.0)
    assert wrapped == sorted(f"transformer.h.{i}.{part}" for i in range(2) for part in ("attn.c_attn", "mlp.c_fc"))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(n.endswith(("lora_a", "lora_b")) for n in names)
    per_block = 2 * (16 + 48) + 2 * (16 + 64)  # r (d_in + d_out) for c_attn (16 -> 48) and c_fc (16 -> 64)
    assert trainable_parameters(model) == 2 * per_block < total
    randomise_b(model, 0)
    model(input_ids=torch.tensor([[1, 2, 3, 4]])).logits.sum().backward()
    assert all((p.grad is not None) == p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("seed", [0, 1])
def test_lora_on_gpt2_equals_peft(seed):
    ours, reference = tiny_gpt2(seed), tiny_gpt2(seed)
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(seed))
    frozen = ours(input_ids=ids).logits.detach()
    targets = ["c_attn", "c_proj", "c_fc"]
    apply_lora(ours, targets, r=4, alpha=8.0)
    torch.testing.assert_close(ours(input_ids=ids).logits, frozen)  # starts equal (B = 0)
    randomise_b(ours, seed)
    peft_model = get_peft_model(reference, LoraConfig(r=4, lora_alpha=8.0, target_modules=targets, fan_in_fan_out=True, lora_dropout=0.0))
    copy_into_peft(ours, peft_model)
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids).logits, peft_model(input_ids=ids).logits)
        assert not torch.allclose(ours(input_ids=ids).logits, frozen, atol=1e-3)  # the update is really there
    assert trainable_parameters(ours) == sum(p.numel() for p in peft_model.parameters() if p.requires_grad)


def test_lora_on_linear_layers_equals_peft():
    torch.manual_seed(3)
    ours, reference = TwoLayers(), TwoLayers()
    reference.load_state_dict(ours.state_dict())
    apply_lora(ours, ["up", "down"], r=2, alpha=3.0)
    randomise_b(ours, 1)
    peft_model = get_peft_model(reference, LoraConfig(r=2, lora_alpha=3.0, target_modules=["up", "down"], lora_dropout=0.0))
    copy_into_peft(ours, peft_model)
    x = torch.randn(5, 6)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), peft_model(x))


@pytest.mark.parametrize("r", [0, -1, 1.5, True, "4"])
def test_bad_rank(r):
    with pytest.raises(ValueError, match="rank r must be an int >= 1"):
        LoRALinear(nn.Linear(3, 3), r=r)
    with pytest.raises(ValueError, match="rank r must be an int >= 1"):
        apply_lora(TwoLayers(), ["up"], r=r)


def test_bad_targets():
    with pytest.raises(ValueError, match=r"no nn.Linear or Conv1D layer named \['q_proj'\].*'c_attn'"):
        apply_lora(tiny_gpt2(), ["q_proj"], r=2)
    with pytest.raises(ValueError, match="non-empty list"):
        apply_lora(TwoLayers(), "up", r=2)
    with pytest.raises(ValueError, match="non-empty list"):
        apply_lora(TwoLayers(), [], r=2)
    with pytest.raises(TypeError, match="nn.Linear or a GPT-2 Conv1D"):
        LoRALinear(nn.Embedding(5, 3), r=2)
    model = TwoLayers()
    with pytest.raises(ValueError):
        apply_lora(model, ["up", "sideways"], r=2)
    assert isinstance(model.up, nn.Linear), "a failed call changes nothing"
