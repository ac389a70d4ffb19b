"""relops.release.promote through real ansible-playbook runs: directory and HTTP PUT repositories, ledger."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any

from fixtures.artifact_tasks import run_task
from fixtures.http_repo import PASSWORD, USER, HttpRepository
from fixtures.playbooks import Ansible
from fixtures.signing import DEMO_APP, KeyPair, demo_manifest

from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import (
    build_statement,
    load_private_key,
    sign_envelope,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import plan_package, write_package
from ansible_collections.relops.release.plugins.plugin_utils.ledger import open_ledger, parse_ledger_url

NAME = "demo-app-1.4.0.tar.gz"


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


def test_directory_promotion_verifies_copies_records_and_is_idempotent(
    ansible: Ansible, tmp_path: Any, key_factory: Any, ledger_url: str
) -> None:
    key = key_factory("ed25519")
    staging, production = str(tmp_path / "staging"), str(tmp_path / "production")
    digest = _publish(staging, key)
    env = ("-e", "relops_ledger_url=%s" % ledger_url)
    code, predicted, output = run_task(
        ansible, "relops.release.promote", _args(key, staging, production), *env, "--check"
    )
    assert code == 0 and predicted["changed"] is True, output
    assert not os.path.exists(production)

    code, promoted, output = run_task(
        ansible, "relops.release.promote", _args(key, staging, production), *env, "--diff"
    )
    assert code == 0 and promoted["changed"] is True, output
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
    env = ("-e", "relops_ledger_url=%s" % ledger_url)
    code, denied, output = run_task(
        ansible, "relops.release.promote", _args(key, staging, target, url_username=USER, url_password="wrong"), *env
    )
    assert code == 0 and denied["failed"] is True and "answered HTTP 401 to PUT" in denied["msg"], output
    assert "wrong" not in output.replace("answered HTTP 401", "")
    args = _args(key, staging, target, url_username=USER, url_password=PASSWORD)
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
