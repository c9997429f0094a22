"""Notebook 13's checkers: the reference answers pass, typical mistakes get a hint, stubs are 'not answered'."""

from __future__ import annotations

import torch

from course_lib.data.item_features import MetadataFeatures
from course_lib.exercises.capstone import _share_case, check_candidate_over_interests, check_explanation_share
from course_lib.explain import mass_on_truth, uniform_mass_on_truth
from course_lib.models.capstone import CapstoneConfig, CapstoneRecommender
from course_lib.models.metadata_encoder import MetadataEncoderConfig, MetadataItemEncoder


def right_interests(interests, items):
    logits = interests @ items.T  # (B, K + 1, I)
    return torch.logsumexp(logits, dim=1), torch.softmax(logits, dim=1).transpose(1, 2)


def over_items(interests, items):
    logits = interests @ items.T
    return torch.logsumexp(logits, dim=1), torch.softmax(logits, dim=2).transpose(1, 2)  # the wrong axis


def mean_of_interests(interests, items):
    logits = interests @ items.T
    return logits.mean(dim=1), torch.softmax(logits, dim=1).transpose(1, 2)


def stub(*args):
    raise NotImplementedError


def right_share(weights, interests, target):
    same = interests == target[:, None]
    return float((weights * same).sum(1).mean()), float((same.sum(1) / (interests != -2).sum(1)).mean())


def uniform_over_padding(weights, interests, target):
    same = interests == target[:, None]
    return float((weights * same).sum(1).mean()), float(same.mean(1).mean())


def test_interest_checker(capsys):
    check_candidate_over_interests(right_interests)
    assert "✅" in capsys.readouterr().out
    check_candidate_over_interests(over_items)
    assert "sum to 1 over the K + 1 interests" in capsys.readouterr().out
    check_candidate_over_interests(mean_of_interests)
    assert "logsumexp" in capsys.readouterr().out
    check_candidate_over_interests(stub)
    assert "⏳" in capsys.readouterr().out


def test_the_reference_answer_is_the_model(capsys):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    features = MetadataFeatures(torch.randn(8, 4, generator=g), torch.zeros(8, 19), torch.zeros(8, dtype=torch.long))
    encoder = MetadataItemEncoder(MetadataEncoderConfig(7, text_dim=4, d_model=8), features)
    model = CapstoneRecommender(CapstoneConfig(7, d_model=8, n_heads=2, num_interests=2, max_len=5), encoder)

    def via_model(interests, items):
        return model.interest_item_scores(interests, items), model.interest_weights(interests, items)

    def via_the_speed_path(interests, items):
        return model.interest_item_scores_fast(interests, items), model.interest_weights(interests, items)

    for answer in (via_model, via_the_speed_path):
        check_candidate_over_interests(answer)
        assert "✅" in capsys.readouterr().out


def test_the_share_checkers_reference_is_what_explain_computes():
    """The checker says its answer "matches course_lib.explain.interest_alignment": the same two means."""
    for seed in (0, 1, 2):
        weights, interests, target, share, uniform = _share_case(seed)
        same = torch.from_numpy(interests == target[:, None])
        real = torch.from_numpy(interests != -2)
        assert abs(mass_on_truth(torch.from_numpy(weights), same, real).mean().item() - share) < 1e-9
        assert abs(uniform_mass_on_truth(same, real).mean().item() - uniform) < 1e-9


def test_share_checker(capsys):
    check_explanation_share(right_share)
    assert "✅" in capsys.readouterr().out
    check_explanation_share(uniform_over_padding)
    assert "padding -2 excluded" in capsys.readouterr().out
    check_explanation_share(lambda w, i, t: None)
    assert "forget `return`" in capsys.readouterr().out
