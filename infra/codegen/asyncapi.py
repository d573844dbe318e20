"""The AsyncAPI 3 document of the system: `docs/asyncapi.yaml`.

Two servers. `nats`: every subject of the JetStream stream `EVENTS`, one
channel per subject, its message the envelope of SPEC §8 with `type` fixed to
the subject and `data` the subject's payload type (from the services'
`events.CATALOGUE`); and the request/reply subjects other services call
(`RPC`). `gateway`: the websocket `/ws` of SPEC §9, its messages
the client ops, the server's control frames and one `event` frame per channel
kind and event type with its `data` (from the gateway's `contract` module).
Schemas are msgspec's, shared with the TypeScript types (see `schemas`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from community_gateway import contract
from community_shared import rpc

from infra.codegen import yaml_text
from infra.codegen.schemas import (
    NAMED_UNIONS,
    REF_PREFIX,
    channel_events,
    components,
    domain_events,
    envelope_schema,
    type_name,
)

RPC: dict[str, tuple[type[msgspec.Struct], list[type[msgspec.Struct]], str]] = {
    rpc.RPC_GOALS_PROFILE: (
        rpc.ProfileRequest,
        [rpc.ProfileReply, rpc.RpcError],
        "A student's track, current goal and revenue, for other services (money as strings). "
        "The error is `not_found` (no goals profile), `bad_request` or `unavailable`.",
    ),
}
"""NATS request/reply subjects (never captured by a stream): request type, reply types."""

TITLE = "Community Live events"
VERSION = "1.0.0"
USER_CHANNEL_PATTERN = "^user:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

DESCRIPTION = """\
The events of Community Live, generated from the code's msgspec types by `./run codegen`
(`python -m infra.codegen`); do not edit by hand. A test checks that this file is current.

* **nats**: every change is published as an event on JetStream (stream `EVENTS`) on the
  subject equal to its `type`, in the envelope of `Envelope`, with the header `Nats-Msg-Id`
  equal to `id` so that a republish is dropped. With `NATS_SUBJECT_PREFIX` set, every subject
  carries that prefix. The same catalogue, as tables: docs/events.md.
* **gateway**: the websocket protocol. Connect to `/ws` with the token as `?token=<JWT>` or an
  `Authorization: Bearer` header (no token: a guest). Frames are JSON text objects told apart
  by `op`. Channel events arrive as `event` frames; the `data` of each event type on each
  channel is listed below (`user` stands for every `user:<id>` channel).
"""


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _asyncapi_schema(node: Any) -> Any:
    """msgspec's JSON schema as an AsyncAPI Schema Object: `discriminator` is a property name."""
    if isinstance(node, dict):
        out = {key: _asyncapi_schema(value) for key, value in node.items()}
        if isinstance(out.get("discriminator"), dict):
            out["discriminator"] = out["discriminator"]["propertyName"]
        return out
    if isinstance(node, list):
        return [_asyncapi_schema(item) for item in node]
    return node


def _summary(type_: Any) -> str | None:
    doc = getattr(type_, "__doc__", None)
    if not doc or doc.startswith(f"{getattr(type_, '__name__', '')}("):
        return None  # msgspec's generated signature, not a description
    return " ".join(doc.split())


def _message(name: str, payload: dict[str, Any], summary: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"name": name, "title": name}
    if summary:
        message["summary"] = summary
    message["contentType"] = "application/json"
    message["payload"] = payload
    return message


def _camel(*parts: str) -> str:
    words = [word for part in parts for word in part.replace(":", ".").split(".")]
    return words[0] + "".join(word[:1].upper() + word[1:] for word in words[1:])


def _struct_members(union: Any) -> list[type[msgspec.Struct]]:
    return list(getattr(union, "__args__", ()))


