"""Subscribers: double opt-in, tokens in links, unsubscribe."""
