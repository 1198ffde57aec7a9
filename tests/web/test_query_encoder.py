"""The web process's query encoder: loaded on first use, on one thread, and never fatal."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import torch

from papertide.web import app as web_app
from papertide.web.app import create_app
from tests.factories import FakeEncoder


@pytest.fixture
def torch_threads() -> Iterator[int]:
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_queries_are_embedded_on_one_thread(monkeypatch: pytest.MonkeyPatch, torch_threads: int) -> None:
    # Two threads per op wait on each other whenever another process holds a core: a query's
    # p95 went from 13 ms to 103 ms on this 2-core box with one other busy process
    # (bench/query_embedding.py).
    torch.set_num_threads(2)
    threads_at_load: list[int] = []

    def load() -> FakeEncoder:
        threads_at_load.append(torch.get_num_threads())
        return FakeEncoder()

    monkeypatch.setattr(web_app, "get_encoder", load)
    provide = web_app.lazy_encoder()

    assert isinstance(provide(), FakeEncoder)
    assert provide() is provide()  # loaded once
    assert threads_at_load == [1]
    assert torch.get_num_threads() == 1


def test_a_model_that_cannot_load_turns_semantic_search_off_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch, torch_threads: int, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> FakeEncoder:
        raise OSError("model files missing")

    monkeypatch.setattr(web_app, "get_encoder", broken)
    with caplog.at_level(logging.ERROR):
        assert web_app.lazy_encoder()() is None
    assert "semantic search is off" in caplog.text


def test_a_served_app_loads_the_query_model_before_the_first_search(database: str) -> None:
    """`serve` and `up` warm it on a thread of their own: the first semantic search no longer waits
    5-10 s for the export and load; an app built without the flag (every test) loads nothing."""
    calls: list[int] = []
    loaded = threading.Event()

    def provider() -> None:
        calls.append(1)
        loaded.set()

    create_app(encoder_provider=provider)
    assert not loaded.wait(0.5), "no flag: nothing loads until a search asks"

    create_app(encoder_provider=provider, warm_query_model=True)

    assert loaded.wait(30), "loaded with no request at all"
    assert calls == [1]
