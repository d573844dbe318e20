"""Text and URL values that come from clients, checked the same way everywhere.

Postgres text cannot hold NUL, and a lone surrogate cannot be encoded as
UTF-8: both would otherwise surface as a server error at write time, so every
text field goes through `check_text`. `clean_text` trims and bounds a field;
`https_url` accepts an absolute https URL with a host. Each raises
`InvalidInput` with a message naming the field.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from community_shared.errors import InvalidInput

MAX_URL: Final = 2048


def check_text(text: str, field: str) -> str:
    """`text` unchanged, unless it holds NUL or cannot be encoded as UTF-8."""
    if "\x00" in text:
        raise InvalidInput(f"{field} must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} is not valid Unicode text") from exc
    return text


def clean_text(
    value: str | None,
    field: str,
    *,
    max_length: int,
    required: bool = False,
    blank: str = "must not be blank",
) -> str | None:
    """`value` trimmed, at most `max_length` characters; None when blank or absent,
    unless `required` (then `InvalidInput`: "<field> <blank>")."""
    text = check_text(value or "", field).strip()
    if not text:
        if required:
            raise InvalidInput(f"{field} {blank}")
        return None
    if len(text) > max_length:
        raise InvalidInput(f"{field} must be at most {max_length} characters")
    return text


def required_text(
    value: str | None, field: str, *, max_length: int, blank: str = "must not be blank"
) -> str:
    """`clean_text` of a field that must not be blank."""
    text = clean_text(value, field, max_length=max_length, required=True, blank=blank)
    assert text is not None
    return text


def https_url(value: str, field: str, *, max_length: int = MAX_URL) -> str:
    """An absolute https URL with a host, trimmed, at most `max_length` characters,
    without whitespace or control characters; `InvalidInput` otherwise."""
    url = check_text(value, field).strip()
    if not url:
        raise InvalidInput(f"{field} is required")
    if len(url) > max_length:
        raise InvalidInput(f"{field} must be at most {max_length} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidInput(f"{field} must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise InvalidInput(f"{field} is not a valid URL") from exc
    if parts.scheme.lower() != "https":
        raise InvalidInput(f"{field} must be an https URL")
    if not host:
        raise InvalidInput(f"{field} must name a host")
    return url
