"""`community-token`: print a signed development token.

    uv run community-token --role student --name "Ada"
    uv run community-token --sub 6f1c... --role instructor --name "Grace" --ttl 86400

Signs with `JWT_SECRET` (or its documented development default).
"""

from __future__ import annotations

import argparse
import os
import uuid

from community_shared.auth import ROLES, issue_token
from community_shared.settings import DEFAULT_JWT_SECRET


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="community-token", description=__doc__)
    parser.add_argument("--sub", default=None, help="user UUID (random when omitted)")
    parser.add_argument("--role", default="student", choices=sorted(ROLES))
    parser.add_argument("--name", default="Demo User")
    parser.add_argument("--ttl", type=int, default=24 * 3600, help="lifetime in seconds")
    parser.add_argument(
        "--non-member", action="store_true", help="student without an active membership"
    )
    args = parser.parse_args(argv)
    sub = uuid.UUID(args.sub) if args.sub else uuid.uuid4()
    print(
        issue_token(
            sub=sub,
            role=args.role,
            name=args.name,
            secret=os.environ.get("JWT_SECRET", DEFAULT_JWT_SECRET),
            ttl_seconds=args.ttl,
            member=False if args.non_member else None,
        )
    )


if __name__ == "__main__":
    main()
