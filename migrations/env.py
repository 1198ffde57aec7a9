"""Alembic environment: runs migrations online against papertide's database."""

from alembic import context
from sqlalchemy import create_engine, pool

from papertide import models

target_metadata = models.Base.metadata


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
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("papertide runs migrations online only: use `papertide db upgrade`")
run_migrations_online()
