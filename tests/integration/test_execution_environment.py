"""execution-environment.yml gives a working ansible-builder context for AWX."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from fixtures.playbooks import REPO

BIN = os.path.dirname(sys.executable)


def test_ansible_builder_context_carries_the_collection_and_its_dependencies(tmp_path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("execution-environment.yml", "requirements.txt", "requirements.yml", "bindep.txt"):
        shutil.copy(os.path.join(REPO, name), source / name)
    (source / "build").mkdir()
    subprocess.run(
        [os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(source / "build"), REPO],
        check=True,
        capture_output=True,
        text=True,
    )
    context = tmp_path / "context"
    done = subprocess.run(
        [os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(context)],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    build = context / "_build"
    assert (build / "requirements.txt").read_text().count("psycopg") == 1
    assert "postgresql-client" in (build / "bindep.txt").read_text()
    # Secret lookups (docs/secrets.md): the collection and the Python library it needs.
    assert "community.hashi_vault" in (build / "requirements.yml").read_text()
    assert "hvac" in (build / "requirements.txt").read_text()
    assert [path.name for path in (build / "collection").iterdir()] == ["relops-release-0.1.0.tar.gz"]
    containerfile = (context / "Dockerfile").read_text()
    assert "COPY _build/collection/ /tmp/collection/" in containerfile
    # AWX runs the job as uid 1000: the collection must be on ansible-core's default path for every
    # user, not under /root/.ansible (issue 21).
    assert "ansible-galaxy collection install -p /usr/share/ansible/collections" in containerfile
    assert "chmod -R a+rX /usr/share/ansible/collections" in containerfile
    assert "USER 1000" in containerfile.split("ansible-galaxy collection install -p")[1]
    from ansible.config.manager import ConfigManager  # noqa: PLC0415 - only this check reads ansible's config

    default_paths = ConfigManager().get_configuration_definition("COLLECTIONS_PATHS")["default"]
    assert "/usr/share/ansible/collections" in default_paths
    # The EE installs bindep's entries without a profile: no router or test tools in a controller image.
    listed = subprocess.run(
        [os.path.join(BIN, "bindep"), "-l", "newline", "-f", str(build / "bindep.txt")],
        capture_output=True,
        text=True,
        check=False,
    )
    packages = listed.stdout.split()
    assert "git" in packages and "nginx" not in packages and "haproxy" not in packages, listed.stdout
