"""Integration fixtures live in tests/fixtures/playbooks.py (registered by tests/conftest.py)."""
