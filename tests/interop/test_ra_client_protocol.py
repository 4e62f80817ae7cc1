"""The client side of Ra 2.2.0's wire protocol maps exactly (pyra_dist/erlang/client.py, machines.py).

Request shapes are the ones ``ra:*`` sent in the live capture (ra-internals §4, Appendix A);
reply shapes are those the differential harness recorded from real Ra. The BIF twins used by
``{simple, fun erlang:'+'/2, 0}`` machines and ``{erlang, F, A}`` queries are checked against a
real erl node.
"""

from __future__ import annotations

import secrets

import pytest

from erl_interop.node.process import ErlangError
from erl_interop.term import Atom, ExportFun, ImproperList, Map, OpaqueFun, Pid, Reference, Term, exact_equal
from erl_interop.testing import ErlPeer
from pyra_dist.core.effects import (
    AtomReply,
    AuxReply,
    ErrorReply,
    LocalQueryReply,
    OkReply,
    Pong,
    Redirect,
    WrapReply,
)
from pyra_dist.core.events import (
    AuxCommand,
    CommandRequest,
    DeleteClusterRequest,
    JoinRequest,
    LeaveRequest,
    PingRequest,
    QueryRequest,
    StateQueryRequest,
    TransferLeadershipRequest,
    TriggerElection,
)
from pyra_dist.core.machine import ApplyMeta, MachineConfig
from pyra_dist.erlang.client import (
    ErlangQuery,
    QueryFailed,
    QueryResolver,
    RemoteQuery,
    applied_event_term,
    machine_event_term,
    parse_call,
    parse_cast,
    rejected_event_term,
    reply_term,
    resolve_reply,
)
from pyra_dist.erlang.machines import BIFS, ErlangRegistry, ErlangSimpleMachine, UnsupportedMachine
from pyra_dist.erlang.records import RecordError
from pyra_dist.types import AFTER_LOG_APPEND, AWAIT_CONSENSUS, NO_REPLY, NotifyReply, Role, ServerId

A = Atom
SHELL = A("sh@127.0.0.1")
CALLER = Pid(SHELL, 90, 0, 3)
FROM = (CALLER, ImproperList((A("alias"),), Reference(SHELL, 3, (1, 2, 3))))
QS1 = ServerId("qs", "py1@127.0.0.1")
QS2 = ServerId("qs", "py2@127.0.0.1")
QS1_T = (A("qs"), A("py1@127.0.0.1"))
QS2_T = (A("qs"), A("py2@127.0.0.1"))
CLOSURE = OpaqueFun(bytes([112, 0, 0, 0, 10, 1]) + bytes(20))
REGISTRY = ErlangRegistry()


def query(q: Term, caller: Pid) -> ErlangQuery:
    return ErlangQuery(q, caller.node, REGISTRY.function)


def call(request: Term) -> object:
    return parse_call(request, FROM, now_ms=77, query=query)


def test_process_command_is_a_leader_call_with_an_await_consensus_usr_command() -> None:
    request = (A("leader_call"), (A("command"), A("normal"), (A("$usr"), 5, A("await_consensus"))))
    assert call(request) == CommandRequest(
        data=5, reply_mode=AWAIT_CONSENSUS, from_=FROM, priority="normal", system_time=77
    )


def test_membership_and_delete_requests_map_to_their_events() -> None:
    join = (A("leader_call"), (A("command"), A("normal"), (A("$ra_join"), QS2_T, A("after_log_append"))))
    leave = (A("leader_call"), (A("command"), A("normal"), (A("$ra_leave"), QS2_T, A("await_consensus"))))
    delete = (
        A("leader_call"),
        (A("command"), A("normal"), (A("$ra_cluster"), A("delete"), A("await_consensus"))),
    )
    assert call(join) == JoinRequest(QS2, AFTER_LOG_APPEND, FROM, 77)
    assert call(leave) == LeaveRequest(QS2, AWAIT_CONSENSUS, FROM, 77)
    assert call(delete) == DeleteClusterRequest(FROM, 77)


