"""Bad input and faults, the way a student, a damaged file or a mixed-up notebook gives them.

One regression test (or a small group) per defect found by probing the course (issue 15); each
failed on the code as it was before and states what the input now gets: a clear error that
names what was expected, or a defined result. Defects 1 and 2 (data loss) are tested in
test_output_folder.py and test_data_movielens.py, defect 9 (the checkers) in
test_checkers_bad_answers.py, the caches and downloads in test_caches_and_downloads.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from factories import TINY_I as I
from factories import TINY_L as L
from factories import history_batch, split_of, tiny_metadata, tiny_model

from course_lib import PAD_ID
from course_lib.attention import scaled_dot_product_attention
from course_lib.checkpoints import load_capstone, save_capstone
from course_lib.data import Batch, TrainingExamples, evaluation_batches, training_pairs, training_windows
from course_lib.data.item_features import MetadataFeatures
from course_lib.data.shopworld import ShopWorldConfig
from course_lib.explain import erasure_importance
from course_lib.metrics import evaluate
from course_lib.models import (
    DIN,
    BERT4RecConfig,
    DINConfig,
    GRURec,
    GRURecConfig,
    MatrixFactorization,
    MetadataEncoderConfig,
    MFConfig,
    Popularity,
    TextItemEncoderConfig,
)
from course_lib.models.multimodal.text_encoder import TextEncoderConfig
from course_lib.recommend import ItemCatalogue, recommend
from course_lib.training import TrainConfig, fit

ATTENTION_MODELS = ["SASRec", "SASRec+time", "SASRec+text", "DIN", "MultiInterest", "Capstone"]


def other_models() -> dict[str, object]:
    return {
        "Pop": Popularity(torch.arange(I + 1).float()),
        "MF": MatrixFactorization(MFConfig(4, I, d_model=4)),
        "GRU": GRURec(GRURecConfig(I, d_model=4)),
    }


def small_split():
    return split_of([(u, item, 1000 * t) for u in range(4) for t, item in enumerate(range(1 + u, 8 + u))], catalogue=np.arange(1, I + 1))


def titles(n: int = I) -> ItemCatalogue:
    return ItemCatalogue(tuple(["<pad>"] + [f"item {i}" for i in range(1, n + 1)]))


def right_aligned_batch() -> Batch:
    g = torch.Generator().manual_seed(1)
    history = torch.randint(1, I + 1, (4, L), generator=g)
    history[1, :3] = PAD_ID
    times = 1_000 + torch.cumsum(torch.randint(1, 5_000, (4, L), generator=g), dim=1)
    return history_batch(history, times)


# ---------------------------------------------------------------- defect 3: NaN scores, damaged checkpoints


def test_recommend_refuses_nan_scores_instead_of_ranking_those_items_first():
    model = tiny_model("SASRec")
    with torch.no_grad():
        model.item_encoder.weight[[12, 15, 18]] = float("nan")  # three damaged rows, none in user 2's history
    with pytest.raises(ValueError, match=r"3 of 20 items a NaN or infinite score \(item ids \[12, 15, 18\]\)"):
        recommend(model, small_split(), titles(), 2, k=5)


def test_recommend_refuses_a_model_whose_every_score_is_nan_instead_of_returning_nothing():
    model = tiny_model("Capstone")
    with torch.no_grad():
        model.interest_queries.fill_(float("nan"))
    with pytest.raises(ValueError, match="20 of 20 items a NaN"):
        recommend(model, small_split(), titles(), 2, k=5)


def test_load_capstone_refuses_a_file_with_a_flipped_exponent_bit(tmp_path):
    path = save_capstone(tiny_model("Capstone"), tmp_path / "capstone.pt")
    payload = torch.load(path, weights_only=True)
    name = next(n for n, v in payload["state_dict"].items() if v.is_floating_point() and v.numel() > 1)
    payload["state_dict"][name].view(torch.int32).view(-1)[0] |= 0x7F800000  # every exponent bit set: inf or NaN
    torch.save(payload, path)
    with pytest.raises(ValueError, match=f"damaged: weight\\(s\\) \\['{name}'\\] hold NaN or inf"):
        load_capstone(path, tiny_metadata())


# ---------------------------------------------------------------- defect 4: fit reports training that did not happen


def test_fit_refuses_an_empty_training_set_instead_of_reporting_a_loss_of_zero():
    split = small_split()
    empty = TrainingExamples(users=torch.zeros(0, dtype=torch.long), history=torch.zeros(0, 0, dtype=torch.long),
                             history_times=torch.zeros(0, 0, dtype=torch.long), targets=torch.zeros(0, dtype=torch.long))
    model = MatrixFactorization(MFConfig(split.num_users, I, d_model=4))
    with pytest.raises(ValueError, match="no training examples"):
        fit(model, empty, evaluation_batches(split, "valid"), config=TrainConfig(epochs=3, progress=False), device="cpu")


def test_fit_refuses_a_generator_that_would_be_empty_after_the_first_epoch():
    split = small_split()
    once = (batch for batch in training_pairs(split).batches(8))
    model = MatrixFactorization(MFConfig(split.num_users, I, d_model=4))
    with pytest.raises(TypeError, match="TrainingExamples"):
        fit(model, once, evaluation_batches(split, "valid"), config=TrainConfig(epochs=3, progress=False), device="cpu")


@pytest.mark.parametrize("bad", [
    dict(grad_clip=0.0), dict(grad_clip=-1.0), dict(grad_clip=math.nan), dict(epochs=-5), dict(lr=math.nan),
    dict(lr=math.inf), dict(weight_decay=math.nan), dict(weight_decay=-0.1), dict(warmup_epochs=math.inf), dict(max_seconds=0),
])
def test_train_config_refuses_settings_that_would_train_nothing_or_nan(bad):
    with pytest.raises(ValueError, match=f"TrainConfig.{next(iter(bad))}"):
        TrainConfig(**bad)


@pytest.mark.parametrize("name", ["SASRec", "DIN", "Capstone", "MultiInterest", "MF", "GRU"])
def test_a_batch_without_targets_is_named_instead_of_a_nan_loss(name):
    model = other_models()[name] if name in ("MF", "GRU") else tiny_model(name)
    batch = right_aligned_batch()
    empty = Batch(users=batch.users, history=batch.history, history_times=batch.history_times,
                  seq_targets=torch.full_like(batch.history, PAD_ID))
    with pytest.raises(ValueError, match="this batch has no targets"):
        model.loss(empty, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- defect 5: model, split, catalogue, features that do not belong together


def test_recommend_refuses_a_catalogue_of_another_dataset():
    model, split = tiny_model("SASRec"), small_split()
    with pytest.raises(ValueError, match="the catalogue describes 30 items but the split has 20"):
        recommend(model, split, titles(30), 2, k=5)
    renumbered = ItemCatalogue(titles().titles, item_ids=np.concatenate([[-1], np.arange(101, 101 + I)]))
    with pytest.raises(ValueError, match="number their items differently"):
        recommend(model, split, renumbered, 2, k=5)


def test_recommend_refuses_a_split_of_another_dataset():
    other = split_of([(u, item, t) for u in range(3) for t, item in enumerate(range(1, 31))])  # 30 items
    with pytest.raises(ValueError, match="the model ranks 20 items but the split has 30"):
        recommend(tiny_model("SASRec"), other, titles(30), 1, k=5)


def test_load_capstone_refuses_features_of_another_world(tmp_path):
    path = save_capstone(tiny_model("Capstone"), tmp_path / "capstone.pt")
    features = tiny_metadata()
    other = MetadataFeatures(text=features.text, genres=features.genres.flip(0), year_buckets=features.year_buckets)
    with pytest.raises(ValueError, match="saved with other item features"):
        load_capstone(path, other)
    load_capstone(path, features)  # its own features still load


# ---------------------------------------------------------------- defect 6: left-aligned histories


@pytest.mark.parametrize("name", ["SASRec", "SASRec+time", "Capstone", "DIN+recency"])
def test_left_aligned_histories_are_refused_by_models_that_read_the_newest_slot(name):
    model = DIN(DINConfig(I, d_model=8, recency=True, max_len=L)) if name == "DIN+recency" else tiny_model(name)
    split = small_split()
    left = evaluation_batches(split, "test", max_len=L, align="left")[0]
    with pytest.raises(ValueError, match="right-aligned histories"):
        model.score_all(left)
    right = evaluation_batches(split, "test", max_len=L)[0]
    assert torch.isfinite(model.score_all(right)).all()


def test_erasure_removes_the_event_and_keeps_the_history_right_aligned():
    model = tiny_model("SASRec")
    batch = right_aligned_batch()
    targets = torch.tensor([1, 2, 3, 4])
    importance = erasure_importance(model, batch, targets)
    with torch.no_grad():
        full = model.score(batch, targets[:, None])[:, 0]
        without_newest = torch.cat([torch.zeros_like(batch.history[:, :1]), batch.history[:, :-1]], dim=1)
        times = torch.cat([torch.zeros_like(batch.history_times[:, :1]), batch.history_times[:, :-1]], dim=1)
        dropped = model.score(history_batch(without_newest, times), targets[:, None])[:, 0]
    torch.testing.assert_close(importance[:, -1], full - dropped)


# ---------------------------------------------------------------- defect 7: negative ids and PAD_ID as candidates


@pytest.mark.parametrize("name", ATTENTION_MODELS + ["Pop", "MF", "GRU"])
@pytest.mark.parametrize("bad", [-1, PAD_ID, I + 1])
def test_candidates_must_be_real_items(name, bad):
    model = other_models()[name] if name in ("Pop", "MF", "GRU") else tiny_model(name)
    batch = right_aligned_batch()
    items = torch.randint(1, I + 1, (4, 3))
    items[2, 1] = bad
    with pytest.raises(ValueError, match=rf"items must be item ids in 1\.\.{I} \(PAD_ID = 0 is not an item\)"):
        model.score(batch, items)
    if name in ATTENTION_MODELS:
        with pytest.raises(ValueError, match=rf"1\.\.{I}"):
            model.attention(batch, items)


def test_mf_names_the_valid_user_range():
    model = other_models()["MF"]
    batch = right_aligned_batch()
    with pytest.raises(ValueError, match=r"user indices must lie in 0\.\.3"):
        model.score_all(Batch(users=torch.tensor([0, 4]), history=batch.history[:2], history_times=batch.history_times[:2]))


# ---------------------------------------------------------------- defect 8: the split's input


@pytest.mark.parametrize("column", ["user", "item", "timestamp"])
def test_the_split_refuses_missing_values_instead_of_sorting_them_first(column):
    frame = pd.DataFrame({"user": [1, 1, 1, 1], "item": [5, 6, 7, 8], "timestamp": [10, 20, 30, 40]}, dtype=float)
    frame.loc[2, column] = np.nan
    with pytest.raises(ValueError, match=rf"interactions\['{column}'\] is missing \(NaN/None\) in 1 row\(s\), the first at row 2"):
        split_of(frame.itertuples(index=False))


def test_the_split_refuses_an_empty_table():
    with pytest.raises(ValueError, match="interactions is empty"):
        split_of([])


# ---------------------------------------------------------------- defect 10: attention functions, configs


def test_attention_over_zero_keys_gives_zeros_like_torch():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 0, 4), torch.randn(2, 0, 5)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert weights.shape == (2, 3, 0) and torch.all(out == 0)


@pytest.mark.parametrize("scale", [math.nan, math.inf, "0.5"])
def test_attention_refuses_a_scale_that_is_not_a_finite_number(scale):
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="scale must be a finite number"):
        scaled_dot_product_attention(q, q, q, scale=scale)


@pytest.mark.parametrize("bad", [
    dict(num_users=-5), dict(stay_prob=1.5), dict(noise_prob=2.0), dict(image_size=0), dict(min_events=2),
    dict(image_noise=math.nan), dict(seed=-1), dict(num_users=2.5), dict(noise_words=-1),
])
def test_shopworld_config_names_the_field_it_refuses(bad):
    with pytest.raises(ValueError, match=f"ShopWorldConfig.{next(iter(bad))}"):
        ShopWorldConfig(**bad)


def test_training_windows_never_give_a_batch_without_targets():
    """The builders' side of the no-target check: every window fit sees has a target."""
    windows = training_windows(small_split(), max_len=L)
    assert bool((windows.seq_targets != PAD_ID).any(dim=1).all())


