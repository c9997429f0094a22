"""Histories as text: the prompt a causal language model reads before naming the next item.

A prompt lists the titles of the most recent items and ends where the next title should go::

    watched : Toy Story ; Heat ; Copycat ; next :

and a training text appends the next item's title and the end marker ``;``::

    watched : Toy Story ; Heat ; Copycat ; next : GoldenEye ;

The separators are words of their own (spaces around them), so a word-level tokenizer gives
each one a token and a title always ends at the token ``;`` (:data:`END`). Two knobs change the
text, not the items (what notebook 17 measures as prompt-format sensitivity): the order of the
history (oldest first, as it happened, or newest first) and whether each title carries its
genres (``Toy Story [ Animation Children's Comedy ]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

START = "watched :"  # opens every prompt
SEPARATOR = ";"  # between titles, and after the last title of a training text (the end marker)
END = SEPARATOR  # the token that closes a title: scoring and generation stop on it
NEXT = "next :"  # closes the prompt: the next title follows
Order = Literal["oldest_first", "newest_first"]
ORDERS: tuple[str, ...] = ("oldest_first", "newest_first")
RESERVED = ("watched", "next", ":", ";", "[", "]")  # words a title may not be made of alone


@dataclass(frozen=True)
class PromptFormat:
    """How a history becomes a prompt."""

    max_items: int = 5  # how many of the most recent history items the prompt names (older ones are cut)
    order: Order = "oldest_first"  # "oldest_first": as they happened, the newest last; "newest_first": reversed
    with_genres: bool = False  # True: each history title is followed by its genres in brackets

    def __post_init__(self) -> None:
        if isinstance(self.max_items, bool) or not isinstance(self.max_items, int) or self.max_items < 1:
            raise ValueError(f"max_items must be an int >= 1 (history items named in a prompt), got {self.max_items!r}.")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}.")


def item_text(title: str, genres: Sequence[str] = (), *, with_genres: bool = False) -> str:
    """One history item as text: its title, and with ``with_genres`` its genres in brackets.

    Args:
        title: the item's title (not empty, without the separator ``;``).
        genres: the item's genres, e.g. ``("Animation", "Comedy")``.
        with_genres: append ``[ genre genre ]``.
    """
    if not isinstance(title, str) or not title.strip():
        raise ValueError(f"an item title must be a non-empty string, got {title!r}.")
    if SEPARATOR in title:
        raise ValueError(f"a title may not contain the separator {SEPARATOR!r}: {title!r}.")
    if not with_genres or not genres:
        return title.strip()
    return f"{title.strip()} [ {' '.join(genres)} ]"


def build_prompt(titles: Sequence[str], fmt: PromptFormat = PromptFormat(), genres: Sequence[Sequence[str]] | None = None) -> str:
    """The prompt for one history, oldest item first in ``titles``.

    Args:
        titles: the history's item titles in the order they happened (oldest first); at least one.
        fmt: how many to keep (the ``fmt.max_items`` most recent), their order, genres or not.
        genres: one genre list per title (needed when ``fmt.with_genres``).

    Returns:
        ``"watched : t1 ; t2 ; ... ; next :"``.
    """
    if isinstance(titles, str):
        raise TypeError("titles must be a sequence of titles (a list of str), not one string.")
    titles = list(titles)
    if not titles:
        raise ValueError("an empty history has no prompt: a user needs at least one watched item.")
    if fmt.with_genres and (genres is None or len(genres) != len(titles)):
        given = None if genres is None else len(genres)
        raise ValueError(f"with_genres needs one genre list per title: {len(titles)} titles, genres {given}.")
    genres = list(genres) if genres is not None else [()] * len(titles)
    items = [item_text(t, g, with_genres=fmt.with_genres) for t, g in zip(titles, genres)][-fmt.max_items:]
    if fmt.order == "newest_first":
        items = items[::-1]
    return f"{START} {f' {SEPARATOR} '.join(items)} {SEPARATOR} {NEXT}"


def training_text(prompt: str, target_title: str) -> str:
    """The prompt followed by the next item's title and the end marker: what the LM is trained on."""
    if not prompt.endswith(NEXT):
        raise ValueError(f"a prompt ends with {NEXT!r} (see build_prompt), got {prompt[-20:]!r}.")
    return f"{prompt} {item_text(target_title)} {END}"