def test_queries_state_queries_and_control_calls_map_to_their_events() -> None:
    fun = ExportFun(A("erlang"), A("abs"), 1)
    local = call((A("local_query"), fun))
    assert isinstance(local, QueryRequest) and local.kind == "local" and local.from_ == FROM
    leader = call((A("leader_call"), (A("local_query"), fun)))
    assert isinstance(leader, QueryRequest) and leader.kind == "leader"
    consistent = call((A("leader_call"), (A("consistent_query"), fun)))
    assert isinstance(consistent, QueryRequest) and consistent.kind == "consistent"
    assert call((A("leader_call"), (A("state_query"), A("members")))) == StateQueryRequest(
        "members", FROM, False
    )
    assert call((A("local_call"), (A("state_query"), A("members")))) == StateQueryRequest(
        "members", FROM, True
    )
    assert call((A("leader_call"), (A("state_query"), A("initial_members")))) == StateQueryRequest(
        "initial_members", FROM, False
    )
    assert call((A("leader_call"), (A("transfer_leadership"), QS2_T))) == TransferLeadershipRequest(QS2, FROM)
    assert call(A("ping")) == PingRequest(FROM)
    assert call(A("trigger_election")) == TriggerElection(FROM)
    assert call((A("aux_command"), A("tick"))) == AuxCommand(A("tick"), FROM)


@pytest.mark.parametrize(
    "request_",
    [
        A("unknown"),
        (A("local_call"), (A("command"), A("normal"), (A("$usr"), 1, A("await_consensus")))),
        (A("leader_call"), (A("command"), A("urgent"), (A("$usr"), 1, A("await_consensus")))),
        (A("leader_call"), (A("command"), A("normal"), (A("$usr"), 1, A("after_everything")))),
        (A("leader_call"), (A("state_query"), A("machine"))),
    ],
)
def test_calls_ra_2_2_0_does_not_handle_are_refused(request_: Term) -> None:
    with pytest.raises(RecordError):
        call(request_)


def test_pipeline_casts_keep_priority_and_reply_mode() -> None:
    notify = (A("command"), A("low"), (A("$usr"), 1, (A("notify"), 42, CALLER)))
    assert parse_cast(notify, now_ms=5) == CommandRequest(
        data=1, reply_mode=NotifyReply(42, CALLER), from_=None, priority="low", system_time=5
    )
    forwarded = (A("command"), A("low"), (A("$usr"), (A("put"), A("w"), 4), A("noreply")))
    assert parse_cast(forwarded, now_ms=6) == CommandRequest(
        data=(A("put"), A("w"), 4), reply_mode=NO_REPLY, from_=None, priority="low", system_time=6
    )
    with pytest.raises(RecordError):
        parse_cast((A("command"), A("normal"), (A("$ra_join"), QS2_T, A("after_log_append"))), now_ms=0)


def test_replies_have_ra_2_2_0_shapes() -> None:
    cases: list[tuple[object, Term]] = [
        (WrapReply(12), (A("wrap_reply"), 12)),
        (Redirect(QS1), (A("redirect"), QS1_T)),
        (ErrorReply("cluster_change_not_permitted"), (A("error"), A("cluster_change_not_permitted"))),
        (LocalQueryReply(3, 1, 12, QS1), (A("ok"), ((3, 1), 12), QS1_T)),
        (LocalQueryReply(0, 0, 0, "not_known"), (A("ok"), ((0, 0), 0), A("not_known"))),
        (OkReply([QS1, QS2], QS1), (A("ok"), [QS1_T, QS2_T], QS1_T)),
        (OkReply(12, QS1), (A("ok"), 12, QS1_T)),
        (AtomReply("already_leader"), A("already_leader")),
        (Pong(Role.FOLLOWER), (A("pong"), A("follower"))),
        (AuxReply((A("ok"), 1)), (A("ok"), 1)),
        (LocalQueryReply(3, 1, QueryFailed(A("badarg")), QS1), (A("error"), A("badarg"))),
    ]
    for reply, term in cases:
        assert exact_equal(reply_term(reply), term), reply  # type: ignore[arg-type]


