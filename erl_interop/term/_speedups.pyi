"""Type stub of the optional C accelerator (``_speedups.c``); see decode.py and encode.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

class Decoder:
    def __init__(
        self,
        *,
        Atom: type,
        Map: type,
        Pid: type,
        Reference: type,
        Port: type,
        plain_keys: frozenset[type],
        atom_from_raw: Callable[[bytes], Any],
        finish_map: Callable[[list[Any], int], Any],
        finish_list: Callable[[list[Any], int], Any],
        general: Callable[..., tuple[Any, int]],
        max_depth: int,
    ) -> None: ...
    def decode(
        self, data: Any, offset: int, atom_cache: Sequence[Any] | None, /
    ) -> tuple[Any, int] | None: ...

class Encoder:
    def __init__(
        self,
        *,
        Atom: type,
        Map: type,
        Pid: type,
        Reference: type,
        Port: type,
        atom_slow: Callable[[Any, int], bytes],
        fast_encode: Callable[..., None],
    ) -> None: ...
    def encode(self, term: Any, out: bytearray, flags: list[bool], /) -> None: ...
