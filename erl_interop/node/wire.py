"""Translation between process signals and distribution control messages.

Owns: which control message carries each :mod:`erl_interop.node.signals` signal, given the
flags negotiated with the peer (EXIT_PAYLOAD picks PAYLOAD_EXIT* over EXIT*, SEND_SENDER
picks SEND_SENDER over SEND; erts ``erl_dist_protocol`` "Protocol between connected
nodes"), and the reverse mapping for what a peer sends (trace-token variants are already
folded by ``erl_interop.dist.control``).

Must not: do I/O or keep state; decide process semantics (``process.py`` does).
"""

from __future__ import annotations

from typing import assert_never

from erl_interop.dist import control as c
from erl_interop.dist.flags import DistFlags
from erl_interop.node import signals as s
from erl_interop.term import Atom, Term

__all__ = ["NO_PAYLOAD", "signal_from_control", "signal_to_control"]

NO_PAYLOAD: Term = None
"""Payload placeholder for control messages that carry none (``carries_payload`` is False)."""

# Spawn request option lists are proper lists on the wire (OTP PR #7742 warns about the
# alternative); anything else from a peer is treated as no options.


def signal_to_control(signal: s.Signal, flags: DistFlags) -> tuple[c.ControlMessage, Term] | None:
    """The control message (and payload) that carries ``signal`` to a peer.

    Args:
        signal: a signal whose destination is the peer.
        flags: the flags negotiated on the connection.

    Returns:
        ``(control, payload)`` (payload ``NO_PAYLOAD`` when the op has none), or None when the
        signal has no wire form for this peer (e.g. an unlink ack for an old-protocol unlink).
    """
    exit_payload = bool(flags & DistFlags.EXIT_PAYLOAD)
    match signal:
        case s.Message(sender=sender, to=to, message=message):
            if sender is not None and flags & DistFlags.SEND_SENDER:
                return c.SendSender(from_pid=sender, to_pid=to), message
            return c.Send(to_pid=to), message
        case s.NamedMessage(sender=sender, name=name, message=message):
            return c.RegSend(from_pid=sender, to_name=name), message
        case s.AliasMessage(sender=sender, alias=alias, message=message):
            return c.AliasSend(from_pid=sender, alias=alias), message
        case s.Link(sender=sender, to=to):
            return c.Link(from_pid=sender, to_pid=to), NO_PAYLOAD
        case s.UnlinkId(id=unlink_id, sender=sender, to=to):
            if not flags & DistFlags.UNLINK_ID:
                return c.Unlink(from_pid=sender, to_pid=to), NO_PAYLOAD
            return c.UnlinkId(id=unlink_id, from_pid=sender, to_pid=to), NO_PAYLOAD
        case s.UnlinkIdAck(id=unlink_id, sender=sender, to=to):
            if unlink_id == 0 or not flags & DistFlags.UNLINK_ID:
                return None  # acking an old-protocol UNLINK: the old protocol has no ack
            return c.UnlinkIdAck(id=unlink_id, from_pid=sender, to_pid=to), NO_PAYLOAD
        case s.ExitSignal(sender=sender, to=to, reason=reason, link=True):
            if exit_payload:
                return c.PayloadExit(from_pid=sender, to_pid=to), reason
            return c.Exit(from_pid=sender, to_pid=to, reason=reason), NO_PAYLOAD
        case s.ExitSignal(sender=sender, to=to, reason=reason):
            if exit_payload:
                return c.PayloadExit2(from_pid=sender, to_pid=to), reason
            return c.Exit2(from_pid=sender, to_pid=to, reason=reason), NO_PAYLOAD
        case s.Monitor(sender=sender, target=target, ref=ref):
            return c.MonitorP(from_pid=sender, to_proc=target, ref=ref), NO_PAYLOAD
        case s.Demonitor(sender=sender, target=target, ref=ref):
            return c.DemonitorP(from_pid=sender, to_proc=target, ref=ref), NO_PAYLOAD
        case s.Down(sender=sender, to=to, ref=ref, reason=reason):
            if exit_payload:
                return c.PayloadMonitorPExit(from_proc=sender, to_pid=to, ref=ref), reason
            return c.MonitorPExit(from_proc=sender, to_pid=to, ref=ref, reason=reason), NO_PAYLOAD
        case s.SpawnRequest(
            req_id=req_id,
            sender=sender,
            group_leader=gl,
            module=m,
            function=f,
            arity=a,
            options=opts,
            args=args,
        ):
            request = c.SpawnRequest(
                req_id=req_id, from_pid=sender, group_leader=gl, module=m, function=f, arity=a, opts=opts
            )
            return request, list(args)
        case s.SpawnReply(req_id=req_id, to=to, flags=reply_flags, result=result):
            return c.SpawnReply(req_id=req_id, to_pid=to, flags=reply_flags, result=result), NO_PAYLOAD
        case _:
            assert_never(signal)