def test_ra_events_have_ra_2_2_0_shapes() -> None:
    assert exact_equal(
        applied_event_term(QS1, [(42, 13), (43, 14)]),
        (A("ra_event"), QS1_T, (A("applied"), [(42, 13), (43, 14)])),
    )
    assert exact_equal(
        rejected_event_term(QS2, QS1, 43),
        (A("ra_event"), QS2_T, (A("rejected"), (A("not_leader"), QS1_T, 43))),
    )
    assert exact_equal(
        rejected_event_term(QS2, None, 43),
        (A("ra_event"), QS2_T, (A("rejected"), (A("not_leader"), A("undefined"), 43))),
    )
    assert exact_equal(machine_event_term(QS1, b"hi"), (A("ra_event"), QS1_T, (A("machine"), b"hi")))


def test_mfa_queries_on_bifs_run_locally_with_erlang_errors() -> None:
    state = (A("simple"), ExportFun(A("erlang"), A("+"), 2), 12)
    simple = ErlangQuery((A("erlang"), A("-"), [100]), SHELL, REGISTRY.function, simple=True)
    assert simple(state) == 88
    assert ErlangQuery((A("erlang"), A("element"), [1]), SHELL, REGISTRY.function)(12) == QueryFailed(
        A("badarg")
    )
    assert ErlangQuery((A("erlang"), A("+"), [0]), SHELL, REGISTRY.function)(12) == 12


def test_closures_and_unknown_mfas_run_on_the_callers_node() -> None:
    assert ErlangQuery(CLOSURE, SHELL, REGISTRY.function)(12) == RemoteQuery(SHELL, CLOSURE, (), 12)
    mfa = (A("mymod"), A("get"), [A("k")])
    assert ErlangQuery(mfa, SHELL, REGISTRY.function)(12) == RemoteQuery(
        SHELL, (A("mymod"), A("get")), (A("k"),), 12
    )
    assert ErlangQuery(A("not_a_fun"), SHELL, REGISTRY.function)(1) == QueryFailed(
        (A("case_clause"), A("not_a_fun"))
    )


async def test_remote_query_results_and_failures_are_resolved_before_the_reply() -> None:
    from erl_interop.node.rpc import RpcError

    calls: list[tuple[Atom, Atom, Atom, list[Term]]] = []

    async def rpc(node: Atom, m: Atom, f: Atom, args: list[Term]) -> Term:
        calls.append((node, m, f, args))
        if args[0] == CLOSURE:
            return 24
        raise RpcError(A("exit"), A("boom"))

    resolver = QueryResolver(rpc)
    ok = await resolve_reply(LocalQueryReply(3, 1, RemoteQuery(SHELL, CLOSURE, (), 12), QS1), resolver)
    assert ok == LocalQueryReply(3, 1, 24, QS1)
    failed = await resolve_reply(OkReply(RemoteQuery(SHELL, (A("m"), A("f")), (1,), 12), QS1), resolver)
    assert exact_equal(reply_term(failed), (A("error"), A("boom")))  # type: ignore[arg-type]
    assert calls == [
        (SHELL, A("erlang"), A("apply"), [CLOSURE, [12]]),
        (SHELL, A("erlang"), A("apply"), [A("m"), A("f"), [1, 12]]),
    ]


