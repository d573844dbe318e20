"""Typed settings read from the environment (SPEC §1).

Every component reads the same variables. `NATS_SUBJECT_PREFIX` and
`REDIS_KEY_PREFIX` exist so that several independent copies of the system (test
sessions, a staging stack) can share one NATS and one Redis server without
seeing each other's subjects, streams or keys; in production both are empty and
subjects are exactly the ones in the events catalogue.
"""

from __future__ import annotations

import os

import msgspec

DEFAULT_JWT_SECRET = "community-live-development-secret-change-me"
"""Development default for `JWT_SECRET`. Any real deployment must override it."""
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/community"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_HOST = "127.0.0.1"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    database_url: str = DEFAULT_DATABASE_URL
    nats_url: str = DEFAULT_NATS_URL
    """One NATS server, or the servers of a cluster separated by commas."""
    nats_stream_replicas: int = 1
    """Copies of every JetStream stream the system creates (3 in a three-server cluster)."""
    redis_url: str = DEFAULT_REDIS_URL
    jwt_secret: str = DEFAULT_JWT_SECRET
    host: str = DEFAULT_HOST
    port: int = 8000
    nats_subject_prefix: str = ""
    redis_key_prefix: str = ""
    log_level: str = "INFO"
    run_migrations: bool = True
    outbox_poll_seconds: float = 1.0
    db_pool_max_size: int = 20
    http_max_header_bytes: int = 16 * 1024
    http_max_headers: int = 100
    http_header_timeout_seconds: float = 30.0
    cors_allow_origins: tuple[str, ...] = ("*",)
    """Origins whose pages may call the HTTP routes; `*` (the default) is any."""

    @classmethod
    def from_env(cls, service: str, default_port: int, **overrides: object) -> Settings:
        """Build settings for `service` from the process environment.

        Explicit keyword overrides win over the environment (used by tests and
        by the local runner).
        """
        env = os.environ
        values: dict[str, object] = {
            "service": service,
            "database_url": env.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            "nats_url": env.get("NATS_URL", DEFAULT_NATS_URL),
            "nats_stream_replicas": int(env.get("NATS_STREAM_REPLICAS", "1")),
            "redis_url": env.get("REDIS_URL", DEFAULT_REDIS_URL),
            "jwt_secret": env.get("JWT_SECRET", DEFAULT_JWT_SECRET),
            "host": env.get("HOST", DEFAULT_HOST),
            "port": int(env.get("PORT", default_port)),
            "nats_subject_prefix": env.get("NATS_SUBJECT_PREFIX", ""),
            "redis_key_prefix": env.get("REDIS_KEY_PREFIX", ""),
            "log_level": env.get("LOG_LEVEL", "INFO"),
            "run_migrations": env.get("RUN_MIGRATIONS", "1") not in ("0", "false", "no"),
            "outbox_poll_seconds": float(env.get("OUTBOX_POLL_SECONDS", "1.0")),
            "db_pool_max_size": int(env.get("DB_POOL_MAX_SIZE", "20")),
            "http_max_header_bytes": int(env.get("HTTP_MAX_HEADER_BYTES", str(16 * 1024))),
            "http_max_headers": int(env.get("HTTP_MAX_HEADERS", "100")),
            "http_header_timeout_seconds": float(env.get("HTTP_HEADER_TIMEOUT_SECONDS", "30")),
            "cors_allow_origins": parse_origins(env.get("CORS_ALLOW_ORIGINS", "*")),
        }
        values.update(overrides)
        settings = msgspec.convert(values, cls)
        if not 1 <= settings.nats_stream_replicas <= 5:
            raise ValueError("NATS_STREAM_REPLICAS must be between 1 and 5 (JetStream's limit)")
        return settings

    @property
    def nats_servers(self) -> list[str]:
        """`NATS_URL` as a list: a client connects to any and fails over to the others."""
        return nats_servers(self.nats_url)

    def subject(self, name: str) -> str:
        """The wire subject for an unprefixed subject such as `posts.post.created`."""
        return f"{self.nats_subject_prefix}{name}"

    def unprefix(self, subject: str) -> str:
        """Strip the deployment prefix from a wire subject."""
        prefix = self.nats_subject_prefix
        return subject[len(prefix) :] if prefix and subject.startswith(prefix) else subject

    def stream_name(self, name: str) -> str:
        """A JetStream stream or durable consumer name, prefixed per deployment."""
        prefix = self.nats_subject_prefix.replace(".", "_").replace("-", "_")
        return f"{prefix}{name}"

    def redis_key(self, key: str) -> str:
        return f"{self.redis_key_prefix}{key}"


def nats_servers(value: str) -> list[str]:
    """`nats://a:4222,nats://b:4222` (commas or spaces) as a list; never empty."""
    servers = [url for url in value.replace(",", " ").split() if url]
    return servers or [DEFAULT_NATS_URL]


def parse_origins(value: str) -> tuple[str, ...]:
    """`CORS_ALLOW_ORIGINS`: origins separated by commas or spaces; empty or `*` is any."""
    origins = tuple(origin.rstrip("/") for origin in value.replace(",", " ").split())
    return origins or ("*",)
