"""Corrupt request bytes are traced to the field that broke them."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError

from serving.proto_gen.muse.serving.v1 import ranking_pb2
from serving.wire_format import malformed_field

SCORE = ranking_pb2.ScoreRequest.DESCRIPTOR
APPEND = ranking_pb2.AppendBehaviorsRequest.DESCRIPTOR


@pytest.mark.parametrize(
    ("data", "descriptor", "field"),
    [
        (b"\x08\xff\xff", SCORE, "user_id"),  # truncated varint
        (b"\x12\x02\xff\xff", SCORE, "candidate_item_ids"),  # packed ids with a broken varint
        (b"\x12\x05\x01\x02", SCORE, "candidate_item_ids"),  # length past the end
        (b"\x1a\x04\x0a\x02\xc3\x28", SCORE, "context[0].key"),  # invalid UTF-8 in a map key
        (b"\x12\x01\x05\x1a\x02\x0a\xff", SCORE, "context[0].key"),  # key length broken
        (b"\x12\x01\x05\x12\x01\x06\x1a\x05\x0a\x01a", SCORE, "context[0]"),  # entry too long
        (b"\x12\x04\x08\x01\x18\xff", APPEND, "behaviors[0].timestamp"),
        (b"\x12\x02\x08\x01\x12\x03\x08\xff\xff", APPEND, "behaviors[1].item_id"),
        (b"\x0b\x00", SCORE, "user_id"),  # group wire type
    ],
)
def test_names_the_broken_field(data: bytes, descriptor, field: str) -> None:
    message_class = (
        ranking_pb2.ScoreRequest if descriptor is SCORE else ranking_pb2.AppendBehaviorsRequest
    )
    with pytest.raises(DecodeError):
        message_class.FromString(data)
    assert malformed_field(data, descriptor) == field


def test_well_formed_message_has_no_broken_field() -> None:
    data = ranking_pb2.ScoreRequest(user_id=-5, candidate_item_ids=[1, 2**62], context={"a": "é"})
    assert malformed_field(data.SerializeToString(), SCORE) == "message"
