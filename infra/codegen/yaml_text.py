"""A small YAML writer for JSON-shaped data (dicts, lists, strings, numbers, booleans, null).

Block style, keys in the given order, strings plain when they cannot be read as
anything else, multi-line text as a literal block (`|`), and double-quoted (JSON
escapes, valid YAML) otherwise; the result loads back to exactly the input (a
test checks it with a YAML parser).
Written here so that generating docs/asyncapi.yaml needs no YAML library.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z_/$][A-Za-z0-9_./$-]*$")
_RESERVED = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"})


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _RESERVED:
            return value
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"not JSON-shaped: {value!r}")


def _literal(value: Any) -> bool:
    """Whether a string reads back unchanged as a literal block scalar."""
    if not isinstance(value, str) or "\n" not in value.rstrip("\n"):
        return False
    if value.endswith("\n\n") or value[:1] in (" ", "\n"):
        return False
    lines = value.rstrip("\n").split("\n")
    return all(line == line.rstrip() and line.isprintable() for line in lines)


def _after_key(item: Any, indent: str) -> tuple[str, list[str]]:
    """What follows `key:` or `-` on its line, and the lines under it."""
    if _literal(item):
        chomp = "" if item.endswith("\n") else "-"
        body = [f"{indent}{line}" if line else "" for line in item.rstrip("\n").split("\n")]
        return f" |{chomp}", body
    return f" {_inline(item)}", []


def _lines(value: Any, indent: str) -> list[str]:
    if isinstance(value, dict):
        if not value:
            return [f"{indent}{{}}"]
        out = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be strings: {key!r}")
            if isinstance(item, dict | list) and item:
                out.append(f"{indent}{_scalar(key)}:")
                out += _lines(item, indent + "  ")
            else:
                head, body = _after_key(item, indent + "  ")
                out += [f"{indent}{_scalar(key)}:{head}", *body]
        return out
    if isinstance(value, list):
        if not value:
            return [f"{indent}[]"]
        out = []
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = _lines(item, indent + "  ")
                out.append(f"{indent}- {nested[0].lstrip()}")
                out += nested[1:]
            else:
                head, body = _after_key(item, indent + "  ")
                out += [f"{indent}-{head}", *body]
        return out
    return [f"{indent}{_scalar(value)}"]


def _inline(value: Any) -> str:
    if value == {} and isinstance(value, dict):
        return "{}"
    if value == [] and isinstance(value, list):
        return "[]"
    return _scalar(value)


def dump(value: Any) -> str:
    """YAML text of a JSON-shaped value, ending with a newline."""
    return "\n".join(_lines(value, "")) + "\n"
