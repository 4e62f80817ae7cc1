"""Typed exceptions for Ra's error answers, raised by the Python API (``pyra_dist.ra``).

Owns: one exception class per error answer of Ra 2.2.0's client API (ra-internals §4, §5) and
``error_for_reason`` mapping an ``{error, Reason}`` reason to its class. Must not: import the
transport or the core (both sides raise or map these).

Every class derives from ``RaError``; ``RaTimeout`` also derives from ``TimeoutError`` so that
``except TimeoutError`` works as Python users expect. Each class also derives from its namesake in
``pyra_dist.errors`` (the package-level tree), so ``except pyra_dist.errors.NoProc`` catches what the
API raises: one hierarchy as far as callers are concerned.
"""

from __future__ import annotations

from pyra_dist import errors as package
from pyra_dist.types import ServerId


class RaError(package.RaError):
    """Base class of Ra's error answers. ``reason`` is Ra's reason atom (as a str) or term."""

    reason: object = "error"

    def __init__(self, message: str = "", *, server_id: ServerId | None = None) -> None:
        super().__init__(message or str(self.reason))
        self.server_id = server_id


class RaTimeout(RaError, TimeoutError, package.Timeout):
    """``{timeout, ServerId}``: no answer in time (e.g. no quorum)."""

    reason = "timeout"


class NoProc(RaError, package.NoProc):
    """``{error, noproc}``: the server is not running."""

    reason = "noproc"


class NodeDown(RaError, package.NodeDown):
    """``{error, nodedown}``: the server's node is not reachable."""

    reason = "nodedown"


class NotMember(RaError, package.NotMember):
    """``{error, not_member}``: ``remove_member`` of a server that is not a member."""

    reason = "not_member"


class AlreadyMember(RaError, package.AlreadyMember):
    """``{error, already_member}``: ``add_member`` of a server that already is one."""

    reason = "already_member"


class ClusterChangeNotPermitted(RaError, package.ClusterChangeNotPermitted):
    """``{error, cluster_change_not_permitted}``: a membership change is in flight, or the leader has
    not committed an entry of its term yet (ra-internals §3.4)."""

    reason = "cluster_change_not_permitted"


class UnknownMember(RaError, package.UnknownMember):
    """``{error, unknown_member}``: ``transfer_leadership`` to a server that is not a member."""

    reason = "unknown_member"


class ClusterNotFormed(RaError, package.ClusterNotFormed):
    """``{error, cluster_not_formed}``: ``start_cluster`` could not elect a leader."""

    reason = "cluster_not_formed"


class NoMoreServersToTry(RaError, package.NoMoreServersToTry):
    """``{error, {no_more_servers_to_try, Errors}}``: every server of a list failed."""

    reason = "no_more_servers_to_try"

    def __init__(self, errors: list[RaError]) -> None:
        # Not super(): the package class's constructor would take the message for the error list.
        Exception.__init__(self, f"no more servers to try: {[str(e) for e in errors]}")
        self.server_id = None
        failures: list[object] = list(errors)
        self.errors = failures


class SystemNotStarted(RaError):
    """``{error, system_not_started}``."""

    reason = "system_not_started"


class AlreadyStarted(RaError):
    """``{error, {already_started, Pid}}``: a server with this name is running."""

    reason = "already_started"


class NotNew(RaError):
    """``{error, not_new}``: ``start_server`` for a name that already has data (use ``restart_server``)."""

    reason = "not_new"


class NameNotRegistered(RaError):
    """``{error, name_not_registered}``: ``restart_server`` for a name this system never started."""

    reason = "name_not_registered"


class InvalidUid(RaError):
    """``{error, invalid_uid}``: a uid with characters outside ``[A-Za-z0-9_=-]``."""

    reason = "invalid_uid"


class QueryFailed(RaError, package.QueryError):
    """``{error, Reason}`` from a query function that raised (Ra drops the class, keeps the reason)."""

    def __init__(self, reason: object, *, server_id: ServerId | None = None) -> None:
        super().__init__(f"query failed: {reason!r}", server_id=server_id)
        self.reason = reason


class ErrorReplyError(RaError):
    """Any other ``{error, Reason}`` answer; ``reason`` holds it."""

    def __init__(self, reason: object, *, server_id: ServerId | None = None) -> None:
        super().__init__(f"error: {reason!r}", server_id=server_id)
        self.reason = reason


_BY_REASON: dict[object, type[RaError]] = {
    cls.reason: cls
    for cls in (
        NoProc,
        NodeDown,
        NotMember,
        AlreadyMember,
        ClusterChangeNotPermitted,
        UnknownMember,
        ClusterNotFormed,
        SystemNotStarted,
        AlreadyStarted,
        NotNew,
        NameNotRegistered,
        InvalidUid,
    )
}


def error_for_reason(reason: object, server_id: ServerId | None = None) -> RaError:
    """Return the exception for Ra's ``{error, reason}``.

    Args:
        reason: the reason atom as a str (``"not_member"``) or any other term.
        server_id: the server that answered.

    Returns:
        An instance of the matching ``RaError`` subclass (``ErrorReplyError`` if none matches).
    """
    if isinstance(reason, str) and reason in _BY_REASON:
        return _BY_REASON[reason](server_id=server_id)
    return ErrorReplyError(reason, server_id=server_id)


__all__ = [
    "AlreadyMember",
    "AlreadyStarted",
    "ClusterChangeNotPermitted",
    "ClusterNotFormed",
    "ErrorReplyError",
    "InvalidUid",
    "NameNotRegistered",
    "NoMoreServersToTry",
    "NoProc",
    "NodeDown",
    "NotMember",
    "NotNew",
    "QueryFailed",
    "RaError",
    "RaTimeout",
    "SystemNotStarted",
    "UnknownMember",
    "error_for_reason",
]
