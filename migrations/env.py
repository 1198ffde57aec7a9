"""Alembic environment: runs migrations online against papertide's database."""

from alembic import context
from sqlalchemy import create_engine, pool, text

from papertide import models

target_metadata = models.Base.metadata

# Every papertide command migrates first, so two started together on a fresh database would both
# create alembic_version and the extension and one would fail on a duplicate key. This lock, taken
# in the migration transaction, makes the second wait for the first's commit and then find the
# schema at head. Any 64-bit number unique to this purpose: "papertid" in ASCII.
MIGRATION_LOCK_KEY = 0x7061706572746964


def _url() -> str:
    url = context.config.attributes.get("database_url")
    if url:
        return str(url)
    from papertide.db import database_url  # plain `alembic upgrade head` from a checkout

    return database_url()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            # Released when the transaction ends; alembic reads the current revision after this.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("papertide runs migrations online only: use `papertide db upgrade`")
run_migrations_online()
