"""Shared test setup: make the checkout importable as ansible_collections.relops.release,
and offer the PostgreSQL and ledger fixtures to every test layer."""

from __future__ import annotations

import os
import sys

from hypothesis import settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_ROOT = os.path.join(REPO, "build", "src")
_LINK = os.path.join(SOURCE_ROOT, "ansible_collections", "relops", "release")

if not os.path.islink(_LINK):
    os.makedirs(os.path.dirname(_LINK), exist_ok=True)
    os.symlink(REPO, _LINK)
if SOURCE_ROOT not in sys.path:
    sys.path.insert(0, SOURCE_ROOT)
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Hypothesis's per-example deadline measures wall time, which a shared 2-core
# machine cannot promise; tests assert behaviour, never speed.
settings.register_profile("relops", deadline=None)
settings.load_profile("relops")

pytest_plugins = [
    "fixtures.postgres",
    "fixtures.playbooks",
    # fixtures.lab imports fixtures.routers, so routers registers first (pytest rewrites its asserts).
    "fixtures.routers",
    "fixtures.lab",
    "fixtures.migrations",
    "fixtures.servicenow",
    "fixtures.signing",
    "fixtures.http_repo",
    "fixtures.audit",
    "fixtures.http_services",
    "fixtures.prometheus",
    "fixtures.calendar_http",
    "fixtures.demo_site",
    "fixtures.canary",
    "fixtures.unleash",
    "fixtures.http_proxy",
    "fixtures.openbao",
]
