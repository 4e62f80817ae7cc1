"""Distribution control messages: one frozen dataclass per operation, and their tuple forms.

Owns: the ``ControlOp`` numbers (erts ``erl_dist_protocol`` "Protocol between connected nodes"),
one typed dataclass per control message, the ``ControlMessage`` union, conversion to and from
the control tuple (``control_to_term`` / ``control_from_term``) and which ops carry a payload
(the message or exit reason that follows the control term).
Must not: do I/O, encode bytes (``connection.py`` does), or implement process semantics (the
node layer does).

Trace-token variants (``SEND_TT``, ``EXIT_TT`` ...) are folded into the plain message with its
``token`` field set; ``token=None`` encodes the plain op. Receivers can therefore match the plain
classes only. ``Send`` and ``RegSend`` drop the always-``''`` "Unused" element on decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeAlias, assert_never

from erl_interop.dist.errors import DistProtocolError
from erl_interop.term import Atom, Pid, Reference, Term

__all__ = [
    "AliasSend",
    "ControlMessage",
    "ControlOp",
    "DemonitorP",
    "Exit",
    "Exit2",
    "GroupLeader",
    "Link",
    "MonitorP",
    "MonitorPExit",
    "NodeLink",
    "PayloadExit",
    "PayloadExit2",
    "PayloadMonitorPExit",
    "RegSend",
    "Send",
    "SendSender",
    "SpawnReply",
    "SpawnRequest",
    "Unlink",
    "UnlinkId",
    "UnlinkIdAck",
    "carries_payload",
    "control_from_term",
    "control_op",
    "control_to_term",
    "op_carries_payload",
]


class ControlOp(IntEnum):
    """Control message operation numbers (first tuple element), erts names."""

    LINK = 1
    SEND = 2
    EXIT = 3
    UNLINK = 4
    NODE_LINK = 5
    REG_SEND = 6
    GROUP_LEADER = 7
    EXIT2 = 8
    SEND_TT = 12
    EXIT_TT = 13
    REG_SEND_TT = 16
    EXIT2_TT = 18
    MONITOR_P = 19
    DEMONITOR_P = 20
    MONITOR_P_EXIT = 21
    SEND_SENDER = 22
    SEND_SENDER_TT = 23
    PAYLOAD_EXIT = 24
    PAYLOAD_EXIT_TT = 25
    PAYLOAD_EXIT2 = 26
    PAYLOAD_EXIT2_TT = 27
    PAYLOAD_MONITOR_P_EXIT = 28
    SPAWN_REQUEST = 29
    SPAWN_REQUEST_TT = 30
    SPAWN_REPLY = 31
    SPAWN_REPLY_TT = 32
    ALIAS_SEND = 33
    ALIAS_SEND_TT = 34
    UNLINK_ID = 35
    UNLINK_ID_ACK = 36


# Ops followed by a second term (message, exit reason or spawn argument list).
_PAYLOAD_OPS: Final = frozenset(
    {
        ControlOp.SEND,
        ControlOp.REG_SEND,
        ControlOp.SEND_TT,
        ControlOp.REG_SEND_TT,
        ControlOp.SEND_SENDER,
        ControlOp.SEND_SENDER_TT,
        ControlOp.PAYLOAD_EXIT,
        ControlOp.PAYLOAD_EXIT_TT,
        ControlOp.PAYLOAD_EXIT2,
        ControlOp.PAYLOAD_EXIT2_TT,
        ControlOp.PAYLOAD_MONITOR_P_EXIT,
        ControlOp.SPAWN_REQUEST,
        ControlOp.SPAWN_REQUEST_TT,
        ControlOp.ALIAS_SEND,
        ControlOp.ALIAS_SEND_TT,
    }
)

_EMPTY_ATOM: Final = Atom("")


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """``{1, FromPid, ToPid}``: create a link."""

    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """``{2, '', ToPid}`` (+ message); ``SEND_TT`` ``{12, '', ToPid, Token}``."""

    to_pid: Pid
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Exit:
    """``{3, FromPid, ToPid, Reason}``: a link broke (no EXIT_PAYLOAD); ``EXIT_TT`` is op 13."""

    from_pid: Pid
    to_pid: Pid
    reason: Term
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unlink:
    """``{4, FromPid, ToPid}``: old unlink, only without UNLINK_ID (OTP 25 fallback)."""

    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeLink:
    """``{5}``: ancient, never sent by modern nodes; ignore."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegSend:
    """``{6, FromPid, '', ToName}`` (+ message): send to ``{ToName, ThisNode}``; op 16 with a token."""

    from_pid: Pid
    to_name: Atom
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupLeader:
    """``{7, FromPid, ToPid}``: set the group leader of ``to_pid``."""

    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True, kw_only=True)
