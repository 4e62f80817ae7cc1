"""Ra 2.2.0's records and log commands convert exactly, both ways (pyra_dist/erlang/records.py).

The unit tests use the shapes of ra-internals Appendix A; the capture test runs a real Ra 2.2.0
cluster through every exchange, traces its servers, and checks that every record, entry and
command they sent or received survives ``to_term(from_term(t)) == t``.
"""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path

import pytest
from ra_differential import capture_ra_wire, client_shells, ra_cluster

from erl_interop.term import Atom, ImproperList, Map, Pid, Reference, Term, binary_to_term, exact_equal
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    ChunkState,
    HeartbeatReply,
    HeartbeatRpc,
    InstallSnapshotResult,
    InstallSnapshotRpc,
    PeerRpc,
    PreVoteResult,
    PreVoteRpc,
    RequestVoteResult,
    RequestVoteRpc,
    TryBecomeLeader,
)
from pyra_dist.erlang.records import (
    RecordError,
    UnsupportedRaVersion,
    command_from_term,
    command_to_term,
    entry_from_term,
    entry_to_term,
    reply_mode_from_term,
    rpc_from_term,
    rpc_to_term,
    snapshot_meta_from_term,
)
from pyra_dist.erlang.snapshots import RaSnapshotCodec
from pyra_dist.types import (
    AFTER_LOG_APPEND,
    AWAIT_CONSENSUS,
    NO_REPLY,
    ClusterChange,
    ClusterDelete,
    Entry,
    Noop,
    NotifyReply,
    PeerState,
    ServerId,
    SnapshotMeta,
    UsrCommand,
)

A = Atom
S1 = ServerId("s1", "ra1@vm")
S2 = ServerId("s2", "spy@vm")
S4 = ServerId("s4", "spy@vm")
S1_T = (A("s1"), A("ra1@vm"))
S2_T = (A("s2"), A("spy@vm"))
S4_T = (A("s4"), A("spy@vm"))
CLIENT = Pid(A("ra1@vm"), 9, 0, 1)
ALIAS_REF = Reference(A("ra1@vm"), 1, (1, 2, 3))
FROM = (CLIENT, ImproperList((A("alias"),), ALIAS_REF))
TOKEN = Reference(A("ra1@vm"), 1, (7, 8, 9))


def _both_ways(term: Term, value: PeerRpc) -> None:
    assert rpc_from_term(term) == value
    assert exact_equal(rpc_to_term(value), term)


def test_append_entries_rpc_with_the_first_noop_converts_both_ways() -> None:
    term = (
        A("append_entries_rpc"),
        1,
        S1_T,
        0,
        0,
        0,
        [(1, 1, (A("noop"), Map({A("ts"): 1795834541509}), 0))],
    )
    rpc = AppendEntriesRpc(
        term=1,
        leader_id=S1,
        leader_commit=0,
        prev_log_index=0,
        prev_log_term=0,
        entries=(Entry(1, 1, Noop(machine_version=0, ts=1795834541509)),),
    )
    _both_ways(term, rpc)


def test_append_entries_reply_carries_success_as_the_atom_true() -> None:
    _both_ways(
        (A("append_entries_reply"), 1, True, 2, 1, 1),
        AppendEntriesReply(term=1, success=True, next_index=2, last_index=1, last_term=1),
    )
    _both_ways(
        (A("append_entries_reply"), 1, False, 3, 2, 1),
        AppendEntriesReply(term=1, success=False, next_index=3, last_index=2, last_term=1),
    )


def test_vote_records_keep_field_order_and_the_pre_vote_token() -> None:
    _both_ways((A("request_vote_rpc"), 1, S1_T, 0, 0), RequestVoteRpc(1, S1, 0, 0))
    _both_ways((A("request_vote_result"), 1, True), RequestVoteResult(1, True))
    _both_ways(
        (A("pre_vote_rpc"), 1, 0, 0, TOKEN, S1_T, 0, 0),
        PreVoteRpc(
            version=1,
            machine_version=0,
            term=0,
            token=TOKEN,
            candidate_id=S1,
            last_log_index=0,
            last_log_term=0,
        ),
    )
    _both_ways((A("pre_vote_result"), 0, TOKEN, True), PreVoteResult(term=0, token=TOKEN, vote_granted=True))


def test_heartbeat_records_convert_both_ways() -> None:
    _both_ways((A("heartbeat_rpc"), 7, 1, S1_T), HeartbeatRpc(query_index=7, term=1, leader_id=S1))
    _both_ways((A("heartbeat_reply"), 7, 1), HeartbeatReply(query_index=7, term=1))


