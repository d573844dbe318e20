"""The nesting limit of untrusted JSON (SPEC §3: too deep is invalid input, never a 500)."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
import pytest
from community_shared.jsonin import MAX_DEPTH, NestingTooDeep, decode_json, exceeds_depth
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import DEEP_BODIES


def nesting(value: Any) -> int:
    """Arrays/objects nested in `value` (a scalar is 0, `[]` is 1)."""
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    return 0


# Keys and strings full of brackets, quotes and backslashes: they must not count.
TEXT = st.text(alphabet='[]{}"\\ab', max_size=6)
VALUES = st.recursive(
    st.none() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=60,
)


@given(VALUES, st.integers(min_value=0, max_value=8))
def test_exceeds_depth_measures_the_nesting_of_valid_json(value: Any, limit: int) -> None:
    assert exceeds_depth(msgspec.json.encode(value), limit) == (nesting(value) > limit)


@pytest.mark.parametrize("depth", [1, MAX_DEPTH - 1, MAX_DEPTH])
def test_json_as_deep_as_the_limit_decodes(depth: int) -> None:
    text = '{"a":' * depth + "1" + "}" * depth
    assert nesting(decode_json(text)) == depth
    assert nesting(decode_json(("[" * depth + "]" * depth).encode())) == depth


@pytest.mark.parametrize(
    "raw",
    [
        *DEEP_BODIES.values(),
        b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
        b"[{" * 17 + b"}]" * 17,
        # Unclosed, then closed, nests: a decoder recurses through all of them.
        b"[" * 20 + b"[" * 20 + b"]" * 20,
        # Wide and deep: every element of a long list nested too deep.
        b"[" + b",".join([b"[" * 40 + b"]" * 40] * 500) + b"]",
    ],
)
def test_deeper_json_is_refused_as_a_decode_error(raw: bytes) -> None:
    assert exceeds_depth(raw)
    with pytest.raises(NestingTooDeep):
        decode_json(raw)
    with pytest.raises(msgspec.DecodeError):  # what callers already answer with 400
        decode_json(raw.decode(), type=dict[str, Any])


@pytest.mark.parametrize(
    "raw",
    [
        b'["' + b"[" * 5000 + b'"]',  # brackets in a string
        b'{"a\\"[[[[": "\\\\[[[["}',  # escaped quotes and backslashes
        b"[" + b"[]," * 20000 + b"[]]",  # wide, shallow
        b"]" * 100 + b"[" * 10,  # garbage that no decoder nests into
        b"",
        b"null",
    ],
)
def test_shallow_or_unnestable_text_is_not_too_deep(raw: bytes) -> None:
    assert not exceeds_depth(raw)


@given(st.binary(max_size=200) | st.text(alphabet='[]{}"\\,:1 ', max_size=200).map(str.encode))
def test_decode_json_raises_only_decode_errors(raw: bytes) -> None:
    with contextlib.suppress(msgspec.DecodeError):
        decode_json(raw)


def test_typed_decoding_keeps_its_validation_errors() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_json(b'{"a": "1"}', type=dict[str, int])
    assert decode_json(b'{"a": 1}', type=dict[str, int]) == {"a": 1}
