"""Domain errors: what a use case answers when it refuses.

Use cases raise these and know nothing of HTTP; the one exception handler of
the web plumbing (`web`) turns each into the JSON error of SPEC §3 with the
status named here (`{"status_code": ..., "detail": ...}`, and `Retry-After`
where the error carries one). A unit test of a use case asserts the domain
error; an integration test sees the HTTP answer.

Pure: imports nothing from the web framework.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A refusal the client can act on; `detail` is safe to show to the client."""

    status_code: ClassVar[int] = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the refusal carries (none, unless a subclass says)."""
        return {}


class InvalidInput(DomainError, ValueError):
    """The request breaks a rule of its shape or content (400). Nothing was changed."""

    status_code = 400


class Unauthenticated(DomainError):
    """The caller must sign in (401): a guest, or a bad, expired or forged token."""

    status_code = 401


class Forbidden(DomainError):
    """The caller is known and not allowed (403)."""

    status_code = 403


class NotFound(DomainError):
    """No such thing, or none the caller may see (404: a hidden thing is not revealed)."""

    status_code = 404


class Conflict(DomainError):
    """The request is valid but contradicts the current state (409)."""

    status_code = 409


class Unprocessable(DomainError):
    """Well formed but refused by a rule of the domain (422)."""

    status_code = 422


class RateLimited(DomainError):
    """Too many requests (429); `retry_after` whole seconds (at least 1) until one is allowed."""

    status_code = 429

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