def test_install_snapshot_rpc_meta_lists_the_cluster_and_chunks_count_from_one() -> None:
    meta = Map(
        {
            A("cluster"): [S1_T, S2_T],
            A("index"): 6,
            A("machine_version"): 0,
            A("term"): 1,
        }
    )
    data = bytes([2, 118, 197, 58, 131, 97, 15])
    _both_ways(
        (A("install_snapshot_rpc"), 1, S1_T, meta, (1, A("last")), data),
        InstallSnapshotRpc(
            term=1,
            leader_id=S1,
            meta=SnapshotMeta(index=6, term=1, cluster=(S1, S2), machine_version=0),
            chunk_state=ChunkState(1, "last"),
            data=data,
        ),
    )
    _both_ways(
        (A("install_snapshot_result"), 1, 6, 1), InstallSnapshotResult(term=1, last_index=6, last_term=1)
    )


def test_try_become_leader_is_a_bare_atom() -> None:
    _both_ways(A("try_become_leader"), TryBecomeLeader())


def test_usr_commands_keep_from_ts_and_each_reply_mode() -> None:
    called = (
        A("$usr"),
        Map({A("from"): FROM, A("ts"): 1795834542004}),
        (A("put"), A("a"), 1),
        A("await_consensus"),
    )
    assert command_from_term(called) == UsrCommand(
        data=(A("put"), A("a"), 1), reply_mode=AWAIT_CONSENSUS, from_=FROM, ts=1795834542004
    )
    assert exact_equal(command_to_term(command_from_term(called)), called)
    notify = (A("$usr"), Map({A("ts"): 5}), (A("put"), A("c"), 3), (A("notify"), 43, CLIENT))
    assert command_from_term(notify) == UsrCommand(
        data=(A("put"), A("c"), 3), reply_mode=NotifyReply(43, CLIENT), ts=5
    )
    assert exact_equal(command_to_term(command_from_term(notify)), notify)
    noreply = (A("$usr"), Map({A("ts"): 6}), b"payload", A("noreply"))
    assert command_from_term(noreply) == UsrCommand(data=b"payload", reply_mode=NO_REPLY, ts=6)
    assert exact_equal(command_to_term(command_from_term(noreply)), noreply)


def test_cluster_change_keeps_every_peer_map_value() -> None:
    def peer(ci: int, mi: int, ni: int, qi: int, status: Term) -> Map:
        return Map(
            {
                A("commit_index_sent"): ci,
                A("match_index"): mi,
                A("next_index"): ni,
                A("query_index"): qi,
                A("status"): status,
            }
        )

    sending = (A("sending_snapshot"), Pid(A("ra1@vm"), 155, 0, 1))
    cluster = Map(
        {
            S1_T: peer(0, 0, 1, 0, A("normal")),
            S2_T: peer(7, 7, 8, 1, A("normal")),
            S4_T: peer(0, 0, 1, 0, sending),
        }
    )
    term = (A("$ra_cluster_change"), Map({A("from"): FROM, A("ts"): 9}), cluster, A("after_log_append"))
    command = command_from_term(term)
    assert command == ClusterChange(
        cluster={
            S1: PeerState(next_index=1, match_index=0, commit_index_sent=0, query_index=0, status="normal"),
            S2: PeerState(next_index=8, match_index=7, commit_index_sent=7, query_index=1, status="normal"),
            S4: PeerState(next_index=1, match_index=0, commit_index_sent=0, query_index=0, status=sending),
        },
        reply_mode=AFTER_LOG_APPEND,
        from_=FROM,
        ts=9,
    )
    assert exact_equal(command_to_term(command), term)


def test_delete_cluster_command_converts_both_ways() -> None:
    term = (A("$ra_cluster"), Map({A("from"): FROM, A("ts"): 3}), A("delete"), A("await_consensus"))
    assert command_from_term(term) == ClusterDelete(reply_mode=AWAIT_CONSENSUS, from_=FROM, ts=3)
    assert exact_equal(command_to_term(command_from_term(term)), term)


def test_entries_are_index_term_command_triples() -> None:
    term = (4, 2, (A("noop"), Map({A("ts"): 1}), 3))
    assert entry_from_term(term) == Entry(4, 2, Noop(machine_version=3, ts=1))
    assert exact_equal(entry_to_term(entry_from_term(term)), term)


