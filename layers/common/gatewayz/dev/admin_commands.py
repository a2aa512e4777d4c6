"""`gatewayz admin`: the operators' user and credit administration from a shell with
database access (`DATABASE_URL`), through the same functions as the `/admin` routes.
Changes are audited with the actor `system`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `admin` and its subcommands under `commands`."""
    admin = commands.add_parser("admin", help="operators: users and credits")
    actions = admin.add_subparsers(dest="admin_command", required=True)
    create = actions.add_parser(
        "create-user", help="a user with a personal account; prints their first key once"
    )
    create.add_argument("email")
    grant = actions.add_parser("grant", help="grant (or, negative, debit) USD to an account")
    grant.add_argument("account_id")
    grant.add_argument("usd", help="e.g. 25 or -2.50")
    grant.add_argument("--reason", required=True)
    grant.add_argument("--idempotency-key", help="a retry with the same key posts nothing more")
    for name, what in (("suspend", "suspend"), ("unsuspend", "reactivate")):
        action = actions.add_parser(name, help=f"{what} a user's personal account")
        action.add_argument("user_id")


def run(args: argparse.Namespace) -> int:
    """Run the `admin` subcommand `args` names; the exit status."""
    from gatewayz import errors

    try:
        return _run(args)
    except errors.GatewayError as exc:
        param = f" ({exc.param})" if exc.param else ""
        print(f"gatewayz admin {args.admin_command}: {exc.message}{param}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from gatewayz.billing import adjustments
    from gatewayz.identity import admin

    if args.admin_command == "create-user":
        created, key = admin.create_user(args.email, actor=None)
        user, account = created["user"], created["account"]
        print(f"created user {user['id']} with account {account['id']}", file=sys.stderr)
        print(key.secret)
        return 0
    if args.admin_command == "grant":
        done = adjustments.adjust(
            args.account_id, args.usd, args.reason, actor=None,
            idempotency_key=args.idempotency_key,
        )  # fmt: skip
        entry = done.data
        again = " (already posted)" if done.replayed else ""
        print(f"{entry['kind']} {entry['amount']} USD to {entry['account_id']}: "
              f"balance {entry['balance_after']} USD{again}")  # fmt: skip
        return 0
    suspended = args.admin_command == "suspend"
    user = admin.update_user(args.user_id, {"suspended": suspended}, actor=None)
    account = user["account"]
    print(f"user {user['id']}: account {account['id']} is {account['status']}")
    return 0
