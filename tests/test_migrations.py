"""Alembic is the only way the schema changes: the models must match what the migrations build."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

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
