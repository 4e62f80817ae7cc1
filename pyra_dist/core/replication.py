"""Leader-side replication: per-peer pipelining, reply handling, commit, snapshot transfer.

Owns: Ra 2.2.0's peer bookkeeping (ra-internals §2.2): AERs of up to 128 entries sent while
``next - match`` is within the pipeline window, the reply rules for success and failure, the
commit rule (majority of the current configuration, only entries of the current term count,
Raft §5.4.2), and the core-driven chunked snapshot transfer (§2.5: chunk ``n`` is sent once chunk
``n - 1`` was acknowledged; the data is ``SnapshotCodec.encode`` of the snapshot state). Must not:
count a follower's reply as a match unless our log holds the same ``(index, term)`` (a stale
``last_index`` must never make the leader commit entries the follower does not have, landscape §2.4
Ra 3.1.8), or send AERs to a peer receiving a snapshot.
"""

from __future__ import annotations

from pyra_dist.core.common import CommonRole
from pyra_dist.core.effects import Effect, SendRpc
from pyra_dist.core.messages import (
    AppendEntriesReply,
    AppendEntriesRpc,
    ChunkFlag,
    ChunkState,
    InstallSnapshotResult,
    InstallSnapshotRpc,
)
from pyra_dist.core.quorum import agreed_value
from pyra_dist.core.state import PeerProgress
from pyra_dist.types import Index, ServerId