@pytest.mark.parametrize(
    "term",
    [
        # Ra main's info_rpc does not exist in 2.2.0.
        (A("info_rpc"), (A("s1"), A("n")), 1, [A("machine_version")]),
        # A record with one field too many.
        (A("heartbeat_reply"), 1, 1, 1),
        # Booleans are atoms, never integers.
        (A("request_vote_result"), 1, 1),
        # Main's live-index snapshot phase.
        (
            A("install_snapshot_rpc"),
            1,
            S1_T,
            Map({A("cluster"): [S1_T], A("index"): 1, A("machine_version"): 0, A("term"): 1}),
            (0, A("init")),
            b"",
        ),
        # An entry whose command carries a key Ra 2.2.0 never writes.
        (A("append_entries_rpc"), 1, S1_T, 0, 0, 0, [(1, 1, (A("noop"), Map({A("ts"): 1, A("x"): 2}), 0))]),
    ],
)
def test_terms_that_2_2_0_never_sends_are_refused(term: Term) -> None:
    with pytest.raises(RecordError):
        rpc_from_term(term)


def test_snapshot_bytes_carry_ras_crc_and_a_wrong_crc_is_refused() -> None:
    meta = SnapshotMeta(index=6, term=1, cluster=(S1, S2), machine_version=0)
    data = RaSnapshotCodec().encode(meta, 15)
    assert data[4:] == bytes([131, 97, 15])
    assert RaSnapshotCodec().decode(meta, data) == 15
    with pytest.raises(ValueError, match="checksum"):
        RaSnapshotCodec().decode(SnapshotMeta(index=7, term=1, cluster=(S1, S2), machine_version=0), data)


def test_main_style_cluster_values_and_snapshot_meta_maps_are_refused() -> None:
    voter = Map(
        {
            A("commit_index_sent"): 0,
            A("match_index"): 0,
            A("next_index"): 1,
            A("query_index"): 0,
            A("status"): A("normal"),
            A("voter_status"): Map({A("membership"): A("voter")}),
        }
    )
    with pytest.raises(RecordError):
        command_from_term((A("$ra_cluster_change"), Map({A("ts"): 1}), Map({S1_T: voter}), A("noreply")))
    with pytest.raises(RecordError):
        snapshot_meta_from_term(
            Map({A("cluster"): Map({S1_T: Map()}), A("index"): 1, A("machine_version"): 0, A("term"): 1})
        )


# ---------------------------------------------------------------------------------------------
# Ra main (3.x) shapes: refused with UnsupportedRaVersion and a message naming the peer
# ---------------------------------------------------------------------------------------------

PY1_T = (A("s1"), A("py1@127.0.0.1"))
SPEAKS = "pyra speaks Ra 2.2.0 (protocol 1)"
AER_REFUSED = "entries refused (not appended, not answered)"
META_2_2_0 = Map({A("cluster"): [S1_T], A("index"): 1, A("machine_version"): 0, A("term"): 1})
META_MAIN = Map(
    {
        A("cluster"): Map({S1_T: Map({A("voter_status"): Map({A("membership"): A("voter")})})}),
        A("index"): 1,
        A("machine_version"): 0,
        A("term"): 1,
    }
)


def _peer_map(status: Term, **extra: Term) -> Map:
    return Map(
        {
            A("commit_index_sent"): 0,
            A("match_index"): 0,
            A("next_index"): 1,
            A("query_index"): 0,
            A("status"): status,
            **{A(k): v for k, v in extra.items()},
        }
    )


def _aer_with(command: Term) -> Term:
    return (
        A("append_entries_rpc"),
        2,
        S1_T,
        0,
        0,
        0,
        [(1, 2, (A("noop"), Map({A("ts"): 1}), 0)), (2, 2, command)],
    )


def _change(peer: Map) -> Term:
    return (A("$ra_cluster_change"), Map({A("ts"): 1}), Map({S1_T: peer}), A("noreply"))


