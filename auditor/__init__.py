"""Auditor: corpora tooling, shadow training, membership features, attack models, reports."""