def test_evaluate_names_an_empty_list_of_batches():
    split = split_of([(0, 1, 0), (0, 2, 1)])  # one user with two events: nobody is evaluable
    assert evaluation_batches(split, "test") == []
    with pytest.raises(ValueError, match="evaluate got no batches"):
        evaluate(MatrixFactorization(MFConfig(1, 2, d_model=2)), [])


@pytest.mark.parametrize("config, field, value", [
    (GRURecConfig, "dropout", 1.0), (GRURecConfig, "d_model", 0), (DINConfig, "pooling", "max"), (DINConfig, "num_negatives", -1),
    (DINConfig, "init_std", math.nan), (BERT4RecConfig, "mask_prob", 0.0), (BERT4RecConfig, "n_layers", 2.0),
    (MFConfig, "num_users", 0), (TextItemEncoderConfig, "text_dim", -384), (MetadataEncoderConfig, "fusion", "concat"),
    (TextEncoderConfig, "vocab_size", 0),
])
def test_model_configs_name_the_field_they_refuse(config, field, value):
    required = {"num_items": I} if config is not TextEncoderConfig else {"vocab_size": 10}
    if config is MFConfig:
        required["num_users"] = 4
    with pytest.raises(ValueError, match=f"{config.__name__}.{field}"):
        config(**{**required, field: value})
