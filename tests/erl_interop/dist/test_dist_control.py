"""Every control message round-trips through its tuple and the term codec; bad tuples are refused."""

from __future__ import annotations

import pytest

from erl_interop.dist import control as c
from erl_interop.dist.errors import DistProtocolError
from erl_interop.term import Atom, ImproperList, Pid, Reference, Term, decode, encode

E = Atom("e@vm")
P = Atom("py@vm")
EPID = Pid(E, 9, 0, 1795833609)
PPID = Pid(P, 100, 0, 7)
REF = Reference(E, 1795833609, (1, 2, 3))
TOKEN = (Atom("label"), 1, 2, EPID, 3)

MESSAGES: list[tuple[c.ControlMessage, Term]] = [
    (c.Link(from_pid=EPID, to_pid=PPID), (1, EPID, PPID)),
    (c.Send(to_pid=PPID), (2, Atom(""), PPID)),
    (c.Exit(from_pid=EPID, to_pid=PPID, reason=Atom("boom")), (3, EPID, PPID, Atom("boom"))),
    (c.Unlink(from_pid=EPID, to_pid=PPID), (4, EPID, PPID)),
    (c.NodeLink(), (5,)),
    (c.RegSend(from_pid=EPID, to_name=Atom("net_kernel")), (6, EPID, Atom(""), Atom("net_kernel"))),
    (c.GroupLeader(from_pid=EPID, to_pid=PPID), (7, EPID, PPID)),
    (c.Exit2(from_pid=EPID, to_pid=PPID, reason=Atom("kill")), (8, EPID, PPID, Atom("kill"))),
    (c.Send(to_pid=PPID, token=TOKEN), (12, Atom(""), PPID, TOKEN)),
    (c.Exit(from_pid=EPID, to_pid=PPID, reason=1, token=TOKEN), (13, EPID, PPID, TOKEN, 1)),
    (c.RegSend(from_pid=EPID, to_name=Atom("rex"), token=TOKEN), (16, EPID, Atom(""), Atom("rex"), TOKEN)),
    (c.Exit2(from_pid=EPID, to_pid=PPID, reason=2, token=TOKEN), (18, EPID, PPID, TOKEN, 2)),
    (c.MonitorP(from_pid=EPID, to_proc=Atom("net_kernel"), ref=REF), (19, EPID, Atom("net_kernel"), REF)),
    (c.MonitorP(from_pid=EPID, to_proc=PPID, ref=REF), (19, EPID, PPID, REF)),
    (c.DemonitorP(from_pid=EPID, to_proc=Atom("x"), ref=REF), (20, EPID, Atom("x"), REF)),
    (
        c.MonitorPExit(from_proc=PPID, to_pid=EPID, ref=REF, reason=Atom("normal")),
        (21, PPID, EPID, REF, Atom("normal")),
    ),
    (c.SendSender(from_pid=EPID, to_pid=PPID), (22, EPID, PPID)),
    (c.SendSender(from_pid=EPID, to_pid=PPID, token=TOKEN), (23, EPID, PPID, TOKEN)),
    (c.PayloadExit(from_pid=EPID, to_pid=PPID), (24, EPID, PPID)),
    (c.PayloadExit(from_pid=EPID, to_pid=PPID, token=TOKEN), (25, EPID, PPID, TOKEN)),
    (c.PayloadExit2(from_pid=EPID, to_pid=PPID), (26, EPID, PPID)),
    (c.PayloadExit2(from_pid=EPID, to_pid=PPID, token=TOKEN), (27, EPID, PPID, TOKEN)),
    (c.PayloadMonitorPExit(from_proc=Atom("nosuch"), to_pid=EPID, ref=REF), (28, Atom("nosuch"), EPID, REF)),
    (
        c.SpawnRequest(
            req_id=REF,
            from_pid=EPID,
            group_leader=EPID,
            module=Atom("erpc"),
            function=Atom("execute_call"),
            arity=4,
            opts=[Atom("monitor")],
        ),
        (29, REF, EPID, EPID, (Atom("erpc"), Atom("execute_call"), 4), [Atom("monitor")]),
    ),
    (
        c.SpawnRequest(
            req_id=REF,
            from_pid=EPID,
            group_leader=EPID,
            module=Atom("m"),
            function=Atom("f"),
            arity=0,
            opts=[],
            token=TOKEN,
        ),
        (30, REF, EPID, EPID, (Atom("m"), Atom("f"), 0), [], TOKEN),
    ),
    (c.SpawnReply(req_id=REF, to_pid=EPID, flags=2, result=PPID), (31, REF, EPID, 2, PPID)),
    (
        c.SpawnReply(req_id=REF, to_pid=EPID, flags=0, result=Atom("badopt")),
        (31, REF, EPID, 0, Atom("badopt")),
    ),
    (
        c.SpawnReply(req_id=REF, to_pid=EPID, flags=0, result=PPID, token=TOKEN),
        (32, REF, EPID, 0, PPID, TOKEN),
    ),
    (c.AliasSend(from_pid=PPID, alias=REF), (33, PPID, REF)),
    (c.AliasSend(from_pid=PPID, alias=REF, token=TOKEN), (34, PPID, REF, TOKEN)),
    (c.UnlinkId(id=4, from_pid=EPID, to_pid=PPID), (35, 4, EPID, PPID)),
    (c.UnlinkIdAck(id=4, from_pid=PPID, to_pid=EPID), (36, 4, PPID, EPID)),
]


