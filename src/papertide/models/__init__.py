"""ORM models; importing this package registers every table on Base.metadata."""

from papertide.models.base import Base
from papertide.models.digest import (
    DeliveryStatus,
    DigestDelivery,
    DigestItem,
    DigestPass,
    MailSuppression,
    PhraseEmbedding,
)
from papertide.models.ops import JobRun, JobStatus, RateLimit, RequestLimit, SourceState
from papertide.models.paper import (
    KeywordPending,
    Paper,
    PaperEmbedding,
    PaperScore,
    PaperSignal,
    PaperView,
    PaperViewVisitor,
    Topic,
)
from papertide.models.subscriber import (
    EVERY_DAY,
    Frequency,
    InterestProfile,
    PaperVote,
    Subscriber,
    SubscriberStatus,
    SubscriberToken,
    TokenPurpose,
)

__all__ = [
    "EVERY_DAY",
    "Base",
    "DeliveryStatus",
    "DigestDelivery",
    "DigestItem",
    "DigestPass",
    "Frequency",
    "InterestProfile",
    "JobRun",
    "JobStatus",
    "KeywordPending",
    "MailSuppression",
    "Paper",
    "PaperEmbedding",
    "PaperScore",
    "PaperSignal",
    "PaperView",
    "PaperViewVisitor",
    "PaperVote",
    "PhraseEmbedding",
    "RateLimit",
    "RequestLimit",
    "SourceState",
    "Subscriber",
    "SubscriberStatus",
    "SubscriberToken",
    "TokenPurpose",
    "Topic",
]
