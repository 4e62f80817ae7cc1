"""Exceptions raised by the pyra_dist API (the asyncio side), mirroring Ra's error atoms.

Owns: the exception tree. Must not: be raised inside ``pyra_dist.core`` (the core answers with typed
reply values such as ``ErrorReply(reason="cluster_change_not_permitted")``; the API turns those into
these exceptions).
"""

from __future__ import annotations

from pyra_dist.types import ServerId


class RaError(Exception):
    """Base class of every pyra_dist error."""


class NotLeader(RaError):
    """The server is not the leader; ``leader_hint`` is the leader it knows of, if any."""

    def __init__(self, leader_hint: ServerId | None = None) -> None:
        """Args:
        leader_hint: the known leader or None (Ra's ``{not_leader, Leader | undefined, ...}``).
        """
        super().__init__(f"not leader (leader: {leader_hint})")
        self.leader_hint = leader_hint


class Timeout(RaError):
    """No answer within the timeout (Ra's ``{timeout, ServerId}``)."""

    def __init__(self, server_id: ServerId | None = None) -> None:
        """Args:
        server_id: the server that did not answer.
        """
        super().__init__(f"timeout waiting for {server_id}")
        self.server_id = server_id


class NoProc(RaError):
    """The server does not run (Ra's ``{error, noproc}``)."""


class NodeDown(RaError):
    """The server's node is not reachable (Ra's ``{error, nodedown}``)."""


class NoSuchCluster(RaError):
    """No cluster or server of that name is known here."""


class ClusterChangeNotPermitted(RaError):
    """``{error, cluster_change_not_permitted}``: a membership change is in flight or the leader's noop
    is not applied yet (ra-internals §3.4)."""


class AlreadyMember(RaError):
    """``{error, already_member}``."""


class NotMember(RaError):
    """``{error, not_member}``."""


class UnknownMember(RaError):
    """``{error, unknown_member}`` (transfer_leadership to a non-member)."""


class ClusterNotFormed(RaError):
    """``{error, cluster_not_formed}`` from ``start_cluster``."""


class NoMoreServersToTry(RaError):
    """``{error, {no_more_servers_to_try, Errors}}``: every server in the list failed."""

    def __init__(self, errors: list[object]) -> None:
        """Args:
        errors: the error of each server tried, in order.
        """
        super().__init__(f"no more servers to try: {errors!r}")
        self.errors = errors


class LogCorrupt(RaError):
    """The on-disk log failed a checksum or format check."""


class QueryError(RaError):
    """A query raised (Ra's ``{error, Reason}`` from ``local_query``)."""


REASONS: dict[str, type[RaError]] = {
    "cluster_change_not_permitted": ClusterChangeNotPermitted,
    "already_member": AlreadyMember,
    "not_member": NotMember,
    "unknown_member": UnknownMember,
    "noproc": NoProc,
    "nodedown": NodeDown,
    "cluster_not_formed": ClusterNotFormed,
}
"""Ra error atoms -> exception class (a constant table, not a registry)."""


def from_reason(reason: object) -> RaError:
    """Build the exception for Ra's ``{error, Reason}``.

    Args:
        reason: the reason atom (as ``str``) or any other term.

    Returns:
        The matching ``RaError`` subclass instance (``RaError`` itself for unknown reasons).
    """
    if isinstance(reason, str) and reason in REASONS:
        return REASONS[reason](reason)
    return RaError(reason)


__all__ = [
    "REASONS",
    "AlreadyMember",
    "ClusterChangeNotPermitted",
    "ClusterNotFormed",
    "LogCorrupt",
    "NoMoreServersToTry",
    "NoProc",
    "NoSuchCluster",
    "NodeDown",
    "NotLeader",
    "NotMember",
    "QueryError",
    "RaError",
    "Timeout",
    "UnknownMember",
    "from_reason",
]
