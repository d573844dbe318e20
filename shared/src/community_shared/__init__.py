"""The library every Community Live component imports.

Settings, identity (JWT), the event envelope, the transactional outbox and its
relay, JetStream stream setup, the migrations runner, connection helpers and
the HTTP plumbing (`/health`, `/ready`, `/metrics`, errors, logs) live here once
so that no service grows its own variant.
"""
