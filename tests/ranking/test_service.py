"""Scoring as a job: two runs at once (the score cron and a digest run's rescore) both succeed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from papertide.models import JobRun, JobStatus, PaperScore
from papertide.worker import jobs
from tests.factories import make_paper


def test_score_runs_at_once_all_succeed_with_one_set_of_scores(database: str, session: Session) -> None:
    # Papers without embeddings: no topics to save, so the runs meet at once on paper_score.
    for _ in range(300):
        make_paper(session, announced_at=datetime(2026, 11, 20, tzinfo=UTC))
    session.commit()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            jobs.score()
        except BaseException as error:  # the test reports it below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    session.expire_all()
    statuses = session.scalars(select(JobRun.status).where(JobRun.job == "score")).all()
    assert statuses.count(JobStatus.OK) == 4
    per_key = select(func.count()).select_from(PaperScore).group_by(PaperScore.paper_id, PaperScore.period)
    assert set(session.scalars(per_key)) == {1}