class Exit2:
    """``{8, FromPid, ToPid, Reason}``: ``exit(ToPid, Reason)`` without EXIT_PAYLOAD; op 18 with a token."""

    from_pid: Pid
    to_pid: Pid
    reason: Term
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorP:
    """``{19, FromPid, ToProc, Ref}``; ``to_proc`` is a pid or a registered name atom."""

    from_pid: Pid
    to_proc: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True, kw_only=True)
class DemonitorP:
    """``{20, FromPid, ToProc, Ref}``: remove a monitor."""

    from_pid: Pid
    to_proc: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorPExit:
    """``{21, FromProc, ToPid, Ref, Reason}``: a monitored process died (no EXIT_PAYLOAD)."""

    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference
    reason: Term


@dataclass(frozen=True, slots=True, kw_only=True)
class SendSender:
    """``{22, FromPid, ToPid}`` (+ message): a send to a pid; op 23 with a token."""

    from_pid: Pid
    to_pid: Pid
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadExit:
    """``{24, FromPid, ToPid}`` (+ reason): a link broke; op 25 with a token."""

    from_pid: Pid
    to_pid: Pid
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadExit2:
    """``{26, FromPid, ToPid}`` (+ reason): ``exit(ToPid, Reason)``; op 27 with a token."""

    from_pid: Pid
    to_pid: Pid
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PayloadMonitorPExit:
    """``{28, FromProc, ToPid, Ref}`` (+ reason): a monitored process (or name) went down."""

    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnRequest:
    """``{29, ReqId, From, GroupLeader, {M, F, Arity}, OptList}`` (+ argument list); op 30 with a token."""

    req_id: Reference
    from_pid: Pid
    group_leader: Pid
    module: Atom
    function: Atom
    arity: int
    opts: Term
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnReply:
    """``{31, ReqId, To, Flags, Result}``; ``result`` is the new pid or an error atom; op 32 with a token."""

    req_id: Reference
    to_pid: Pid
    flags: int
    result: Pid | Atom
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasSend:
    """``{33, FromPid, Alias}`` (+ message): a send to an alias; op 34 with a token."""

    from_pid: Pid
    alias: Reference
    token: Term | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlinkId:
    """``{35, Id, FromPid, ToPid}``: new-protocol unlink; must be acked before any other signal."""

    id: int
    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlinkIdAck:
    """``{36, Id, FromPid, ToPid}``: acknowledges an ``UnlinkId`` (From/To swapped)."""

    id: int
    from_pid: Pid
    to_pid: Pid


ControlMessage: TypeAlias = (
    Link
    | Send
    | Exit
    | Unlink
    | NodeLink
    | RegSend
    | GroupLeader
    | Exit2
    | MonitorP
    | DemonitorP
    | MonitorPExit
    | SendSender
    | PayloadExit
    | PayloadExit2
    | PayloadMonitorPExit
    | SpawnRequest
    | SpawnReply
    | AliasSend
    | UnlinkId
    | UnlinkIdAck
)


def _with_token(plain: ControlOp, traced: ControlOp, elements: tuple[Term, ...], token: Term | None) -> Term:
    if token is None:
        return (int(plain), *elements)
    return (int(traced), *elements, token)


def control_op(msg: ControlMessage) -> ControlOp:
    """The operation number ``msg`` is sent with (the ``_TT`` op when it carries a trace token).

    Args:
        msg: a control message.

    Returns:
        Its ``ControlOp``.
    """
    op = control_to_term(msg)
    assert isinstance(op, tuple) and isinstance(op[0], int)
    return ControlOp(op[0])


_PAYLOAD_CLASSES: Final[frozenset[type]] = frozenset(
    {Send, RegSend, SendSender, PayloadExit, PayloadExit2, PayloadMonitorPExit, SpawnRequest, AliasSend}
)


def carries_payload(msg: ControlMessage) -> bool:
    """Whether ``msg`` must be followed by a payload term (message, reason or arguments).

    Args:
        msg: a control message.

    Returns:
        True for SEND, REG_SEND, SEND_SENDER, PAYLOAD_*, SPAWN_REQUEST and ALIAS_SEND (and TT forms).
    """
    return type(msg) in _PAYLOAD_CLASSES


def op_carries_payload(op: int) -> bool:
    """Whether control op number ``op`` is followed by a payload term on the wire.

    Args:
        op: the first element of a control tuple.

    Returns:
        True when a second term follows the control term.
    """
    return op in _PAYLOAD_OPS


