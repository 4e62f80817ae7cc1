"""SimNetwork: seeded faults, partitions, crashed receivers."""

from __future__ import annotations

import random

from pyra_dist.testing.clock import FakeClock
from pyra_dist.testing.network import NetworkConfig, NetworkStats, SimNetwork


def _net(
    seed: int, config: NetworkConfig
) -> tuple[FakeClock, SimNetwork[str, int], list[tuple[int, str, str, int]]]:
    clock = FakeClock()
    got: list[tuple[int, str, str, int]] = []
    net = SimNetwork[str, int](
        clock, random.Random(seed), lambda s, d, m: got.append((clock.now_ms, s, d, m)), config
    )
    return clock, net, got


def test_reliable_network_delivers_everything_once_after_a_delay() -> None:
    clock, net, got = _net(1, NetworkConfig(min_delay_ms=3, max_delay_ms=3))
    net.send("a", "b", 1)
    net.send("b", "a", 2)
    clock.advance(10)
    assert got == [(3, "a", "b", 1), (3, "b", "a", 2)]


def test_same_seed_gives_the_same_faults_and_order() -> None:
    cfg = NetworkConfig(drop=0.3, duplicate=0.3, min_delay_ms=1, max_delay_ms=20)
    runs = []
    for _ in range(2):
        clock, net, got = _net(42, cfg)
        for i in range(50):
            net.send("a", "b", i)
        clock.advance(100)
        runs.append((got, net.stats))
    assert runs[0] == runs[1]
    got, stats = runs[0]
    assert stats.dropped > 0 and stats.duplicated > 0
    assert [m for _, _, _, m in got] != sorted(m for _, _, _, m in got)  # reordered


def test_partition_blocks_messages_between_groups_including_those_in_flight() -> None:
    clock, net, got = _net(1, NetworkConfig(min_delay_ms=5, max_delay_ms=5))
    net.send("a", "c", 1)  # in flight when the partition starts
    net.partition([{"a", "b"}, {"c"}])
    net.send("a", "b", 2)
    net.send("c", "a", 3)
    clock.advance(10)
    assert got == [(5, "a", "b", 2)]
    net.heal()
    net.send("c", "a", 4)
    clock.advance(10)
    assert got[-1] == (15, "c", "a", 4)
    assert net.stats == NetworkStats(sent=4, delivered=2, dropped=0, duplicated=0, blocked=2)


def test_one_way_block_cuts_only_one_direction() -> None:
    clock, net, got = _net(1, NetworkConfig(min_delay_ms=1, max_delay_ms=1))
    net.block("a", "b")
    net.send("a", "b", 1)
    net.send("b", "a", 2)
    clock.advance(5)
    assert got == [(1, "b", "a", 2)]


def test_messages_to_a_crashed_server_are_lost_even_after_restart() -> None:
    clock, net, got = _net(1, NetworkConfig(min_delay_ms=5, max_delay_ms=5))
    net.send("a", "b", 1)
    net.set_down("b")
    net.send("a", "b", 2)
    net.set_up("b")
    net.send("a", "b", 3)
    clock.advance(10)
    assert got == [(5, "a", "b", 3)]


def test_client_traffic_marked_not_duplicable_is_never_duplicated() -> None:
    clock, net, got = _net(5, NetworkConfig(duplicate=1.0, min_delay_ms=1, max_delay_ms=1))
    net.send("c0", "s1", 1, duplicable=False)
    net.send("s1", "s2", 2)
    clock.advance(5)
    assert [m for _, _, _, m in got] == [1, 2, 2]
