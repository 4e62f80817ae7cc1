"""Runs the codec unit tests against both implementations: the C accelerator and pure Python.

``test_term_decode.py``, ``test_term_encode.py``, ``test_term_map.py`` and ``test_term_golden.py`` run
twice, as ``[c]`` and ``[python]``. The ``[python]`` run switches the accelerator off by clearing
``decode._C_DECODER`` / ``encode._C_ENCODER`` for the duration of the test. ``[c]`` is skipped (with a
reason in the summary) when the extension was not built, or when ERL_INTEROP_PURE_PYTHON disabled it.
Other test files use whatever is loaded (the C accelerator when it was built).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

_BOTH_IMPLEMENTATIONS = {"test_term_decode", "test_term_encode", "test_term_map", "test_term_golden"}
decode_module = importlib.import_module("erl_interop.term.decode")
encode_module = importlib.import_module("erl_interop.term.encode")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rsplit(".", 1)[-1] in _BOTH_IMPLEMENTATIONS:
        metafunc.parametrize("codec_impl", ["c", "python"], indirect=True)


@pytest.fixture(autouse=True)
def codec_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Which codec the test runs against: "c", "python" or "default" (whatever is loaded)."""
    impl: str = getattr(request, "param", "default")
    if impl == "python":
        monkeypatch.setattr(decode_module, "_C_DECODER", None)
        monkeypatch.setattr(encode_module, "_C_ENCODER", None)
    elif impl == "c" and (decode_module._C_DECODER is None or encode_module._C_ENCODER is None):
        pytest.skip("C accelerator erl_interop.term._speedups not built (or ERL_INTEROP_PURE_PYTHON set)")
    yield impl
