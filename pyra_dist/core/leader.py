"""leader role handlers (stub: being implemented)."""

from __future__ import annotations

from pyra_dist.core.apply import ApplyMixin
from pyra_dist.core.effects import Effect
from pyra_dist.core.events import Event


class LeaderRole(ApplyMixin):
    """Stub."""

    def leader_handle(self, event: Event, effects: list[Effect]) -> None:
        """Stub."""
