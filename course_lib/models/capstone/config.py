"""The capstone's configuration: a time-aware SASRec plus K interests read by the candidate."""

from __future__ import annotations

from dataclasses import dataclass

from ..time_aware_sasrec import TimeAwareSASRecConfig


@dataclass(frozen=True)
class CapstoneConfig(TimeAwareSASRecConfig):
    num_interests: int = 3  # K, learned interest queries over the history (the current state is one more)
    interest_temperature: float = 1.0  # tau of the candidate's softmax over the K + 1 interests (-> 0: max)

    def __post_init__(self) -> None:
        if isinstance(self.num_interests, bool) or not isinstance(self.num_interests, int) or self.num_interests < 0:
            raise ValueError(f"num_interests must be an int >= 0 (0 = only the current state), got {self.num_interests!r}.")
        if not self.interest_temperature > 0:
            raise ValueError(f"interest_temperature must be > 0, got {self.interest_temperature!r}.")