def document() -> dict[str, Any]:
    events = domain_events()
    specs = channel_events()
    client_ops = _struct_members(contract.ClientFrame)
    server_frames = _struct_members(contract.ServerFrame)
    schemas = components(
        [event.payload for event in events]
        + [spec.payload for spec in specs]
        + [NAMED_UNIONS["ClientFrame"], NAMED_UNIONS["ServerFrame"]]
        + [type_ for request, replies, _ in RPC.values() for type_ in [request, *replies]]
    )
    schemas["Envelope"] = envelope_schema()

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    headers_trait = _ref("messageTraits", "EventHeaders")
    for event in events:
        published_here = event.subject.split(".", 1)[0] == event.component
        payload = {
            "allOf": [
                {"$ref": REF_PREFIX + "Envelope"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event.subject},
                        "data": {"$ref": REF_PREFIX + type_name(event.payload)},
                    },
                },
            ]
        }
        message = _message(event.subject, payload, _summary(event.payload))
        message["traits"] = [headers_trait]
        messages[event.subject] = message
        channels[event.subject] = {
            "address": event.subject,
            "servers": [{"$ref": "#/servers/nats"}],
            "messages": {event.subject: _ref("messages", event.subject)},
        }
        if published_here:
            description = f"Published by {event.component}."
        else:
            description = f"Published by the course platform; consumed by {event.component}."
        operations[_camel(event.subject)] = {
            "action": "send" if published_here else "receive",
            "channel": {"$ref": f"#/channels/{event.subject}"},
            "description": description,
            "messages": [{"$ref": f"#/channels/{event.subject}/messages/{event.subject}"}],
        }

    for subject, (request, replies, description) in RPC.items():
        reply_channel = f"{subject}.reply"
        messages[subject] = _message(subject, {"$ref": REF_PREFIX + request.__name__}, None)
        reply_keys = []
        for reply in replies:
            key = f"{subject}.{reply.__name__}"
            messages[key] = _message(key, {"$ref": REF_PREFIX + reply.__name__}, None)
            reply_keys.append(key)
        channels[subject] = {
            "address": subject,
            "servers": [{"$ref": "#/servers/nats"}],
            "messages": {subject: _ref("messages", subject)},
        }
        channels[reply_channel] = {
            "address": None,
            "description": "The requester's reply subject (its inbox).",
            "servers": [{"$ref": "#/servers/nats"}],
            "messages": {key: _ref("messages", key) for key in reply_keys},
        }
        operations[_camel(subject)] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{subject}"},
            "description": description,
            "messages": [{"$ref": f"#/channels/{subject}/messages/{subject}"}],
            "reply": {
                "channel": {"$ref": f"#/channels/{reply_channel}"},
                "messages": [
                    {"$ref": f"#/channels/{reply_channel}/messages/{key}"} for key in reply_keys
                ],
            },
        }

    websocket: dict[str, Any] = {}
    for op in client_ops:
        tag = op.__struct_config__.tag
        key = f"op.{tag}"
        messages[key] = _message(key, {"$ref": REF_PREFIX + op.__name__}, _summary(op))
        websocket[key] = _ref("messages", key)
    for frame in server_frames:
        if frame is contract.EventFrame:
            continue  # one message per channel event instead
        key = f"frame.{frame.__struct_config__.tag}"
        messages[key] = _message(key, {"$ref": REF_PREFIX + frame.__name__}, _summary(frame))
        websocket[key] = _ref("messages", key)
    event_keys: dict[str, list[str]] = {}
    for spec in specs:
        key = f"event.{spec.kind}.{spec.type}"
        channel_schema: dict[str, Any] = (
            {"type": "string", "pattern": USER_CHANNEL_PATTERN}
            if spec.kind == "user"
            else {"const": spec.kind}
        )
        payload = {
            "allOf": [
                {"$ref": REF_PREFIX + "EventFrame"},
                {
                    "type": "object",
                    "properties": {
                        "channel": channel_schema,
                        "type": {"const": spec.type},
                        "data": {"$ref": REF_PREFIX + type_name(spec.payload)},
                    },
                },
            ]
        }
        origin = (
            f"The `data` of `{spec.subject}`." if spec.subject else "A payload the gateway builds."
        )
        summary = " ".join(filter(None, [_summary(spec.payload), origin]))
        messages[key] = _message(key, payload, summary)
        websocket[key] = _ref("messages", key)
        event_keys.setdefault(spec.kind, []).append(key)

    channels["gateway"] = {
        "address": "/ws",
        "title": "The websocket of the gateway",
        "servers": [{"$ref": "#/servers/gateway"}],
        "messages": websocket,
        "bindings": {
            "ws": {
                "method": "GET",
                "query": {
                    "type": "object",
                    "properties": {
                        "token": {
                            "type": "string",
                            "description": "The bearer token (JWT); omit it to connect as a guest.",
                        }
                    },
                },
            }
        },
    }

    def ws_messages(keys: list[str]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/gateway/messages/{key}"} for key in keys]

    operations["receiveClientOps"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/gateway"},
        "description": "The ops a client sends; each one carrying an `id` is answered.",
        "messages": ws_messages([key for key in websocket if key.startswith("op.")]),
    }
    operations["sendControlFrames"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/gateway"},
        "description": "`hello` on connect, the answers to ops, and errors.",
        "messages": ws_messages([key for key in websocket if key.startswith("frame.")]),
    }
    for kind, keys in event_keys.items():
        operations[_camel("send", kind, "events")] = {
            "action": "send",
            "channel": {"$ref": "#/channels/gateway"},
            "description": f"The events of the `{'user:<id>' if kind == 'user' else kind}` "
            "channel, to its subscribers.",
            "messages": ws_messages(keys),
        }

    close_codes = "\n".join(
        f"* `{code}`: {meaning}" for code, meaning in contract.CLOSE_CODES.items()
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "NATS with JetStream (`NATS_URL`).",
            },
            "gateway": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "description": "The websocket gateway (any instance). Close codes:\n" + close_codes,
                "security": [_ref("securitySchemes", "token"), _ref("securitySchemes", "bearer")],
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {name: _asyncapi_schema(schema) for name, schema in schemas.items()},
            "messages": messages,
            "messageTraits": {
                "EventHeaders": {
                    "headers": {
                        "type": "object",
                        "properties": {
                            "Nats-Msg-Id": {
                                "type": "string",
                                "format": "uuid",
                                "description": "The envelope's `id`: a republish is dropped.",
                            }
                        },
                        "required": ["Nats-Msg-Id"],
                    }
                }
            },
            "securitySchemes": {
                "token": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "The JWT as `?token=`; without one the client is a guest.",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The JWT in the `Authorization` header of the handshake.",
                },
            },
        },
    }


def render() -> str:
    return yaml_text.dump(document())
