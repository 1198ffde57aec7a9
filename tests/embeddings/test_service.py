"""The embedding step: one claimed batch in the caller's transaction."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from papertide.embeddings import service
from papertide.models import PaperEmbedding
from tests.factories import FakeEncoder, make_paper


def test_one_step_embeds_one_batch_and_then_what_is_left(tx_session: Session) -> None:
    encoder = FakeEncoder()
    for _ in range(5):
        make_paper(tx_session)

    service.ensure_index(tx_session, encoder=encoder)
    assert service.pending_count(tx_session, encoder=encoder) == 5
    assert service.embed_batch(tx_session, encoder=encoder, batch_size=3) == 3
    assert service.embed_batch(tx_session, encoder=encoder, batch_size=3) == 2
    assert service.embed_batch(tx_session, encoder=encoder, batch_size=3) == 0
    assert tx_session.scalar(select(func.count()).select_from(PaperEmbedding)) == 5
    assert service.pending_count(tx_session, encoder=encoder) == 0
