"""relops.release.promote through real ansible-playbook runs: directory and HTTP PUT repositories, ledger."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import shutil
from typing import Any

from fixtures.artifact_tasks import run_task
from fixtures.http_repo import PASSWORD, USER, HttpRepository
from fixtures.playbooks import Ansible
from fixtures.signing import DEMO_APP, KeyPair, demo_manifest

from ansible_collections.relops.release.plugins.module_utils.timestamps import utc_now
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import (
    build_statement,
    load_private_key,
    sign_envelope,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url
from ansible_collections.relops.release.plugins.plugin_utils.release_record.permit import (
    build_permit,
    load_permit_key,
    sign_permit,
)

NAME = "demo-app-1.4.0.tar.gz"


def permit_id(envelope: dict[str, Any]) -> str:
    """The id of the permit an envelope carries."""
    return str(json.loads(base64.b64decode(envelope["payload"]))["predicate"]["permit_id"])


def _publish(directory: str, key: KeyPair, **manifest_changes: Any) -> str:
    """Put a signed package and its envelope into a staging repository directory."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, NAME)
    manifest = demo_manifest(**manifest_changes)
    with open(path, "wb") as handle:
        write_package(plan_package(os.path.join(DEMO_APP, "app"), manifest), handle, "tar.gz")
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    with open(key.private_path, "rb") as handle:
        private = load_private_key(handle.read(), None, key.private_path)
    with open(path + ".intoto.json", "w", encoding="utf-8") as handle:
        json.dump(sign_envelope(build_statement(NAME, digest, manifest, {}), [private]), handle)
    return digest


def _args(key: KeyPair, source: str, target: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": NAME,
        "from_repository": source,
        "to_repository": target,
        "from_environment": "staging",
        "to_environment": "production",
        "keyring": {"keys": [{"public_key_file": key.public_path}]},
        **extra,
    }


def _permit_env(tmp_path: Any, key_factory: Any, ledger_url: str) -> tuple[KeyPair, tuple[str, ...]]:
    """A permit key, and the variables that make the run trust it (production is enforced)."""
    permit_key = key_factory("ed25519", name="permits")
    keyring = str(tmp_path / "permit-keyring.json")
    with open(keyring, "w", encoding="utf-8") as handle:
        json.dump({"keys": [{"public_key_file": permit_key.public_path}]}, handle)
    return permit_key, ("-e", "relops_ledger_url=%s" % ledger_url, "-e", "relops_permit_keyring=%s" % keyring)


def _permit(key: KeyPair, digest: str) -> dict[str, Any]:
    """A permit for demo-app 1.4.0 in production, signed as change_gate signs one."""
    record = {"release_id": "promote-test", "service": "demo-app", "environment": "production", "version": "1.4.0"}
    issued = utc_now() - datetime.timedelta(seconds=5)
    statement = build_permit(dict(record, digest=digest), ["web01"], issued, 600, {})
    return sign_permit(statement, load_permit_key(key.private_path))


def test_directory_promotion_verifies_copies_records_and_is_idempotent(
    ansible: Ansible, tmp_path: Any, key_factory: Any, ledger_url: str
) -> None:
    key = key_factory("ed25519")
    staging, production = str(tmp_path / "staging"), str(tmp_path / "production")
    digest = _publish(staging, key)
    permit_key, env = _permit_env(tmp_path, key_factory, ledger_url)
    # Production is enforced: without a permit, or with one for another artifact, nothing is copied.
    code, refused, output = run_task(ansible, "relops.release.promote", _args(key, staging, production), *env)
    assert code == 0 and refused["failed"] is True, output
    assert "promote %s to production refused: no release permit" % NAME in refused["msg"], output
    code, refused, output = run_task(
        ansible, "relops.release.promote", _args(key, staging, production, permit=_permit(permit_key, "ab" * 32)), *env
    )
    assert code == 0 and refused["failed"] is True, output
    assert "is for artifact sha256:abababababababab, not sha256:%s" % digest[:16] in refused["msg"], output
    assert not os.path.exists(production)

    permit = _permit(permit_key, digest)
    code, predicted, output = run_task(
        ansible, "relops.release.promote", _args(key, staging, production, permit=permit), *env, "--check"
    )
    assert code == 0 and predicted["changed"] is True, output
    assert predicted["permit_id"] == permit_id(permit)
    assert not os.path.exists(production)

    code, promoted, output = run_task(
        ansible, "relops.release.promote", _args(key, staging, production, permit=permit), *env, "--diff"
    )
    assert code == 0 and promoted["changed"] is True, output
    assert promoted["permit_id"] == permit_id(permit) and promoted["release_id"] == "promote-test"
    assert promoted["sha256"] == digest and promoted["promotion"]["to_environment"] == "production"
    assert sorted(os.listdir(production)) == [NAME, NAME + ".intoto.json"]
    code, again, output = run_task(ansible, "relops.release.promote", _args(key, staging, production), *env)
    assert code == 0 and again["changed"] is False, output
    with open_ledger(parse_ledger_url(ledger_url)) as ledger:
        rows = ledger.list_promotions(sha256=digest)
    assert len(rows) == 1
    assert (rows[0]["service"], rows[0]["version"], rows[0]["from_environment"]) == ("demo-app", "1.4.0", "staging")
    assert rows[0]["signers"] == promoted["signers"]