def test_simple_machine_keeps_ra_machine_simple_state_and_replies_the_new_state() -> None:
    plus = ExportFun(A("erlang"), A("+"), 2)
    machine = REGISTRY.machine((A("simple"), plus, 0))
    assert isinstance(machine, ErlangSimpleMachine)
    state = machine.init(MachineConfig(name="qs"))
    assert state == (A("simple"), plus, 0)
    meta = ApplyMeta(index=2, term=1, system_time=0, machine_version=0)
    state, reply = machine.apply(meta, 5, state)[:2]
    state, reply = machine.apply(meta, 7, state)[:2]
    assert (state, reply) == ((A("simple"), plus, 12), 12)


def test_machines_a_python_node_cannot_run_are_refused_with_an_erlang_reason() -> None:
    with pytest.raises(UnsupportedMachine) as closure:
        REGISTRY.machine((A("simple"), CLOSURE, 0))
    assert closure.value.reason == (A("unsupported_machine_fun"), CLOSURE)
    with pytest.raises(UnsupportedMachine) as unknown:
        REGISTRY.machine((A("module"), A("kv_machine"), Map()))
    assert unknown.value.reason == A("undef")


def test_registered_python_machines_and_functions_are_found_by_erlang_name() -> None:
    from pyra_dist.core.machine import Machine

    class Counter(Machine):
        def __init__(self, config: object) -> None:
            self.config = config

    registry = ErlangRegistry()
    registry.register_machine("counter", Counter)
    machine = registry.machine((A("module"), A("counter"), Map({A("start"): 3})))
    assert isinstance(machine, Counter) and machine.config == {"start": 3}
    registry.register_function("mymod", "join", 2, lambda c, s: [*s, c])
    simple = registry.machine((A("simple"), ExportFun(A("mymod"), A("join"), 2), []))
    assert simple.apply(ApplyMeta(1, 1, 0, 0), 1, simple.init(MachineConfig("x")))[1] == [1]


BIF_CASES = [
    ("+", 5, 7),
    ("+", 1.5, 2),
    ("+", A("a"), 1),
    ("-", 100, 12),
    ("*", -3, 4),
    ("/", 7, 2),
    ("/", 1, 0),
    ("div", -7, 2),
    ("div", 7, -2),
    ("div", 7, 0),
    ("rem", -7, 2),
    ("rem", 7, -2),
    ("band", 12, 10),
    ("bor", 12, 10),
    ("bxor", 12, 10),
    ("max", 3, 3.0),
    ("min", 3, 3.0),
    ("max", -1, 2),
    ("++", [1, 2], [3]),
    ("++", [], 5),
    ("element", 2, (A("a"), A("b"))),
    ("element", 3, (A("a"), A("b"))),
]


def _erl(value: object) -> str:
    match value:
        case Atom():
            return f"'{value.name}'"
        case list():
            return "[" + ",".join(_erl(v) for v in value) + "]"
        case tuple():
            return "{" + ",".join(_erl(v) for v in value) + "}"
        case _:
            return repr(value)


@pytest.mark.erlang
def test_bif_twins_answer_what_erlang_answers() -> None:
    from erl_interop.term import binary_to_term

    expr = (
        "[try {ok, erlang:apply(M, F, Args)} catch error:R -> {error, R} end || {M, F, Args} <- ["
        + ",".join(f"{{erlang,'{op}',[{_erl(a)},{_erl(b)}]}}" for op, a, b in BIF_CASES)
        + "]]."
    )
    with ErlPeer("bif" + secrets.token_hex(3), "c" + secrets.token_hex(8), long_names=True) as peer:
        expected = binary_to_term(peer.eval_result(expr).etf)
    actual: list[Term] = []
    for op, a, b in BIF_CASES:
        try:
            actual.append((A("ok"), BIFS[("erlang", op, 2)](a, b)))  # type: ignore[arg-type]
        except ErlangError as exc:
            actual.append((A("error"), exc.reason))
    assert exact_equal(actual, expected), (actual, expected)


# ---------------------------------------------------------------------------------------------
# Python clients of remote servers (pyra_dist/erlang/remote.py) and transport helpers
# ---------------------------------------------------------------------------------------------


