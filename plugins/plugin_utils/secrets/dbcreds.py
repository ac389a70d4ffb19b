# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Short-lived database logins from OpenBao's database secrets engine.

Each release run asks ``<mount>/creds/<role>`` for a login of its own; the
engine creates the PostgreSQL role with a lease. Revoking the lease when the
run ends (on failure too) runs the role's revocation statements, so the login
exists only while the run needs it; the lease's TTL bounds it if the
controller dies before revoking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict
from urllib.parse import quote, urlsplit, urlunsplit

from . import SecretsError
from .openbao import OpenBaoClient


@dataclass(frozen=True)
class DatabaseLease:
    username: str
    password: str
    lease_id: str
    lease_duration: int
    renewable: bool


def issue_login(client: OpenBaoClient, mount: str, role: str) -> DatabaseLease:
    path = "%s/creds/%s" % (mount.strip("/"), role)
    answer = client.read(path)
    data = answer.get("data") or {}
    if not data.get("username") or not data.get("password") or not answer.get("lease_id"):
        raise SecretsError(
            "OpenBao path %s gave no username, password and lease; is %s a database secrets engine role?" % (path, role)
        )
    return DatabaseLease(
        username=str(data["username"]),
        password=str(data["password"]),
        lease_id=str(answer["lease_id"]),
        lease_duration=int(answer.get("lease_duration") or 0),
        renewable=bool(answer.get("renewable")),
    )


def lease_exists(client: OpenBaoClient, lease_id: str) -> bool:
    """Whether the lease is still live; OpenBao answers 400 "invalid lease" for a revoked or expired one."""
    try:
        client.write("sys/leases/lookup", {"lease_id": lease_id})
    except SecretsError as exc:
        if "invalid lease" in str(exc):
            return False
        raise
    return True


def revoke_lease(client: OpenBaoClient, lease_id: str) -> bool:
    """Revoke the lease now (its revocation statements drop the login); False when it was already gone."""
    if not lease_exists(client, lease_id):
        return False
    # sync: the call returns once the engine has run the revocation statements, so the role is gone after it.
    client.call("PUT", "sys/leases/revoke", {"lease_id": lease_id, "sync": True})
    return True


def login_url(db_url: str, username: str) -> str:
    """``db_url`` with its user replaced by ``username`` and any password left out (it is passed apart)."""
    parts = urlsplit(db_url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise SecretsError(
            "db_url %s is not postgresql://host[:port]/database; short-lived logins are for PostgreSQL"
            % _without_password(db_url)
        )
    host = parts.hostname if ":" not in parts.hostname else "[%s]" % parts.hostname
    netloc = "%s@%s%s" % (quote(username, safe=""), host, ":%d" % parts.port if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(":%s@" % parts.password, ":***@", 1)


def lease_summary(lease: DatabaseLease) -> Dict[str, Any]:
    """What may be shown of a lease: everything but the password."""
    return {
        "username": lease.username,
        "lease_id": lease.lease_id,
        "lease_duration": lease.lease_duration,
        "renewable": lease.renewable,
    }
