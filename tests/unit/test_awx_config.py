"""examples/awx/controller_config.yml and docs/awx.md against the collection they configure (issue 21):
what the credential types inject is what the collection reads, and what the survey asks is what the
release role takes."""

from __future__ import annotations

import os
import re

import yaml

from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import ENV_FALLBACKS
from ansible_collections.relops.release.plugins.plugin_utils.ledger import LEDGER_URL_ENV

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config() -> dict:
    with open(os.path.join(REPO, "examples", "awx", "controller_config.yml"), encoding="utf-8") as handle:
        (play,) = yaml.safe_load(handle)
    return play


def _role_options() -> set:
    with open(os.path.join(REPO, "roles", "release", "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        specs = yaml.safe_load(handle)
    return set(specs["argument_specs"]["main"]["options"])


def _injected_inputs(injectors: dict) -> set:
    return {name for value in injectors["env"].values() for name in re.findall(r"\{\{\s*(\w+)\s*\}\}", value)}


def _unescape(injectors: dict) -> dict:
    # The playbook writes AWX's own {{ }} as {{ '{{' }} ... {{ '}}' }} so that Ansible leaves them alone.
    env = {k: v.replace("{{ '{{' }}", "{{").replace("{{ '}}' }}", "}}") for k, v in injectors["env"].items()}
    return {"env": env}


def test_the_servicenow_credential_type_injects_what_the_collection_reads() -> None:
    kind = _config()["vars"]["servicenow_credential_type"]
    injectors = _unescape(kind["injectors"])
    assert set(injectors["env"]) <= set(ENV_FALLBACKS.values())
    assert {"SN_HOST", "SN_USERNAME", "SN_PASSWORD"} <= set(injectors["env"])
    inputs = {field["id"] for field in kind["inputs"]["fields"]}
    assert _injected_inputs(injectors) == inputs
    secrets = {field["id"] for field in kind["inputs"]["fields"] if field.get("secret")}
    assert {"password", "client_secret", "api_key"} <= secrets


def test_the_ledger_credential_type_keeps_the_password_out_of_the_url() -> None:
    kind = _config()["vars"]["ledger_credential_type"]
    injectors = _unescape(kind["injectors"])
    assert set(injectors["env"]) == {LEDGER_URL_ENV, "PGPASSWORD"}
    assert _injected_inputs(injectors) == {field["id"] for field in kind["inputs"]["fields"]}


def test_the_survey_asks_only_for_what_the_release_role_takes() -> None:
    play = _config()
    spec = play["vars"]["release_survey"]["spec"]
    asked = {question["variable"] for question in spec}
    assert asked <= _role_options(), asked - _role_options()
    artifact = next(question for question in spec if question["variable"] == "release_artifact")
    assert "path on the controller" in artifact["question_name"] and "URL" not in artifact["question_name"]
    templates = [task for task in play["tasks"] if "awx.awx.job_template" in task]
    for task in templates:
        assert os.path.isfile(os.path.join(REPO, task["awx.awx.job_template"]["playbook"]))


def test_docs_awx_md_says_what_awx_has() -> None:
    with open(os.path.join(REPO, "docs", "awx.md"), encoding="utf-8") as handle:
        page = handle.read()
    assert "examples/awx/controller_config.yml" in page
    assert "built-in *ServiceNow" not in page and "AWX has no built-in ServiceNow credential type" in page
    assert "AWX_TASK_ENV" in page  # the global setting, not a per-template one
    assert "awx_workflow_job_id" in page
    assert "/usr/share/ansible/collections" in page
