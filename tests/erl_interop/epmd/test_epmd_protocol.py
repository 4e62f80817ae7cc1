"""EPMD packets byte for byte (erts erl_dist_protocol "EPMD Protocol"; reference §1)."""

from __future__ import annotations

import pytest

from erl_interop.epmd.protocol import (
    Alive2Req,
    Alive2Resp,
    NamesReq,
    NamesResp,
    Port2Resp,
    PortPlease2Req,
    UnsupportedReq,
    parse_alive2_resp,
    parse_names_resp,
    parse_port2_resp,
    parse_request,
)
from erl_interop.errors import EpmdError


def test_alive2_request_registers_the_alive_part_with_versions_6_6_and_a_length_prefix() -> None:
    assert Alive2Req(port=0x1234, name="py").to_bytes() == (
        b"\x00\x0f"  # length 15
        b"x"  # ALIVE2_REQ
        b"\x12\x34"  # PortNo
        b"M"  # NodeType 77, normal
        b"\x00"  # Protocol tcp/ipv4
        b"\x00\x06\x00\x06"  # Highest, Lowest
        b"\x00\x02py"  # Nlen, NodeName
        b"\x00\x00"  # Elen
    )


def test_hidden_registration_uses_node_type_72() -> None:
    assert Alive2Req(port=1, name="h", node_type=72).to_bytes()[5] == 72


def test_alive2_x_resp_carries_a_32_bit_creation() -> None:
    assert parse_alive2_resp(b"v\x00\x6b\x0a\x8f\x09") == (Alive2Resp(result=0, creation=1795854089), 6)


def test_legacy_alive2_resp_carries_a_16_bit_creation() -> None:
    assert parse_alive2_resp(b"y\x00\x00\x01") == (Alive2Resp(result=0, creation=1, extended=False), 4)


def test_alive2_reply_parser_waits_for_the_whole_reply() -> None:
    assert parse_alive2_resp(b"") is None
    assert parse_alive2_resp(b"v\x00\x00\x00\x01") is None


def test_alive2_reply_with_an_unknown_tag_is_an_epmd_error() -> None:
    with pytest.raises(EpmdError):
        parse_alive2_resp(b"w\x01")


def test_alive2_responses_encode_back_to_the_same_bytes() -> None:
    assert Alive2Resp(result=0, creation=1795854089).to_bytes() == b"v\x00\x6b\x0a\x8f\x09"
    assert Alive2Resp(result=1, creation=7, extended=False).to_bytes() == b"y\x01\x00\x07"


def test_port_please2_request_is_the_tag_and_the_bare_name() -> None:
    assert PortPlease2Req(name="e2").to_bytes() == b"\x00\x03ze2"


def test_port2_error_reply_is_two_bytes_as_observed_for_an_unknown_name() -> None:
    assert parse_port2_resp(b"w\x01") == (Port2Resp(result=1), 2)


def test_port2_success_reply_as_an_otp25_node_registers() -> None:
    data = b"w\x00\xa1\x3f\x4d\x00\x00\x06\x00\x05\x00\x02e2\x00\x00"
    assert parse_port2_resp(data) == (
        Port2Resp(
            result=0, port=41279, node_type=77, protocol=0, highest_version=6, lowest_version=5, name="e2"
        ),
        len(data),
    )
    for cut in range(2, len(data)):
        assert parse_port2_resp(data[:cut]) is None


def test_port2_reply_round_trips_through_the_server_encoder() -> None:
    reply = Port2Resp(result=0, port=5000, name="py", extra=b"\x01")
    encoded = reply.to_bytes()
    assert parse_port2_resp(encoded) == (reply, len(encoded))


def test_names_request_is_three_bytes() -> None:
    assert NamesReq().to_bytes() == b"\x00\x01n"


def test_names_reply_lists_every_name_and_port() -> None:
    data = b"\x00\x00\x11\x11name e2 at port 41279\nname py at port 5000\n"
    assert parse_names_resp(data) == NamesResp(epmd_port=4369, names=[("e2", 41279), ("py", 5000)])
    assert NamesResp(epmd_port=4369, names=[("e2", 41279), ("py", 5000)]).to_bytes() == data


def test_names_reply_with_a_foreign_line_is_an_epmd_error() -> None:
    with pytest.raises(EpmdError):
        parse_names_resp(b"\x00\x00\x11\x11hello\n")


def test_server_parses_each_request_kind_and_reports_where_the_next_starts() -> None:
    stream = Alive2Req(port=9, name="a", extra=b"xy").to_bytes() + PortPlease2Req(name="a").to_bytes()
    first = parse_request(stream)
    assert first is not None
    request, offset = first
    assert request == Alive2Req(port=9, name="a", extra=b"xy")
    assert parse_request(stream, offset) == (PortPlease2Req(name="a"), len(stream))
    assert parse_request(NamesReq().to_bytes()) == (NamesReq(), 3)
    assert parse_request(b"\x00\x01d") == (UnsupportedReq(tag=100), 3)
    assert parse_request(stream[:5]) is None


def test_server_rejects_an_empty_or_truncated_alive2_request() -> None:
    with pytest.raises(EpmdError):
        parse_request(b"\x00\x00")
    with pytest.raises(EpmdError):
        parse_request(b"\x00\x03x\x00\x01")
