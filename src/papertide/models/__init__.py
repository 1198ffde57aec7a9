"""ORM models; importing this package registers every table on Base.metadata."""

from papertide.models.base import Base
from papertide.models.digest import DeliveryStatus, DigestDelivery, DigestItem
from papertide.models.ops import JobRun, JobStatus, RateLimit, SourceState
from papertide.models.paper import Paper, PaperEmbedding, PaperScore, PaperSignal, PaperView, Topic
from papertide.models.subscriber import Frequency, Subscriber, SubscriberStatus, SubscriberToken, TokenPurpose

__all__ = [
    "Base",
    "DeliveryStatus",
    "DigestDelivery",
    "DigestItem",
    "Frequency",
    "JobRun",
    "JobStatus",
    "Paper",
    "PaperEmbedding",
    "PaperScore",
    "PaperSignal",
    "PaperView",
    "RateLimit",
    "SourceState",
    "Subscriber",
    "SubscriberStatus",
    "SubscriberToken",
    "TokenPurpose",
    "Topic",
]