class ReplicationMixin(CommonRole):
    """Replication to followers (mixed into the leader)."""

    # -- sending -------------------------------------------------------------------------------------

    def replicate_all(self, effects: list[Effect]) -> None:
        """Pipeline new entries (or a commit-index update) to every peer, in member order."""
        for peer in sorted(self.peers):
            self.replicate(peer, effects)

    def replicate(self, peer: ServerId, effects: list[Effect], *, force: bool = False) -> None:
        """Send what ``peer`` is missing within the pipeline window.

        Args:
            peer: the follower.
            effects: output list.
            force: send an (empty) AER even if nothing is pending ("enforce leadership").
        """
        p = self.peers[peer]
        if p.status != "normal":
            return
        last = self.log.last_index
        sent = False
        batch = self.config.max_append_entries_batch
        while p.next_index <= last and p.next_index - p.match_index <= self.config.max_pipeline_count:
            prev_index = p.next_index - 1
            prev_term = self.log.term_at(prev_index)
            if prev_term is None or p.next_index < self.log.first_index():
                # The entries this peer needs were compacted into the snapshot (index 0 has term 0
                # even then, so the first-index check matters for a brand-new peer).
                self.start_snapshot_transfer(peer, p, effects)
                return
            entries = self.log.fetch(p.next_index, min(p.next_index + batch - 1, last))
            if not entries or entries[0].index != p.next_index:
                break
            self.send_aer(peer, p, prev_index, prev_term, tuple(entries), effects)
            p.next_index = entries[-1].index + 1
            sent = True
        if not sent and (force or p.commit_index_sent < self.commit_index):
            prev_index = p.next_index - 1
            prev_term = self.log.term_at(prev_index)
            if prev_term is None:
                self.start_snapshot_transfer(peer, p, effects)
                return
            self.send_aer(peer, p, prev_index, prev_term, (), effects)

    def send_aer(
        self,
        peer: ServerId,
        p: PeerProgress,
        prev_index: Index,
        prev_term: int,
        entries: tuple,  # type: ignore[type-arg]
        effects: list[Effect],
    ) -> None:
        """Emit one ``append_entries_rpc`` and remember the commit index it carried."""
        rpc = AppendEntriesRpc(
            term=self.current_term,
            leader_id=self.id,
            leader_commit=self.commit_index,
            prev_log_index=prev_index,
            prev_log_term=prev_term,
            entries=entries,
        )
        p.commit_index_sent = self.commit_index
        effects.append(SendRpc(to=peer, rpc=rpc))

    # -- replies -------------------------------------------------------------------------------------

    def on_aer_reply(self, peer: ServerId, reply: AppendEntriesReply, effects: list[Effect]) -> None:
        """ra-internals §2.2 (the term was normalised already; stale-term replies are ignored)."""
        p = self.peers.get(peer)
        if p is None or reply.term != self.current_term:
            return
        if p.status == "sending_snapshot":
            # The peer refused the snapshot because it already has what it covers (it answers a
            # chunk with an AER reply, as Ra main does): resume append entries from its view.
            self.end_snapshot_transfer(p)
        last = self.log.last_index
        if reply.success:
            # Log Matching (Raft §5.3): the follower's last written entry equals ours only if the terms
            # agree; only then does everything up to it count as replicated.
            if self.log.term_at(reply.last_index) == reply.last_term:
                p.match_index = max(p.match_index, reply.last_index)
            p.next_index = max(p.next_index, min(reply.next_index, last + 1), p.match_index + 1)
            self.maybe_commit(effects)
        else:
            local_term = self.log.term_at(reply.last_index)
            if local_term is None:
                p.next_index = max(min(reply.next_index, last + 1), p.match_index + 1)
            elif local_term == reply.last_term:
                # The follower's written/applied prefix matches ours up to last_index.
                p.match_index = reply.last_index
                p.next_index = max(min(reply.next_index, last + 1), p.match_index + 1)
            else:
                p.next_index = max(min(p.next_index - 1, reply.last_index), p.match_index + 1)
        if p.status == "normal" and peer in self.peers:
            self.replicate(peer, effects)

    def maybe_commit(self, effects: list[Effect]) -> None:
        """Raft §5.3/§5.4.2: commit the majority-replicated index if its entry is of the current term.

        The leader's own contribution is its last *written* index (Ra counts only fsynced entries).
        """
        written, _ = self.log.last_written()
        values = [
            written if m == self.id else self.peers[m].match_index
            for m in self.members
            if m == self.id or m in self.peers
        ]
        index = agreed_value(values)
        if index > self.commit_index and self.log.term_at(index) == self.current_term:
            self.commit_index = index
            self.apply_committed(effects)
            self.replicate_all(effects)

    # -- snapshot transfer -----------------------------------------------------------------------------

    def start_snapshot_transfer(self, peer: ServerId, p: PeerProgress, effects: list[Effect]) -> None:
        """Switch ``peer`` to snapshot transfer: nothing else is sent to it until done (§2.5)."""
        meta = self.log.snapshot_meta()
        if meta is None:
            return
        p.status = "sending_snapshot"
        p.snapshot_meta = meta
        p.snapshot_data = self.config.snapshot_codec.encode(meta, self.log.view.snapshot_state())
        p.snapshot_chunk = 1
        p.snapshot_ticks = 0
        self.send_snapshot_chunk(peer, p, effects)

    def send_snapshot_chunk(self, peer: ServerId, p: PeerProgress, effects: list[Effect]) -> None:
        """Send chunk ``p.snapshot_chunk`` (numbered from 1; the final one is flagged ``last``)."""
        assert p.snapshot_meta is not None
        size = self.config.snapshot_chunk_size
        n = p.snapshot_chunk
        data = p.snapshot_data[(n - 1) * size : n * size]
        flag: ChunkFlag = "last" if n * size >= len(p.snapshot_data) else "next"
        rpc = InstallSnapshotRpc(
            term=self.current_term,
            leader_id=self.id,
            meta=p.snapshot_meta,
            chunk_state=ChunkState(number=n, flag=flag),
            data=data,
        )
        effects.append(SendRpc(to=peer, rpc=rpc))

    def on_snapshot_result(
        self, peer: ServerId, result: InstallSnapshotResult, effects: list[Effect]
    ) -> None:
        """A chunk was acknowledged: send the next one, or resume AERs after the last."""
        p = self.peers.get(peer)
        if p is None or p.status != "sending_snapshot" or p.snapshot_meta is None:
            return
        # A brand-new Ra 2.2.0 follower answers with its own, older term (it does not adopt the
        # leader's term while receiving a snapshot): only a higher term is a refusal, and that one
        # already made us step down in RaftCore.handle.
        if result.term > self.current_term or result.last_index != p.snapshot_meta.index:
            return
        p.snapshot_ticks = 0
        if p.snapshot_chunk * self.config.snapshot_chunk_size >= len(p.snapshot_data):
            index = p.snapshot_meta.index
            self.end_snapshot_transfer(p)
            p.match_index = max(p.match_index, index)
            p.next_index = p.match_index + 1
            self.maybe_commit(effects)
            self.replicate(peer, effects)
        else:
            p.snapshot_chunk += 1
            self.send_snapshot_chunk(peer, p, effects)

    def end_snapshot_transfer(self, p: PeerProgress) -> None:
        """Back to append entries for this peer."""
        p.status = "normal"
        p.snapshot_data = b""
        p.snapshot_meta = None
        p.snapshot_chunk = 0

    def snapshot_call_failed(self, peer: ServerId) -> None:
        """A chunk call failed (Ra: the sender process died): the next tick starts a new transfer."""
        p = self.peers.get(peer)
        if p is not None and p.status == "sending_snapshot":
            self.end_snapshot_transfer(p)
            p.next_index = p.match_index + 1

    def tick_snapshot_transfers(self, effects: list[Effect]) -> None:
        """A transfer without progress for ``snapshot_send_ticks`` ticks is restarted (Ra: the sender
        process crashes on its call timeout and the peer goes back to normal)."""
        for peer in sorted(self.peers):
            p = self.peers[peer]
            if p.status != "sending_snapshot":
                continue
            p.snapshot_ticks += 1
            if p.snapshot_ticks >= self.config.snapshot_send_ticks:
                self.end_snapshot_transfer(p)
                p.next_index = p.match_index + 1
                self.replicate(peer, effects)


__all__ = ["ReplicationMixin"]