def signal_from_control(
    control: c.ControlMessage, payload: Term, *, local: Atom, peer: Atom
) -> s.Signal | None:
    """The signal a control message from ``peer`` stands for.

    Args:
        control: the decoded control message.
        payload: the term that followed it (ignored for ops without payload).
        local: this node's name (where named targets live).
        peer: the node the message came from.

    Returns:
        The signal, or None for messages with no process-level meaning (GROUP_LEADER, NODE_LINK).
    """
    match control:
        case c.Send(to_pid=to):
            return s.Message(sender=None, to=to, message=payload)
        case c.SendSender(from_pid=sender, to_pid=to):
            return s.Message(sender=sender, to=to, message=payload)
        case c.RegSend(from_pid=sender, to_name=name):
            return s.NamedMessage(sender=sender, name=name, node=local, message=payload)
        case c.AliasSend(from_pid=sender, alias=alias):
            return s.AliasMessage(sender=sender, alias=alias, message=payload)
        case c.Link(from_pid=sender, to_pid=to):
            return s.Link(sender=sender, to=to)
        case c.Unlink(from_pid=sender, to_pid=to):
            # Old protocol (peer without UNLINK_ID): id 0 means "no ack expected".
            return s.UnlinkId(id=0, sender=sender, to=to)
        case c.UnlinkId(id=unlink_id, from_pid=sender, to_pid=to):
            return s.UnlinkId(id=unlink_id, sender=sender, to=to)
        case c.UnlinkIdAck(id=unlink_id, from_pid=sender, to_pid=to):
            return s.UnlinkIdAck(id=unlink_id, sender=sender, to=to)
        case c.Exit(from_pid=sender, to_pid=to, reason=reason):
            return s.ExitSignal(sender=sender, to=to, reason=reason, link=True)
        case c.PayloadExit(from_pid=sender, to_pid=to):
            return s.ExitSignal(sender=sender, to=to, reason=payload, link=True)
        case c.Exit2(from_pid=sender, to_pid=to, reason=reason):
            return s.ExitSignal(sender=sender, to=to, reason=reason, link=False)
        case c.PayloadExit2(from_pid=sender, to_pid=to):
            return s.ExitSignal(sender=sender, to=to, reason=payload, link=False)
        case c.MonitorP(from_pid=sender, to_proc=target, ref=ref):
            return s.Monitor(sender=sender, target=target, node=local, ref=ref)
        case c.DemonitorP(from_pid=sender, to_proc=target, ref=ref):
            return s.Demonitor(sender=sender, target=target, node=local, ref=ref)
        case c.MonitorPExit(from_proc=sender, to_pid=to, ref=ref, reason=reason):
            return s.Down(sender=sender, sender_node=peer, to=to, ref=ref, reason=reason)
        case c.PayloadMonitorPExit(from_proc=sender, to_pid=to, ref=ref):
            return s.Down(sender=sender, sender_node=peer, to=to, ref=ref, reason=payload)
        case c.SpawnRequest(
            req_id=req_id, from_pid=sender, group_leader=gl, module=m, function=f, arity=a, opts=o
        ):
            return s.SpawnRequest(
                req_id=req_id,
                sender=sender,
                group_leader=gl,
                node=local,
                module=m,
                function=f,
                arity=a,
                options=list(o) if isinstance(o, list) else [],
                args=payload if isinstance(payload, list) else _as_list(payload),
            )
        case c.SpawnReply(req_id=req_id, to_pid=to, flags=reply_flags, result=result):
            return s.SpawnReply(req_id=req_id, to=to, flags=reply_flags, result=result)
        case c.GroupLeader() | c.NodeLink():
            return None
        case _:
            assert_never(control)


def _as_list(payload: Term) -> list[Term]:
    # A spawn argument list that is not a list (a peer bug): treat as no arguments; the
    # spawned function then fails with undef/badarity as it would on the BEAM.
    return list(payload) if isinstance(payload, tuple) else []