@pytest.mark.parametrize(
    ("term", "kind", "message"),
    [
        (
            (A("info_rpc"), PY1_T, 3, [A("machine_version")]),
            "info_rpc",
            "info_rpc for [machine_version] (Ra main machine version discovery) from {s1,'py1@127.0.0.1'}: "
            f"{SPEAKS}; not answered (the leader keeps the effective machine version)",
        ),
        (
            (A("info_reply"), S1_T, 3, [A("machine_version")], Map({A("machine_version"): 1})),
            "info_reply",
            f"info_reply (Ra main) from {{s1,ra1@vm}}: {SPEAKS}; ignored",
        ),
        (
            A("election_timeout"),
            "election_timeout",
            f"election_timeout cast (Ra main leadership transfer): {SPEAKS}; "
            "ignored (pyra takes transfers as try_become_leader)",
        ),
        (
            (A("pre_vote_rpc"), 2, 0, 5, TOKEN, S1_T, 3, 1),
            "pre_vote_version",
            f"pre_vote_rpc protocol version 2 from {{s1,ra1@vm}}: {SPEAKS}; vote refused (not answered)",
        ),
        (
            (A("install_snapshot_rpc"), 1, S1_T, META_MAIN, (0, A("init")), []),
            "snapshot_phase",
            "install_snapshot_rpc carrying chunk state {0,init} (Ra main live-index snapshot phase) "
            f"from {{s1,ra1@vm}}: {SPEAKS}; snapshot refused (chunk not answered)",
        ),
        (
            (A("install_snapshot_rpc"), 1, S1_T, META_2_2_0, (0, A("pre")), [(1, 1, A("x"))]),
            "snapshot_phase",
            "install_snapshot_rpc carrying chunk state {0,pre} (Ra main live-index snapshot phase) "
            f"from {{s1,ra1@vm}}: {SPEAKS}; snapshot refused (chunk not answered)",
        ),
        (
            (A("install_snapshot_rpc"), 1, S1_T, META_MAIN, (1, A("last")), b"\x00\x00\x00\x00\x83a\x01"),
            "snapshot_meta_cluster",
            "install_snapshot_rpc carrying a snapshot meta whose cluster is a map (Ra main) "
            f"from {{s1,ra1@vm}}: {SPEAKS}; snapshot refused (chunk not answered)",
        ),
        (
            _aer_with(_change(_peer_map(A("normal"), voter_status=Map({A("membership"): A("voter")})))),
            "cluster_map",
            "append_entries_rpc entry 2 carrying a cluster map value with voter_status (Ra main membership) "
            f"from {{s1,ra1@vm}}: {SPEAKS}; entries refused (not appended, not answered)",
        ),
        (
            _aer_with(_change(_peer_map(A("normal"), machine_version=1))),
            "cluster_map",
            "append_entries_rpc entry 2 carrying a cluster map value with machine_version (Ra main machine "
            f"version discovery) from {{s1,ra1@vm}}: {SPEAKS}; entries refused (not appended, not answered)",
        ),
        (
            _aer_with(_change(_peer_map(A("disconnected")))),
            "peer_status",
            "append_entries_rpc entry 2 carrying a cluster map value with peer status disconnected (Ra main) "
            f"from {{s1,ra1@vm}}: {SPEAKS}; entries refused (not appended, not answered)",
        ),
        (
            _aer_with(_change(_peer_map((A("snapshot_backoff"), 3)))),
            "peer_status",
            "append_entries_rpc entry 2 carrying a cluster map value with peer status {snapshot_backoff,3} "
            f"(Ra main) from {{s1,ra1@vm}}: {SPEAKS}; entries refused (not appended, not answered)",
        ),
        (
            _aer_with(_change(_peer_map((A("sending_snapshot"), CLIENT, 1)))),
            "peer_status",
            "append_entries_rpc entry 2 carrying a cluster map value with peer status "
            f"{{sending_snapshot,Pid,1}} (Ra main) from {{s1,ra1@vm}}: {SPEAKS}; {AER_REFUSED}",
        ),
        (
            _aer_with(
                (
                    A("$usr"),
                    Map({A("ts"): 1}),
                    A("x"),
                    (A("await_consensus"), Map({A("reply_from"): A("local")})),
                )
            ),
            "reply_mode",
            "append_entries_rpc entry 2 carrying reply mode {await_consensus,#{reply_from => local}} "
            f"(Ra main reply_from option) from {{s1,ra1@vm}}: {SPEAKS}; {AER_REFUSED}",
        ),
    ],
)
def test_ra_main_terms_are_refused_with_a_message_naming_the_sender_and_the_outcome(
    term: Term, kind: str, message: str
) -> None:
    with pytest.raises(UnsupportedRaVersion) as refused:
        rpc_from_term(term)
    assert (refused.value.kind, str(refused.value)) == (kind, message)


def test_a_ra_main_reply_mode_in_a_client_command_is_refused_on_its_own() -> None:
    with pytest.raises(UnsupportedRaVersion) as refused:
        reply_mode_from_term((A("await_consensus"), Map({A("reply_from"): (A("member"), S1_T)})))
    assert str(refused.value) == (
        "reply mode {await_consensus,#{reply_from => {member,{s1,ra1@vm}}}} (Ra main reply_from option): "
        f"{SPEAKS}; command refused (not answered)"
    )


