"""ShopWorld: a small synthetic shop whose ground truth is known.

Every item has four modalities and an ID:

* **image** (24 x 24 RGB): the *shape* drawn is the item's category, its *colour* the style;
* **text** (a few words): the *brand* and the *material*, shuffled among noise words;
* **price bucket** (0..3): follows the material (leather costs more), nothing else;
* **ID**: the item id 1..I (``PAD_ID = 0`` is not an item).

A user's *interest* is a (shape, brand) pair. The eight interests are chosen so that each
shape belongs to two interests and each brand to two: the image alone narrows an item
down to two interests, the text alone to two others, and only both together name the
interest. Half of the (shape, brand) pairs belong to no interest; their items look like
an interest in one modality and not in the other.

Users hold 1-3 interests that drift: the interest most likely to be active moves from
the first to the last over the user's sequence, and the active interest is sticky from one
event to the next (a switch comes with a longer time gap, a new "session"). Each event
is an unseen item of the active interest (popular items more often), or with a small
probability a random item (``NOISE = -1``). The interest behind every event is recorded.

Stickiness makes *recency* a strong explanation on its own: with the default settings the
previous event shares the next one's interest most of the time, so "the newest event
explains the prediction" is nearly always plausible. :func:`low_stickiness_config` draws a
shop in which each event picks one of the user's interests at random (no stickiness, no
drift: P(same interest as the previous event) = 1/m for a user with m interests), where
recency no longer predicts relevance; explanation checks run on both shops.

Everything is drawn from one seeded ``numpy.random.Generator``: the same seed gives
byte-identical arrays and tables.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..constants import PAD_ID
from .item_features import MultimodalFeatures, images_to_tensor

SHAPES = ("circle", "square", "triangle", "cross")  # category, drawn in the image
COLOURS = ("red", "green", "blue", "yellow")  # style, the colour of the shape
BRANDS = ("acme", "borealis", "cobalt", "dune")  # named in the text
MATERIALS = ("cotton", "wool", "linen", "leather")  # named in the text; sets the price
NOISE_WORDS = (
    "classic", "new", "soft", "everyday", "gift", "light", "warm", "smart", "basic", "modern",
    "simple", "premium", "cosy", "fresh", "bold", "casual",
)
NUM_PRICE_BUCKETS = 4
TEXT_PAD = 0  # token id of text padding; vocabulary[0] = "<pad>"
NOISE = -1  # the interest recorded for a random (noise) event
# interest k = (shape k % 4, brand (k % 4 + k // 4) % 4): each shape and each brand in two interests
INTERESTS = tuple((k % 4, (k % 4 + k // 4) % 4) for k in range(8))

_RGB = {"red": (220, 50, 47), "green": (60, 170, 60), "blue": (40, 100, 220), "yellow": (230, 200, 30)}


@dataclass(frozen=True, eq=False)  # holds arrays/tables: compare fields explicitly
class ShopWorldConfig:
    num_items: int = 640  # I; spread evenly over the 16 (shape, brand) pairs
    num_users: int = 800  # U
    image_size: int = 24  # images are (image_size, image_size, 3) uint8
    min_events: int = 20  # shortest sequence of a one-interest user
    events_per_interest: int = 15  # each extra interest adds up to this many events
    stay_prob: float = 0.8  # chance that the next event keeps the current interest
    drift_width: float = 0.2  # how long each interest dominates (fraction of the sequence); math.inf = no drift
    noise_prob: float = 0.08  # chance that an event is a random item (interest NOISE)
    noise_words: int = 2  # noise words in each text
    image_noise: float = 12.0  # standard deviation of the pixel noise
    seed: int = 0  # everything is drawn from numpy's default_rng(seed)

    def __post_init__(self) -> None:
        smallest = {"num_items": 16, "num_users": 1, "image_size": 1, "min_events": 3, "events_per_interest": 0,
                    "noise_words": 0, "seed": 0}  # min_events 3: every user gets a training, validation and test event
        for name, low in smallest.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"ShopWorldConfig.{name} must be an int >= {low}, got {value!r}.")
        for name in ("stay_prob", "noise_prob"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
                raise ValueError(f"ShopWorldConfig.{name} is a probability in [0, 1], got {value!r}.")
        if isinstance(self.drift_width, bool) or not isinstance(self.drift_width, numbers.Real) or not self.drift_width > 0:
            raise ValueError(f"ShopWorldConfig.drift_width must be a number > 0 (math.inf = no drift), got {self.drift_width!r}.")
        if isinstance(self.image_noise, bool) or not isinstance(self.image_noise, numbers.Real) or not 0 <= self.image_noise < math.inf:
            raise ValueError(f"ShopWorldConfig.image_noise must be a finite number >= 0 (pixel noise std), got {self.image_noise!r}.")
        # a user never buys the same item twice, so the catalogue must outlast the longest sequence
        longest = self.min_events + 2 * self.events_per_interest + 5
        if self.num_items < max(16, longest):
            raise ValueError(
                f"num_items must be at least {max(16, longest)} (16 (shape, brand) pairs, and the longest "
                f"sequence, min_events + 2 * events_per_interest + 5 = {longest}, never repeats an item); "
                f"got num_items={self.num_items}."
            )


@dataclass(frozen=True, eq=False)  # holds arrays/tables: compare fields explicitly
class ShopWorld:
    """The generated shop. Item arrays are indexed by item id (row ``PAD_ID`` is blank)."""

    config: ShopWorldConfig
    items: pd.DataFrame  # index item 1..I: shape, colour, brand, material, price_bucket, text, interest (NOISE if none)
    images: np.ndarray  # (I + 1, S, S, 3) uint8; images[PAD_ID] is black
    text_tokens: np.ndarray  # (I + 1, T) int64 token ids, TEXT_PAD-padded; row PAD_ID all padding
    vocabulary: tuple[str, ...]  # token id -> word; vocabulary[TEXT_PAD] = "<pad>"
    interests: pd.DataFrame  # index interest 0..7: shape, brand
    users: pd.DataFrame  # index user 0..U-1: interests (tuple of interest ids, in order of drift)
    interactions: pd.DataFrame  # user, item, timestamp, interest (ground truth; NOISE = random); time order

    @property
    def num_items(self) -> int:
        return len(self.items)

    def item_interest(self) -> np.ndarray:
        """(I + 1,) the interest each item belongs to (NOISE for items of no interest and PAD_ID)."""
        out = np.full(self.num_items + 1, NOISE, dtype=np.int64)
        out[self.items.index.to_numpy()] = self.items["interest"].to_numpy()
        return out


def _shape_mask(shape: str, size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = x - cx, y - cy
    if shape == "circle":
        return dx**2 + dy**2 <= radius**2
    if shape == "square":
        return (np.abs(dx) <= radius * 0.85) & (np.abs(dy) <= radius * 0.85)
    if shape == "triangle":  # apex up
        return (dy <= radius * 0.8) & (dy >= -radius) & (np.abs(dx) <= (dy + radius) * 0.6)
    if shape == "cross":
        arm = radius * 0.35
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= radius)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= radius))
    raise ValueError(f"unknown shape {shape!r}")


def render_item_image(shape: str, colour: str, rng: np.random.Generator, *, size: int = 24, noise: float = 12.0) -> np.ndarray:
    """Draw one item: a coloured shape, slightly moved and resized, on a noisy light background.

    Returns:
        uint8 array (size, size, 3).
    """
    image = np.full((size, size, 3), 235.0)
    radius = size * rng.uniform(0.28, 0.36)
    cx, cy = size / 2 + rng.uniform(-1.5, 1.5), size / 2 + rng.uniform(-1.5, 1.5)
    image[_shape_mask(shape, size, cx, cy, radius)] = _RGB[colour]
    image += rng.normal(0.0, noise, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _make_items(config: ShopWorldConfig, rng: np.random.Generator):
    pairs = [(s, b) for s in range(len(SHAPES)) for b in range(len(BRANDS))]
    pair_of_item = rng.permutation(np.arange(config.num_items) % len(pairs))
    shape = np.array([pairs[p][0] for p in pair_of_item])
    brand = np.array([pairs[p][1] for p in pair_of_item])
    colour = rng.integers(0, len(COLOURS), config.num_items)
    material = rng.integers(0, len(MATERIALS), config.num_items)
    price = np.clip(material + rng.integers(-1, 1, config.num_items), 0, NUM_PRICE_BUCKETS - 1)
    interest_of_pair = {pair: k for k, pair in enumerate(INTERESTS)}
    interest = np.array([interest_of_pair.get((s, b), NOISE) for s, b in zip(shape, brand)])

    vocabulary = ("<pad>", *BRANDS, *MATERIALS, *NOISE_WORDS)
    token = {word: i for i, word in enumerate(vocabulary)}
    texts, tokens = [], np.full((config.num_items + 1, 2 + config.noise_words), TEXT_PAD, dtype=np.int64)
    images = np.zeros((config.num_items + 1, config.image_size, config.image_size, 3), dtype=np.uint8)
    for i in range(config.num_items):
        words = [BRANDS[brand[i]], MATERIALS[material[i]]]
        words += list(rng.choice(NOISE_WORDS, size=config.noise_words, replace=False))
        words = [words[j] for j in rng.permutation(len(words))]
        texts.append(" ".join(words))
        tokens[i + 1] = [token[w] for w in words]
        images[i + 1] = render_item_image(
            SHAPES[shape[i]], COLOURS[colour[i]], rng, size=config.image_size, noise=config.image_noise
        )
    items = pd.DataFrame(
        {
            "shape": [SHAPES[s] for s in shape],
            "colour": [COLOURS[c] for c in colour],
            "brand": [BRANDS[b] for b in brand],
            "material": [MATERIALS[m] for m in material],
            "price_bucket": price.astype(np.int64),
            "text": texts,
            "interest": interest.astype(np.int64),
        },
        index=pd.RangeIndex(1, config.num_items + 1, name="item"),
    )
    return items, images, tokens, vocabulary


def _make_sequences(config: ShopWorldConfig, items: pd.DataFrame, rng: np.random.Generator):
    num_items = config.num_items
    popularity = rng.lognormal(0.0, 0.8, num_items + 1)  # per item id; a skew within each interest
    popularity[PAD_ID] = 0.0
    by_interest = [items.index[items["interest"] == k].to_numpy() for k in range(len(INTERESTS))]
    rows, user_interests = [], []
    for user in range(config.num_users):
        m = int(rng.integers(1, 4))  # 1..3 interests
        mine = rng.choice(len(INTERESTS), size=m, replace=False)
        user_interests.append(tuple(int(k) for k in mine))
        n = config.min_events + int(rng.integers(0, config.events_per_interest * (m - 1) + 6))
        centres = (np.arange(m) + 0.5) / m  # interest j peaks at this fraction of the sequence
        seen: set[int] = set()
        current = -1
        time = 1_600_000_000 + int(rng.integers(0, 30 * 86_400))
        for t in range(n):
            f = t / max(n - 1, 1)
            weights = np.exp(-((f - centres) ** 2) / (2 * config.drift_width**2))  # all 1 when drift_width = inf
            if current < 0 or rng.random() >= config.stay_prob:
                new = int(rng.choice(m, p=weights / weights.sum()))
            else:
                new = current
            switched = new != current
            current = new
            interest = int(mine[current])
            candidates = [i for i in by_interest[interest] if i not in seen]
            if rng.random() < config.noise_prob or not candidates:
                interest = NOISE
                candidates = [i for i in range(1, num_items + 1) if i not in seen]
                item = int(rng.choice(candidates))
            else:
                p = popularity[candidates]
                item = int(rng.choice(candidates, p=p / p.sum()))
            seen.add(item)
            gap = rng.exponential(3 * 86_400 if switched else 2 * 3_600)  # a switch starts a new session
            time += 1 + int(gap)
            rows.append((user, item, time, interest))
    interactions = pd.DataFrame(rows, columns=["user", "item", "timestamp", "interest"]).astype("int64")
    users = pd.DataFrame({"interests": user_interests}, index=pd.RangeIndex(config.num_users, name="user"))
    return interactions, users


def low_stickiness_config(**overrides: object) -> ShopWorldConfig:
    """A ShopWorld config without stickiness or drift: every event picks one of the user's m interests uniformly.

    ``stay_prob = 0`` and ``drift_width = math.inf``, other fields default (or as given in
    ``overrides``): the previous event shares the next one's interest with probability 1/m,
    so recency alone no longer explains which history events are relevant.
    """
    fields = {"stay_prob": 0.0, "drift_width": math.inf, **overrides}
    return ShopWorldConfig(**fields)  # type: ignore[arg-type]


def generate_shopworld(config: ShopWorldConfig | None = None) -> ShopWorld:
    """Generate ShopWorld deterministically from ``config.seed`` (about a second on a CPU).

    Args:
        config: a :class:`ShopWorldConfig` (default: the course's standard shop).

    Returns:
        A :class:`ShopWorld`. Use ``temporal_leave_one_out(world.interactions,
        catalogue=world.items.index)`` for the same split as MovieLens; item ids stay 1..I.
    """
    config = config or ShopWorldConfig()
    rng = np.random.default_rng(config.seed)
    items, images, tokens, vocabulary = _make_items(config, rng)
    interactions, users = _make_sequences(config, items, rng)
    interests = pd.DataFrame(
        {"shape": [SHAPES[s] for s, _ in INTERESTS], "brand": [BRANDS[b] for _, b in INTERESTS]},
        index=pd.RangeIndex(len(INTERESTS), name="interest"),
    )
    return ShopWorld(config, items, images, tokens, vocabulary, interests, users, interactions)


def shopworld_features(world: ShopWorld) -> MultimodalFeatures:
    """The picture, text tokens and price bucket of every ShopWorld item, indexed by item id.

    ShopWorld's item ids are 1..I and equal the course ids of
    ``temporal_leave_one_out(world.interactions, catalogue=world.items.index)``.
    """
    price = np.zeros(world.num_items + 1, dtype=np.int64)
    price[world.items.index.to_numpy()] = world.items["price_bucket"].to_numpy()
    price[PAD_ID] = 0
    return MultimodalFeatures(
        images=images_to_tensor(world.images),
        text_tokens=torch.as_tensor(world.text_tokens, dtype=torch.long),
        price_buckets=torch.from_numpy(price),
    )
