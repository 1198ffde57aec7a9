"""The worker loop, the scheduler's cron wiring, and the thin jobs both run."""