def test_a_refusal_message_never_carries_the_whole_term() -> None:
    big = bytes(2_000_000)
    with pytest.raises(UnsupportedRaVersion) as refused:
        rpc_from_term((A("install_snapshot_rpc"), 1, S1_T, META_2_2_0, (0, A("init")), big))
    assert len(str(refused.value)) < 300


def test_2_2_0_shapes_next_to_main_ones_still_decode() -> None:
    # Protocol version 1 and 2.2.0's own statuses are not mistaken for Ra main's.
    sending = (A("sending_snapshot"), CLIENT)
    command = command_from_term(_change(_peer_map(sending)))
    assert isinstance(command, ClusterChange)
    assert command.cluster[S1].status == sending
    assert rpc_from_term((A("pre_vote_rpc"), 1, 0, 5, TOKEN, S1_T, 3, 1)) == PreVoteRpc(
        1, 0, 5, TOKEN, S1, 3, 1
    )


# ---------------------------------------------------------------------------------------------
# Live capture from a real Ra 2.2.0 cluster
# ---------------------------------------------------------------------------------------------

GEN_CAST = A("$gen_cast")
GEN_CALL = A("$gen_call")
RECORD_TAGS = {
    "append_entries_rpc",
    "append_entries_reply",
    "request_vote_rpc",
    "request_vote_result",
    "pre_vote_rpc",
    "pre_vote_result",
    "install_snapshot_rpc",
    "install_snapshot_result",
    "heartbeat_rpc",
    "heartbeat_reply",
}


def _records_in(message: Term) -> list[Term]:
    """The Ra peer records inside one traced message, with Ra's envelopes removed (§1.3)."""

    def is_record(t: Term) -> bool:
        return t == A("try_become_leader") or (
            type(t) is tuple and bool(t) and type(t[0]) is Atom and t[0].name in RECORD_TAGS
        )

    found: list[Term] = []
    if type(message) is tuple and len(message) == 2 and message[0] == GEN_CAST:
        body = message[1]
        if is_record(body):
            found.append(body)
        elif type(body) is tuple and len(body) == 2 and is_record(body[1]):
            found.append(body[1])  # {FollowerId, Reply}
    elif type(message) is tuple and len(message) == 3 and message[0] == GEN_CALL and is_record(message[2]):
        found.append(message[2])
    elif (
        type(message) is tuple
        and len(message) == 2
        and type(message[0]) is ImproperList
        and is_record(message[1])
    ):
        found.append(message[1])  # gen reply {[alias|Ref], Result}
    return found


@pytest.mark.erlang
def test_every_record_and_entry_a_real_ra_cluster_exchanges_round_trips(tmp_path: Path) -> None:
    cookie = "c" + secrets.token_hex(8)
    prefix = "rec" + secrets.token_hex(3)
    with (
        ra_cluster(prefix, cookie, tmp_path / "data") as cluster,
        client_shells(prefix, cookie, kinds=("ra_client",)) as shells,
    ):
        etf = capture_ra_wire(shells.ra_client, cluster.nodes, tmp_path)
    captured = binary_to_term(etf)
    assert isinstance(captured, list)
    kinds: Counter[str] = Counter()
    for _node, events in captured:
        assert isinstance(events, list)
        for event in events:
            message = event[2] if event[0] == A("send") else event[1]
            for record in _records_in(message):
                rpc = rpc_from_term(record)
                assert exact_equal(rpc_to_term(rpc), record)
                kinds[type(rpc).__name__] += 1
                if isinstance(rpc, InstallSnapshotRpc) and rpc.chunk_state == ChunkState(1, "last"):
                    # Ra's CRC over OTP 25's encoding of the meta: decode checks it, encode
                    # reproduces the sender's bytes exactly.
                    state = RaSnapshotCodec().decode(rpc.meta, rpc.data)
                    assert RaSnapshotCodec().encode(rpc.meta, state) == rpc.data
                    kinds["snapshot bytes"] += 1
                if isinstance(rpc, AppendEntriesRpc):
                    for entry in rpc.entries:
                        kinds[type(entry.command).__name__] += 1
    assert set(kinds) == {
        "AppendEntriesRpc",
        "AppendEntriesReply",
        "RequestVoteRpc",
        "RequestVoteResult",
        "PreVoteRpc",
        "PreVoteResult",
        "HeartbeatRpc",
        "HeartbeatReply",
        "InstallSnapshotRpc",
        "InstallSnapshotResult",
        "TryBecomeLeader",
        "Noop",
        "UsrCommand",
        "ClusterChange",
        "ClusterDelete",
        "snapshot bytes",
    }
