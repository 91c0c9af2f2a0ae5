"""Alembic migrations (run by `precaution-collector migrate`, `init`, and tests)."""
