"""candidate role handlers (stub: being implemented)."""

from __future__ import annotations

from pyra_dist.core.apply import ApplyMixin
from pyra_dist.core.effects import Effect
from pyra_dist.core.events import Event


class CandidateRole(ApplyMixin):
    """Stub."""

    def pre_vote_handle(self, event: Event, effects: list[Effect]) -> None:
        """Stub."""

    def candidate_handle(self, event: Event, effects: list[Effect]) -> None:
        """Stub."""
