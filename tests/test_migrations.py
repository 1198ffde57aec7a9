"""Alembic is the only way the schema changes: the models must match what the migrations build."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from papertide.db import alembic_config
from papertide.models import Base


def test_models_match_the_migrated_schema(database: str) -> None:
    engine = create_engine(database)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_back(database: str) -> None:
    config = alembic_config(database)
    command.downgrade(config, "base")
    engine = create_engine(database)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    command.upgrade(config, "head")
    assert {"paper", "paper_embedding", "digest_delivery", "job_run"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_a_composed_digest_is_stored_uncompressed(database: str) -> None:
    """Written once and cleared when sent: compressing it cost the database more CPU than all its
    other work for a digest (migration 0016, docs/benchmarks.md#digest-sending)."""
    engine = create_engine(database)
    with engine.connect() as connection:
        storage = connection.execute(
            text(
                "SELECT attstorage FROM pg_attribute"
                " WHERE attrelid = 'digest_delivery'::regclass AND attname = 'message'"
            )
        ).scalar_one()
    engine.dispose()
    assert storage == "e", "STORAGE EXTERNAL: out of line, no compression"
