"""Generated artefacts of the public contract, and the command that writes them.

    ./run codegen            # python -m infra.codegen: write every generated file
    ./run codegen --check    # exit 1 and name the stale files instead

From the code's msgspec types (the services' `events.CATALOGUE` and the
gateway's `contract` module) come the JavaScript client's event and protocol
types (`clients/js/src/generated/events.ts`) and the AsyncAPI document
(`docs/asyncapi.yaml`); from each service's OpenAPI document, built in-process
from its Litestar app, come the REST types
(`clients/js/src/generated/rest/<service>.ts`, by openapi-typescript, an npm
tool locked in `tools/codegen`). Tests regenerate each file in memory and
compare it with the committed one.
"""
