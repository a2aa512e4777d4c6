"""The `embeddings` scope on keys made before it existed (infra/migrations/0022): a key made
with the defaults gets it, a key its owner narrowed does not."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from gatewayz import db, migrate, seed
from gatewayz.identity import accounts, keys
from tests.pg import ROOT

if TYPE_CHECKING:
    from pathlib import Path

MIGRATIONS = ROOT / "infra" / "migrations"
OLD_DEFAULTS = [s for s in keys.DEFAULT_SCOPES if s != "embeddings"]


def test_keys_made_with_the_old_defaults_gain_embeddings_and_narrowed_keys_do_not(
    empty_database: str, tmp_path: Path
) -> None:
    for path in MIGRATIONS.glob("*.sql"):
        if path.name < "0022":
            shutil.copy(path, tmp_path / path.name)
    with db.connect(empty_database) as conn:
        migrate.apply(conn, tmp_path)
        seed.apply(conn, ROOT / "infra" / "seed")
        with conn.transaction(), conn.cursor() as cur:
            owner = accounts.create_personal(cur, email="old-keys@example.com", plan_id="payg")
            made = {
                name: keys.create(
                    cur,
                    account_id=owner.account_id,
                    user_id=owner.user_id,
                    name=name,
                    pepper=b"pepper",
                    scopes=scopes,
                ).id
                for name, scopes in {
                    "defaults": OLD_DEFAULTS,
                    "chat only": ["chat"],
                    "admin": [*OLD_DEFAULTS, "admin"],
                }.items()
            }
        assert "0022" in migrate.apply(conn, MIGRATIONS)
        scopes = dict(conn.execute("SELECT id::text, scopes FROM api_keys").fetchall())
    assert scopes[made["defaults"]] == [*OLD_DEFAULTS, "embeddings"]
    assert scopes[made["chat only"]] == ["chat"]
    assert "embeddings" in scopes[made["admin"]]
