"""Community Live websocket gateway.

Pure core: `channels` (names, authorization, the event → channel mapping),
`protocol` (client frames, server frames, per-connection session and recovery
bookkeeping), `sendqueue` (a slow client's bounded queue), `coalesce`
(per-key rate limiting of counter updates). I/O: `store` (channel histories in
JetStream), `router` (domain events → channel histories), `server` (websockets,
fan-out, HTTP probes), `app` (the process entry point).
"""
