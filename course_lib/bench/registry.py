"""The models the benchmark knows, in table order: one :class:`BenchModel` per row."""

from __future__ import annotations

import functools

from ..models.multimodal.item_encoder import MODALITIES
from .recipes.baselines import build_mf, build_popularity, mf_settings, popularity_settings
from .recipes.bert4rec import bert4rec_settings, build_bert4rec
from .recipes.capstone import build_capstone, capstone_settings
from .recipes.din import build_din, din_settings
from .recipes.multimodal import multimodal_settings
from .recipes.sequential import (
    build_gru,
    build_sasrec,
    gru_settings,
    sasrec_settings,
    text_sasrec_settings,
    time_aware_sasrec_settings,
)
from .run import BenchModel

MODELS: list[BenchModel] = [
    BenchModel("Pop", popularity_settings, build_popularity),
    BenchModel("MF", mf_settings, build_mf),
    BenchModel("DIN-mean", functools.partial(din_settings, pooling="mean"), build_din),  # one fixed user vector
    BenchModel("DIN", din_settings, build_din),  # target attention, no order information
    BenchModel("DIN+recency", functools.partial(din_settings, recency=True), build_din),  # + a recency vector on keys
    # the same three trained like MF and SASRec: full-catalogue softmax instead of BCE on sampled negatives
    BenchModel("DIN-mean-softmax", functools.partial(din_settings, pooling="mean", objective="softmax"), build_din),
    BenchModel("DIN-softmax", functools.partial(din_settings, objective="softmax"), build_din),
    BenchModel("DIN+recency-softmax", functools.partial(din_settings, recency=True, objective="softmax"), build_din),
    # the fair twin of DIN+recency (the same recency vectors, one weight vector for every candidate), and the paper's weights
    BenchModel("DIN-mean+recency-softmax", functools.partial(din_settings, pooling="mean", recency=True, objective="softmax"),
               build_din),
    BenchModel("DIN-unnormalised-softmax", functools.partial(din_settings, weights="unnormalised", objective="softmax"), build_din),
    BenchModel("GRU", gru_settings, build_gru),
    BenchModel("SASRec", sasrec_settings, build_sasrec),
    BenchModel("BERT4Rec", bert4rec_settings, build_bert4rec),
    BenchModel("TimeAwareSASRec", time_aware_sasrec_settings, build_sasrec),
    # all-MiniLM-L6-v2 title embeddings, alone or added to the ID vectors
    BenchModel("SASRec-text", functools.partial(text_sasrec_settings, with_id=False), build_sasrec, datasets=("ml100k",)),
    BenchModel("SASRec-id+text", functools.partial(text_sasrec_settings, with_id=True), build_sasrec, datasets=("ml100k",)),
    # ID + image + text + price, gated fusion
    BenchModel("Multimodal", multimodal_settings, build_sasrec, datasets=("shopworld",)),
    # fused item vectors -> causal self-attention (oldest-anchored positions); K = 0 interests, no time gaps (ablation below)
    BenchModel("Capstone", capstone_settings, build_capstone),
    # its user side, one part added at a time (notebook 13's ablation): K learned interests, time-gap buckets, positions
    *(BenchModel(f"Capstone-K{k}", functools.partial(capstone_settings, num_interests=k), build_capstone) for k in (1, 2, 4)),
    BenchModel("Capstone-time-gaps", functools.partial(capstone_settings, time_gaps=True), build_capstone),
    BenchModel("Capstone-all-parts", functools.partial(capstone_settings, num_interests=1, time_gaps=True), build_capstone),
    BenchModel("Capstone-newest-positions", functools.partial(capstone_settings, positions="newest"), build_capstone),
    # notebook mode with SASRec-id+text's 12 epochs instead of 6: is the text SASRec's lead on ML-100K only budget?
    BenchModel("Capstone-12-epochs", functools.partial(capstone_settings, epochs=12), build_capstone),
    *(  # the capstone with one ShopWorld modality: what fusing all four adds (notebook 13's ablation, over seeds)
        BenchModel(f"Capstone-{m}-only", functools.partial(capstone_settings, modalities=(m,)), build_capstone, datasets=("shopworld",))
        for m in MODALITIES
    ),
]