def control_to_term(msg: ControlMessage) -> Term:
    """The control tuple for ``msg``, ready for ``erl_interop.term.encode``.

    Args:
        msg: a control message.

    Returns:
        The tuple whose first element is the op number (the ``_TT`` op when ``token`` is set).
    """
    match msg:
        case Link(from_pid=f, to_pid=t):
            return (int(ControlOp.LINK), f, t)
        case Send(to_pid=t, token=tok):
            return _with_token(ControlOp.SEND, ControlOp.SEND_TT, (_EMPTY_ATOM, t), tok)
        case Exit(from_pid=f, to_pid=t, reason=r, token=tok):
            if tok is None:
                return (int(ControlOp.EXIT), f, t, r)
            return (int(ControlOp.EXIT_TT), f, t, tok, r)
        case Unlink(from_pid=f, to_pid=t):
            return (int(ControlOp.UNLINK), f, t)
        case NodeLink():
            return (int(ControlOp.NODE_LINK),)
        case RegSend(from_pid=f, to_name=n, token=tok):
            return _with_token(ControlOp.REG_SEND, ControlOp.REG_SEND_TT, (f, _EMPTY_ATOM, n), tok)
        case GroupLeader(from_pid=f, to_pid=t):
            return (int(ControlOp.GROUP_LEADER), f, t)
        case Exit2(from_pid=f, to_pid=t, reason=r, token=tok):
            if tok is None:
                return (int(ControlOp.EXIT2), f, t, r)
            return (int(ControlOp.EXIT2_TT), f, t, tok, r)
        case MonitorP(from_pid=f, to_proc=t, ref=ref):
            return (int(ControlOp.MONITOR_P), f, t, ref)
        case DemonitorP(from_pid=f, to_proc=t, ref=ref):
            return (int(ControlOp.DEMONITOR_P), f, t, ref)
        case MonitorPExit(from_proc=f, to_pid=t, ref=ref, reason=r):
            return (int(ControlOp.MONITOR_P_EXIT), f, t, ref, r)
        case SendSender(from_pid=f, to_pid=t, token=tok):
            return _with_token(ControlOp.SEND_SENDER, ControlOp.SEND_SENDER_TT, (f, t), tok)
        case PayloadExit(from_pid=f, to_pid=t, token=tok):
            return _with_token(ControlOp.PAYLOAD_EXIT, ControlOp.PAYLOAD_EXIT_TT, (f, t), tok)
        case PayloadExit2(from_pid=f, to_pid=t, token=tok):
            return _with_token(ControlOp.PAYLOAD_EXIT2, ControlOp.PAYLOAD_EXIT2_TT, (f, t), tok)
        case PayloadMonitorPExit(from_proc=f, to_pid=t, ref=ref):
            return (int(ControlOp.PAYLOAD_MONITOR_P_EXIT), f, t, ref)
        case SpawnRequest(
            req_id=req, from_pid=f, group_leader=gl, module=m, function=fn, arity=a, opts=o, token=tok
        ):
            return _with_token(
                ControlOp.SPAWN_REQUEST, ControlOp.SPAWN_REQUEST_TT, (req, f, gl, (m, fn, a), o), tok
            )
        case SpawnReply(req_id=req, to_pid=t, flags=fl, result=res, token=tok):
            return _with_token(ControlOp.SPAWN_REPLY, ControlOp.SPAWN_REPLY_TT, (req, t, fl, res), tok)
        case AliasSend(from_pid=f, alias=al, token=tok):
            return _with_token(ControlOp.ALIAS_SEND, ControlOp.ALIAS_SEND_TT, (f, al), tok)
        case UnlinkId(id=i, from_pid=f, to_pid=t):
            return (int(ControlOp.UNLINK_ID), i, f, t)
        case UnlinkIdAck(id=i, from_pid=f, to_pid=t):
            return (int(ControlOp.UNLINK_ID_ACK), i, f, t)
        case _:
            assert_never(msg)


def _pid(value: Term, what: str, op: int) -> Pid:
    if not isinstance(value, Pid):
        raise DistProtocolError(f"control op {op}: {what} is not a pid: {value!r}")
    return value


def _atom(value: Term, what: str, op: int) -> Atom:
    if not isinstance(value, Atom):
        raise DistProtocolError(f"control op {op}: {what} is not an atom: {value!r}")
    return value


def _proc(value: Term, what: str, op: int) -> Pid | Atom:
    if not isinstance(value, Pid | Atom):
        raise DistProtocolError(f"control op {op}: {what} is neither a pid nor an atom: {value!r}")
    return value