def test_unverified_artifact_is_not_promoted(
    ansible: Ansible, tmp_path: Any, key_factory: Any, ledger_url: str
) -> None:
    key, stranger = key_factory("ed25519"), key_factory("ecdsa")
    staging, production = str(tmp_path / "staging"), str(tmp_path / "production")
    _publish(staging, stranger)
    env = ("-e", "relops_ledger_url=%s" % ledger_url)
    code, refused, output = run_task(ansible, "relops.release.promote", _args(key, staging, production), *env)
    assert code == 0 and refused["failed"] is True, output
    assert "not promoted to production" in refused["msg"] and "not in the keyring" in refused["msg"]
    assert not os.path.exists(production)
    # An environment the manifest does not allow is refused the same way.
    _publish(staging, key, environments=["dev", "staging"])
    code, refused, output = run_task(ansible, "relops.release.promote", _args(key, staging, production), *env)
    assert code == 0 and refused["failed"] is True, output
    assert "environment 'production' is not in the manifest's environments" in refused["msg"]
    # A different artifact under a released name is refused: versions are immutable.
    _publish(staging, key)
    os.makedirs(production)
    shutil.copy(os.path.join(staging, NAME + ".intoto.json"), os.path.join(production, NAME))
    code, refused, output = run_task(ansible, "relops.release.promote", _args(key, staging, production), *env)
    assert code == 0 and refused["failed"] is True and "a released version is immutable" in refused["msg"], output


def test_http_put_repository_backend(
    ansible: Ansible, tmp_path: Any, key_factory: Any, http_repository: HttpRepository, ledger_url: str
) -> None:
    key = key_factory("rsa")
    staging = str(tmp_path / "staging")
    digest = _publish(staging, key)
    target = "%s/releases-production/demo-app" % http_repository.url
    permit_key, env = _permit_env(tmp_path, key_factory, ledger_url)
    permit = _permit(permit_key, digest)
    code, denied, output = run_task(
        ansible,
        "relops.release.promote",
        _args(key, staging, target, url_username=USER, url_password="wrong", permit=permit),
        *env,
    )
    assert code == 0 and denied["failed"] is True and "answered HTTP 401 to PUT" in denied["msg"], output
    assert "wrong" not in output.replace("answered HTTP 401", "")
    args = _args(key, staging, target, url_username=USER, url_password=PASSWORD, permit=permit)
    code, promoted, output = run_task(ansible, "relops.release.promote", args, *env)
    assert code == 0 and promoted["changed"] is True, output
    assert http_repository.puts == [
        "/releases-production/demo-app/%s" % NAME,
        "/releases-production/demo-app/%s.intoto.json" % NAME,
    ]
    with open(http_repository.path_of("releases-production/demo-app/%s" % NAME), "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == digest
    code, again, output = run_task(ansible, "relops.release.promote", args, *env)
    assert code == 0 and again["changed"] is False, output
    assert len(http_repository.puts) == 2
    # And on from the HTTP repository to a directory.
    code, onward, output = run_task(
        ansible,
        "relops.release.promote",
        {
            **args,
            "from_repository": target,
            "to_repository": str(tmp_path / "dr"),
            "from_environment": "production",
            "to_environment": "production",
        },
        *env,
    )
    assert code == 0 and onward["changed"] is True, output


def test_promote_doc_renders(ansible: Ansible) -> None:
    done = ansible.doc("relops.release.promote")
    assert done.returncode == 0 and "immutable" in done.stdout, done.report
