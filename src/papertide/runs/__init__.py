"""Job run records: how every ingest, embed, score and digest run ended, and what it did."""