def _ref(value: Term, what: str, op: int) -> Reference:
    if not isinstance(value, Reference):
        raise DistProtocolError(f"control op {op}: {what} is not a reference: {value!r}")
    return value


def _int(value: Term, what: str, op: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DistProtocolError(f"control op {op}: {what} is not an integer: {value!r}")
    return value


# Arity of each control tuple, op element included (erl_dist_protocol, "Protocol between connected nodes").
_ARITY: Final[dict[ControlOp, int]] = {
    ControlOp.LINK: 3,
    ControlOp.SEND: 3,
    ControlOp.EXIT: 4,
    ControlOp.UNLINK: 3,
    ControlOp.NODE_LINK: 1,
    ControlOp.REG_SEND: 4,
    ControlOp.GROUP_LEADER: 3,
    ControlOp.EXIT2: 4,
    ControlOp.SEND_TT: 4,
    ControlOp.EXIT_TT: 5,
    ControlOp.REG_SEND_TT: 5,
    ControlOp.EXIT2_TT: 5,
    ControlOp.MONITOR_P: 4,
    ControlOp.DEMONITOR_P: 4,
    ControlOp.MONITOR_P_EXIT: 5,
    ControlOp.SEND_SENDER: 3,
    ControlOp.SEND_SENDER_TT: 4,
    ControlOp.PAYLOAD_EXIT: 3,
    ControlOp.PAYLOAD_EXIT_TT: 4,
    ControlOp.PAYLOAD_EXIT2: 3,
    ControlOp.PAYLOAD_EXIT2_TT: 4,
    ControlOp.PAYLOAD_MONITOR_P_EXIT: 4,
    ControlOp.SPAWN_REQUEST: 6,
    ControlOp.SPAWN_REQUEST_TT: 7,
    ControlOp.SPAWN_REPLY: 5,
    ControlOp.SPAWN_REPLY_TT: 6,
    ControlOp.ALIAS_SEND: 3,
    ControlOp.ALIAS_SEND_TT: 4,
    ControlOp.UNLINK_ID: 4,
    ControlOp.UNLINK_ID_ACK: 4,
}


# int -> member, cheaper than calling the enum on the receive path.
_OPS: Final[dict[int, ControlOp]] = {op.value: op for op in ControlOp}


def control_from_term(term: Term) -> ControlMessage:
    """Parse a decoded control tuple into its typed message (``_TT`` ops fold into the plain class).

    Args:
        term: the first term of a distribution message.

    Returns:
        The typed control message.

    Raises:
        DistProtocolError: not a tuple, an unknown op, a wrong arity or a wrongly typed element.
            The connection that carried it must be closed (Erlang does the same).
    """
    if type(term) is tuple and term and type(term[0]) is int:
        # The message-carrying ops first, without the generic checks: nearly every packet is one.
        n, op_number = len(term), term[0]
        if op_number == 6 and n == 4 and type(term[1]) is Pid and type(term[3]) is Atom:
            return RegSend(from_pid=term[1], to_name=term[3])
        if op_number == 22 and n == 3 and type(term[1]) is Pid and type(term[2]) is Pid:
            return SendSender(from_pid=term[1], to_pid=term[2])
    if not isinstance(term, tuple) or not term or not isinstance(term[0], int) or isinstance(term[0], bool):
        raise DistProtocolError(f"control message is not a tuple starting with an op number: {term!r}")
    op = _OPS.get(term[0])
    if op is None:
        raise DistProtocolError(f"unknown control op {term[0]}")
    if len(term) != _ARITY[op]:
        raise DistProtocolError(f"control op {op.name} has arity {len(term)}, expected {_ARITY[op]}")
    e = term
    match op:
        case ControlOp.LINK:
            return Link(from_pid=_pid(e[1], "From", op), to_pid=_pid(e[2], "To", op))
        case ControlOp.SEND | ControlOp.SEND_TT:
            return Send(to_pid=_pid(e[2], "To", op), token=e[3] if op == ControlOp.SEND_TT else None)
        case ControlOp.EXIT:
            return Exit(from_pid=_pid(e[1], "From", op), to_pid=_pid(e[2], "To", op), reason=e[3])
        case ControlOp.EXIT_TT:
            return Exit(from_pid=_pid(e[1], "From", op), to_pid=_pid(e[2], "To", op), reason=e[4], token=e[3])
        case ControlOp.UNLINK:
            return Unlink(from_pid=_pid(e[1], "From", op), to_pid=_pid(e[2], "To", op))
        case ControlOp.NODE_LINK:
            return NodeLink()
        case ControlOp.REG_SEND | ControlOp.REG_SEND_TT:
            return RegSend(
                from_pid=_pid(e[1], "From", op),
                to_name=_atom(e[3], "ToName", op),
                token=e[4] if op == ControlOp.REG_SEND_TT else None,
            )
        case ControlOp.GROUP_LEADER:
            return GroupLeader(from_pid=_pid(e[1], "From", op), to_pid=_pid(e[2], "To", op))
        case ControlOp.EXIT2:
            return Exit2(from_pid=_pid(e[1], "From", op), to_pid=_pid(e[2], "To", op), reason=e[3])
        case ControlOp.EXIT2_TT:
            return Exit2(
                from_pid=_pid(e[1], "From", op), to_pid=_pid(e[2], "To", op), reason=e[4], token=e[3]
            )
        case ControlOp.MONITOR_P:
            return MonitorP(
                from_pid=_pid(e[1], "From", op), to_proc=_proc(e[2], "ToProc", op), ref=_ref(e[3], "Ref", op)
            )
        case ControlOp.DEMONITOR_P:
            return DemonitorP(
                from_pid=_pid(e[1], "From", op), to_proc=_proc(e[2], "ToProc", op), ref=_ref(e[3], "Ref", op)
            )
        case ControlOp.MONITOR_P_EXIT:
            return MonitorPExit(
                from_proc=_proc(e[1], "FromProc", op),
                to_pid=_pid(e[2], "To", op),
                ref=_ref(e[3], "Ref", op),
                reason=e[4],
            )
        case ControlOp.SEND_SENDER | ControlOp.SEND_SENDER_TT:
            return SendSender(
                from_pid=_pid(e[1], "From", op),
                to_pid=_pid(e[2], "To", op),
                token=e[3] if op == ControlOp.SEND_SENDER_TT else None,
            )
        case ControlOp.PAYLOAD_EXIT | ControlOp.PAYLOAD_EXIT_TT:
            return PayloadExit(
                from_pid=_pid(e[1], "From", op),
                to_pid=_pid(e[2], "To", op),
                token=e[3] if op == ControlOp.PAYLOAD_EXIT_TT else None,
            )
        case ControlOp.PAYLOAD_EXIT2 | ControlOp.PAYLOAD_EXIT2_TT:
            return PayloadExit2(
                from_pid=_pid(e[1], "From", op),
                to_pid=_pid(e[2], "To", op),
                token=e[3] if op == ControlOp.PAYLOAD_EXIT2_TT else None,
            )
        case ControlOp.PAYLOAD_MONITOR_P_EXIT:
            return PayloadMonitorPExit(
                from_proc=_proc(e[1], "FromProc", op), to_pid=_pid(e[2], "To", op), ref=_ref(e[3], "Ref", op)
            )
        case ControlOp.SPAWN_REQUEST | ControlOp.SPAWN_REQUEST_TT:
            mfa = e[4]
            if not (isinstance(mfa, tuple) and len(mfa) == 3):
                raise DistProtocolError(f"control op {op.name}: MFA is not a 3-tuple: {mfa!r}")
            return SpawnRequest(
                req_id=_ref(e[1], "ReqId", op),
                from_pid=_pid(e[2], "From", op),
                group_leader=_pid(e[3], "GroupLeader", op),
                module=_atom(mfa[0], "Module", op),
                function=_atom(mfa[1], "Function", op),
                arity=_int(mfa[2], "Arity", op),
                opts=e[5],
                token=e[6] if op == ControlOp.SPAWN_REQUEST_TT else None,
            )
        case ControlOp.SPAWN_REPLY | ControlOp.SPAWN_REPLY_TT:
            return SpawnReply(
                req_id=_ref(e[1], "ReqId", op),
                to_pid=_pid(e[2], "To", op),
                flags=_int(e[3], "Flags", op),
                result=_proc(e[4], "Result", op),
                token=e[5] if op == ControlOp.SPAWN_REPLY_TT else None,
            )
        case ControlOp.ALIAS_SEND | ControlOp.ALIAS_SEND_TT:
            return AliasSend(
                from_pid=_pid(e[1], "From", op),
                alias=_ref(e[2], "Alias", op),
                token=e[3] if op == ControlOp.ALIAS_SEND_TT else None,
            )
        case ControlOp.UNLINK_ID:
            return UnlinkId(
                id=_int(e[1], "Id", op), from_pid=_pid(e[2], "From", op), to_pid=_pid(e[3], "To", op)
            )
        case ControlOp.UNLINK_ID_ACK:
            return UnlinkIdAck(
                id=_int(e[1], "Id", op), from_pid=_pid(e[2], "From", op), to_pid=_pid(e[3], "To", op)
            )
        case _:
            assert_never(op)