@pytest.mark.parametrize(("message", "expected"), MESSAGES, ids=lambda v: type(v).__name__)
def test_every_control_message_round_trips_through_its_tuple_and_the_codec(
    message: c.ControlMessage, expected: Term
) -> None:
    term = c.control_to_term(message)
    assert term == expected
    out = bytearray()
    encode(term, out)
    decoded, end = decode(bytes(out))
    assert end == len(out)
    assert c.control_from_term(decoded) == message


def test_payload_ops_are_exactly_the_sends_payload_exits_spawn_requests_and_alias_sends() -> None:
    with_payload = {type(m).__name__ for m, _ in MESSAGES if c.carries_payload(m)}
    assert with_payload == {
        "Send",
        "RegSend",
        "SendSender",
        "PayloadExit",
        "PayloadExit2",
        "PayloadMonitorPExit",
        "SpawnRequest",
        "AliasSend",
    }
    assert [op for op in c.ControlOp if c.op_carries_payload(op)] == [
        c.ControlOp.SEND,
        c.ControlOp.REG_SEND,
        c.ControlOp.SEND_TT,
        c.ControlOp.REG_SEND_TT,
        c.ControlOp.SEND_SENDER,
        c.ControlOp.SEND_SENDER_TT,
        c.ControlOp.PAYLOAD_EXIT,
        c.ControlOp.PAYLOAD_EXIT_TT,
        c.ControlOp.PAYLOAD_EXIT2,
        c.ControlOp.PAYLOAD_EXIT2_TT,
        c.ControlOp.PAYLOAD_MONITOR_P_EXIT,
        c.ControlOp.SPAWN_REQUEST,
        c.ControlOp.SPAWN_REQUEST_TT,
        c.ControlOp.ALIAS_SEND,
        c.ControlOp.ALIAS_SEND_TT,
    ]


def test_control_op_reports_the_traced_op_when_a_token_is_set() -> None:
    assert c.control_op(c.Send(to_pid=PPID)) is c.ControlOp.SEND
    assert c.control_op(c.Send(to_pid=PPID, token=TOKEN)) is c.ControlOp.SEND_TT


@pytest.mark.parametrize(
    ("term", "error"),
    [
        ((37, EPID, PPID), "unknown control op 37"),
        ((9,), "unknown control op 9"),
        ((1, EPID), "arity 2, expected 3"),
        ((6, EPID, Atom(""), "net_kernel"), "ToName is not an atom"),
        ((19, EPID, 42, REF), "neither a pid nor an atom"),
        ((22, Atom("x"), PPID), "From is not a pid"),
        ((35, True, EPID, PPID), "Id is not an integer"),
        ((29, REF, EPID, EPID, (Atom("m"), Atom("f")), []), "MFA is not a 3-tuple"),
        ([1, EPID, PPID], "not a tuple"),
        (ImproperList((1,), 2), "not a tuple"),
        ((), "not a tuple"),
    ],
)
def test_malformed_control_tuples_are_protocol_errors(term: Term, error: str) -> None:
    with pytest.raises(DistProtocolError, match=error.replace("(", r"\(").replace(")", r"\)")):
        c.control_from_term(term)