def test_python_requests_become_the_terms_ra_sends_and_replies_come_back_typed() -> None:
    from pyra_dist.erlang.remote import reply_from_term, request_term

    relay = Pid(SHELL, 7, 0, 3)
    command = CommandRequest(data=5, reply_mode=AWAIT_CONSENSUS, from_=None, priority="normal")
    assert request_term(command, lambda _: relay) == (
        (A("leader_call"), (A("command"), A("normal"), (A("$usr"), 5, A("await_consensus")))),
        True,
    )
    notify = CommandRequest(data=1, reply_mode=NotifyReply(9, object()), from_=None, priority="low")
    assert request_term(notify, lambda _: relay)[0] == (
        A("leader_call"),
        (A("command"), A("low"), (A("$usr"), 1, (A("notify"), 9, relay))),
    )
    members = StateQueryRequest("members", None, True)
    assert request_term(members, None) == ((A("local_call"), (A("state_query"), A("members"))), False)
    assert reply_from_term(members, (A("ok"), [QS1_T, QS2_T], QS2_T)) == OkReply([QS1, QS2], QS2)
    query = QueryRequest("local", ErlangQuery((A("erlang"), A("+"), [0]), SHELL, REGISTRY.function), None)
    assert request_term(query, None) == ((A("local_query"), (A("erlang"), A("+"), [0])), False)
    assert reply_from_term(query, (A("ok"), ((3, 1), 12), A("not_known"))) == LocalQueryReply(
        3, 1, 12, "not_known"
    )
    assert reply_from_term(command, (A("wrap_reply"), 12)) == WrapReply(12)
    assert reply_from_term(command, (A("redirect"), QS1_T)) == Redirect(QS1)
    assert reply_from_term(command, (A("error"), A("not_member"))) == ErrorReply("not_member")
    assert reply_from_term(PingRequest(None), (A("pong"), A("leader"))) == Pong(Role.LEADER)
    assert reply_from_term(TriggerElection(None), A("ok")) == AtomReply("ok")


def test_a_python_callable_query_cannot_travel_to_another_node() -> None:
    from pyra_dist.erlang.remote import request_term
    from pyra_dist.server.errors import RaError

    with pytest.raises(RaError):
        request_term(QueryRequest("leader", lambda s: s, None), None)


def test_closures_run_on_the_node_that_created_them() -> None:
    from erl_interop.term import term_to_binary
    from pyra_dist.erlang.transport import fun_home_node

    # A NEW_FUN_EXT made by pid <shell.90.0>: the tail after the fixed header is Module, OldIndex,
    # OldUniq, Pid (erts external format).
    tail = term_to_binary((A("erl_eval"), 1, 2, CALLER))[3:]  # drop 131, SMALL_TUPLE_EXT, arity
    fun = OpaqueFun(bytes([112, 0, 0, 0, 0, 1]) + bytes(16) + bytes(8) + tail)
    assert fun_home_node(fun) == SHELL
    assert fun_home_node(ExportFun(A("erlang"), A("abs"), 1)) is None


def test_ra_events_from_erlang_become_python_ra_events() -> None:
    from pyra_dist.erlang.transport import _ra_event_from_term
    from pyra_dist.server.transport import RaEvent

    assert _ra_event_from_term(applied_event_term(QS1, [(42, 13)])) == RaEvent(QS1, "applied", ((42, 13),))
    assert _ra_event_from_term(rejected_event_term(QS2, QS1, 43)) == RaEvent(QS2, "rejected", (QS1, 43))
    assert _ra_event_from_term(rejected_event_term(QS2, None, 43)) == RaEvent(QS2, "rejected", (None, 43))
    assert _ra_event_from_term(machine_event_term(QS1, b"m")) == RaEvent(QS1, "machine", b"m")
    assert _ra_event_from_term((A("other"), 1)) is None
