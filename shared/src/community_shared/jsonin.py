"""The one way untrusted JSON comes in: HTTP request bodies and websocket frames.

`decode_json` is `msgspec.json.decode` behind a nesting limit. msgspec (like
the standard library) decodes nested arrays and objects recursively and gives
up with a `RecursionError` somewhere near the interpreter's recursion limit:
where exactly depends on how deep the caller's stack already is, and it is not
a `DecodeError`, so a 2 KB body of a thousand `[` turned into a 500 (and
closed a websocket with 1011). Here the depth is measured first, on the raw
bytes, and anything nested deeper than `MAX_DEPTH` is refused with
`NestingTooDeep`, a `msgspec.DecodeError`: every caller that already answers
malformed JSON with 400 / `bad_request` answers this the same way.

No request of the API nests deeper than 3 levels; `MAX_DEPTH` leaves room for
growth and stays far below the point where decoding would recurse too deep.
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar, overload

import msgspec

T = TypeVar("T")

MAX_DEPTH: Final = 32
"""Arrays and objects nested deeper than this are refused (the top-level value is depth 1)."""

_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKET: Final = bytes(b for b in range(256) if b not in b"[]{}")
_AS_SQUARE: Final = bytes.maketrans(b"{}", b"[]")


class NestingTooDeep(msgspec.DecodeError):
    """The JSON nests arrays and objects deeper than allowed (invalid input, never a 500)."""


def exceeds_depth(raw: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the JSON text `raw` opens more than `max_depth` nested arrays/objects.

    Brackets inside strings do not count. Guarantees: never raises, runs in
    time linear in `len(raw)` (one `count` for any ordinary body), and never
    answers False for a text that a decoder would have to nest deeper. For
    text that is not JSON it may answer either way: the decoder then rejects
    it as malformed, without recursing further than `max_depth` levels before
    the point where it is malformed.
    """
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False  # depth can never exceed the number of opening brackets
    # Only the brackets outside strings, `{}` written as `[]`.
    brackets = _STRING.sub(b"", raw).translate(_AS_SQUARE, _NOT_BRACKET)
    # Each pass removes every adjacent `[]`: exactly the innermost level of
    # every nest (a removed pair leaves the depth of everything else as it
    # was), so balanced brackets at most `max_depth` deep are gone after
    # `max_depth` passes. Each pass is one C-speed `replace`.
    passes = 0
    while brackets and passes < max_depth:
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets, passes = shorter, passes + 1
    if not brackets:
        return False
    if b"[]" in brackets:
        return True  # a pair that still encloses `max_depth` levels
    # Left: unmatched `]` then unclosed `[` (`]]][[`), the groups between them
    # removed, each at most `passes` deep. A decoder fails at the first
    # unmatched `]`, before which it nested no deeper than `passes`; with none,
    # it may reach one level per unclosed `[` plus `passes`.
    if brackets.startswith(b"]"):
        return False
    return len(brackets) + passes > max_depth


@overload
def decode_json(raw: bytes | str, *, strict: bool = True) -> Any: ...


@overload
def decode_json(raw: bytes | str, *, type: type[T], strict: bool = True) -> T: ...


def decode_json(raw: bytes | str, *, type: Any = Any, strict: bool = True) -> Any:
    """Decode untrusted JSON (into `type` if given) after checking its nesting.

    Raises `msgspec.DecodeError` for malformed JSON (`NestingTooDeep` for
    JSON nested deeper than `MAX_DEPTH`) and `msgspec.ValidationError` for
    JSON of the wrong shape; nothing else for any input of that type.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if exceeds_depth(data):
        raise NestingTooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
    return msgspec.json.decode(raw, type=type, strict=strict)
