"""Fixtures for the dist interop tests: one real peer per kind, shared by a module's tests."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pytest
from dist_support import PEER_KINDS, PeerKind, RunningPeer


@pytest.fixture(scope="module", params=PEER_KINDS, ids=lambda k: k.label)
def any_peer(request: pytest.FixtureRequest) -> Iterator[RunningPeer]:
    """One real peer per kind, shared by the tests of a module."""
    kind: PeerKind = request.param
    cookie = "c" + secrets.token_hex(8)
    peer = kind.make(cookie)
    with contextlib.ExitStack() as stack:
        stack.enter_context(peer)
        stack.callback(peer.kill)
        yield RunningPeer(kind, peer, cookie)
