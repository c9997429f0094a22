"""ShopWorld: determinism, ground truth, and the split of signal across modalities."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import cross_val_score

from course_lib import PAD_ID
from course_lib.data import evaluation_batches, temporal_leave_one_out
from course_lib.data.shopworld import INTERESTS, NOISE, TEXT_PAD, ShopWorldConfig, generate_shopworld

SMALL = ShopWorldConfig(num_items=320, num_users=150)


@pytest.fixture(scope="module")
def world():
    return generate_shopworld(SMALL)


def fingerprint(w) -> str:
    h = hashlib.sha256()
    h.update(w.images.tobytes())
    h.update(w.text_tokens.tobytes())
    h.update(w.items.to_csv().encode())
    h.update(w.users.to_csv().encode())
    h.update(w.interactions.to_csv().encode())
    return h.hexdigest()


def test_same_seed_identical_bytes_other_seed_differs(world):
    again = generate_shopworld(SMALL)
    assert fingerprint(again) == fingerprint(world)
    other = generate_shopworld(ShopWorldConfig(num_items=320, num_users=150, seed=1))
    assert fingerprint(other) != fingerprint(world)


def test_shapes_and_padding_rows(world):
    n = SMALL.num_items
    assert world.images.shape == (n + 1, 24, 24, 3) and world.images.dtype == np.uint8
    assert world.images[PAD_ID].max() == 0 and (world.text_tokens[PAD_ID] == TEXT_PAD).all()
    assert world.items.index.tolist() == list(range(1, n + 1))
    assert (world.text_tokens[1:] != TEXT_PAD).all()
    decoded = [" ".join(world.vocabulary[t] for t in row) for row in world.text_tokens[1:]]
    assert decoded == world.items["text"].tolist()


def test_ground_truth_is_consistent(world):
    items, inter = world.items, world.interactions
    item_interest = world.item_interest()
    assert item_interest[PAD_ID] == NOISE
    real = inter[inter["interest"] != NOISE]
    # every non-noise event is an item of exactly that interest, and an interest the user holds
    assert (item_interest[real["item"].to_numpy()] == real["interest"].to_numpy()).all()
    held = world.users["interests"]
    assert all(k in held[u] for u, k in zip(real["user"], real["interest"]))
    assert all(1 <= len(h) <= 3 for h in held)
    # interests are (shape, brand) pairs as listed
    for k in range(len(INTERESTS)):
        members = items[items["interest"] == k]
        assert len(members) > 0
        assert (members["shape"] == world.interests.loc[k, "shape"]).all()
        assert (members["brand"] == world.interests.loc[k, "brand"]).all()
    for _, seq in inter.groupby("user"):
        assert seq["item"].is_unique  # no item twice for one user
        assert seq["timestamp"].is_monotonic_increasing and seq["timestamp"].is_unique
    share_noise = (inter["interest"] == NOISE).mean()
    assert 0.02 < share_noise < 0.2


def test_interests_drift(world):
    # for users with 2+ interests, the first interest dominates the first quarter, the last the last quarter
    inter = world.interactions
    first_hits, last_hits, n = 0, 0, 0
    for user, seq in inter.groupby("user"):
        mine = world.users.loc[user, "interests"]
        if len(mine) < 2:
            continue
        k = seq["interest"].to_numpy()
        q = max(len(k) // 4, 1)
        first_hits += (k[:q] == mine[0]).mean()
        last_hits += (k[-q:] == mine[-1]).mean()
        n += 1
    assert first_hits / n > 0.6 and last_hits / n > 0.6


def _accuracy(features, labels):
    model = RidgeClassifier(alpha=10.0)  # a linear probe; closed form, fast
    return cross_val_score(model, features, labels, cv=3).mean()


def test_modality_split(world):
    items = world.items
    pixels = world.images[1:].reshape(len(items), -1).astype(np.float64) / 255.0
    bag = np.zeros((len(items), len(world.vocabulary)))
    for row, tokens in enumerate(world.text_tokens[1:]):
        bag[row, tokens] = 1.0
    shape, colour = items["shape"].to_numpy(), items["colour"].to_numpy()
    brand, material = items["brand"].to_numpy(), items["material"].to_numpy()
    # each attribute is recoverable from its own modality ...
    assert _accuracy(pixels, shape) > 0.9 and _accuracy(pixels, colour) > 0.9
    assert _accuracy(bag, brand) > 0.95 and _accuracy(bag, material) > 0.95
    # ... and not from the other (4 classes: chance is 0.25)
    assert _accuracy(bag, shape) < 0.4 and _accuracy(bag, colour) < 0.4
    assert _accuracy(pixels, brand) < 0.4 and _accuracy(pixels, material) < 0.4


def test_only_both_modalities_name_the_interest(world):
    items = world.items
    shape = items["shape"].to_numpy()
    brand = items["brand"].to_numpy()
    interest = items["interest"].to_numpy()
    # exact: from the shape alone (or the brand alone) at least two interests remain possible
    for attribute in (shape, brand):
        for value in np.unique(attribute):
            assert len(set(interest[attribute == value]) - {NOISE}) == 2
    # and the pair decides it
    for s, b in zip(shape, brand):
        assert len(set(interest[(shape == s) & (brand == b)])) == 1


def test_same_split_helpers_work(world):
    split = temporal_leave_one_out(world.interactions, catalogue=world.items.index)
    assert split.num_items == SMALL.num_items and split.num_users == SMALL.num_users
    assert (split.item_ids[1:] == world.items.index.to_numpy()).all()  # ids unchanged
    truth = world.interactions["interest"].to_numpy()
    assert len(truth[split.rows[0]]) == len(split.sequences[0])
    batch = evaluation_batches(split, "test", max_len=20)[0]
    assert batch.history.shape[1] == 20


def test_a_catalogue_too_small_for_the_longest_sequence_is_refused():
    # the longest sequence is min_events + 2 * events_per_interest + 5 = 55 distinct items
    with pytest.raises(ValueError, match="num_items must be at least 55"):
        ShopWorldConfig(num_items=48, num_users=30, seed=3)
    world = generate_shopworld(ShopWorldConfig(num_items=55, num_users=30, seed=3))  # the smallest allowed works
    assert world.interactions.groupby("user")["item"].apply(lambda s: s.is_unique).all()
