"""The old leader waiting for a leadership transfer that fails (ra-internals §5.2, Ra 2.2.0).

Ra 2.2.0's old leader waits in ``await_condition``; an election timeout there starts a pre-vote
(``handle_await_condition``), so a transfer whose target cannot win does not leave the cluster
without a leader until ``await_condition_timeout`` (30 s) passes. Found by the mixed randomized run
(a pyra leader handing over to an Erlang member whose pre-vote failed parked every command 30 s).
"""

from __future__ import annotations

from raft_harness import make_cluster, sid

from pyra_dist.core.events import PeerMessage, TimerFired, TimerKind, TransferLeadershipRequest
from pyra_dist.core.messages import RA_PROTO_VERSION, PreVoteRpc
from pyra_dist.types import Role


def test_old_leader_whose_transfer_target_failed_its_pre_vote_campaigns_on_its_election_timeout() -> None:
    cluster = make_cluster()
    old = cluster.elect("s1")
    term = old.term
    cluster.handle("s1", TransferLeadershipRequest(target=sid("s2"), from_=None))
    cluster.queue.clear()  # the try_become_leader cast is lost
    assert (old.role, old.transferring) == (Role.AWAIT_CONDITION, True)

    # The target campaigns with a log behind ours: refused, and our election timer is armed.
    behind = PreVoteRpc(RA_PROTO_VERSION, 0, term, "token", sid("s2"), 0, 0)
    cluster.handle("s1", PeerMessage(sender=sid("s2"), msg=behind))
    assert TimerKind.ELECTION in cluster.timers[sid("s1")]

    cluster.handle("s1", TimerFired(key=TimerKind.ELECTION))
    assert (old.role, old.transferring) == (Role.PRE_VOTE, False)
    cluster.settle()
    assert (cluster.leader().id, cluster.leader().term) == (sid("s1"), term + 1)
