"""Create a benchmark user through the services: ``python -m bench.seed --email E --password P``.

Run by ``BenchStack.create_user`` in the stack's environment (its database and keys); prints the
new user's id. A plain user by default (what a resident's client is), ``--role`` for staff.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--role", default=None, help="platform role, e.g. platform_admin")
    args = parser.parse_args(argv)

    from app import create_app
    from app.services import audit, users
    from config.settings import Settings

    app = create_app(Settings.from_env())
    with app.app_context():
        user = users.create_user(args.email, args.password, audit.Actor.system(), platform_role=args.role)
        print(user.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
