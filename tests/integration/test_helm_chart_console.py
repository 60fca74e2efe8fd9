"""The chart's console values: OIDC (its client secret only by Secret reference), the optional
Ingress and the sidebar links reach the console exactly as its settings read them.

`helm template` and `helm lint --strict` with the real helm binary; the settings the pod would
get are loaded by the console's own ConsoleSettings from the rendered environment.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import kubernetes_validate
import pytest

from devserver_operator.console.settings import ConsoleSettings
from tests.integration.test_helm_chart import CHART, KUBERNETES_VERSION, helm, helm_binary, render

pytestmark = pytest.mark.integration

NAME = "x-devserver-operator-console"
OIDC = [
    "--set", "console.enabled=true",
    "--set", "console.oidc.issuerUrl=https://idp.example.com/realms/dev",
    "--set", "console.oidc.clientId=devserver-console",
    "--set", "console.oidc.clientSecret.secretName=console-oidc",
    "--set", "console.oidc.usernameClaim=email",
    "--set", "console.oidc.usernamePrefix=oidc:",
    "--set", "console.oidc.groupsClaim=groups",
    "--set", "console.oidc.caConfigMap.name=idp-ca",
    "--set", "console.ingress.enabled=true",
    "--set", "console.ingress.className=nginx",
    "--set", "console.ingress.hosts={console.example.com}",
    "--set", "console.ingress.tls[0].secretName=console-tls",
    "--set", "console.ingress.tls[0].hosts={console.example.com}",
    "--set", "console.ingress.annotations.cert-manager\\.io/cluster-issuer=letsencrypt",
    "--set", "console.links[0].title=n8n",
    "--set", "console.links[0].url=https://n8n.example.com",
    "--set", "console.links[1].title=GitLab",
    "--set", "console.links[1].url=https://gitlab.example.com/team",
]  # fmt: skip


def _container(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    pod = objects[("Deployment", NAME)]["spec"]["template"]["spec"]
    first: dict[str, Any] = pod["containers"][0]
    return first


def _settings(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> ConsoleSettings:
    """The console's settings as its process would read them from this environment."""
    for entry in container.get("env") or []:
        value = entry.get("value", "from-a-secret" if "valueFrom" in entry else "")
        monkeypatch.setenv(entry["name"], value)
    return ConsoleSettings()


def test_oidc_ingress_and_links_reach_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render(*OIDC)
    console = _container(objects)
    environment = {e["name"]: e for e in console["env"]}
    # The client secret comes from the Secret; no value of it is anywhere in the chart.
    assert environment["DEVSERVER_CONSOLE_OIDC_CLIENT_SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": "console-oidc", "key": "client-secret"}
    }
    assert "value" not in environment["DEVSERVER_CONSOLE_OIDC_CLIENT_SECRET"]
    settings = _settings(console, monkeypatch)
    assert settings.oidc_issuer_url == "https://idp.example.com/realms/dev"
    assert settings.oidc_client_id == "devserver-console"
    assert settings.oidc_scopes == ["openid", "profile", "email"]
    assert (settings.oidc_username_claim, settings.oidc_username_prefix) == ("email", "oidc:")
    assert settings.oidc_groups_claim == "groups"
    assert settings.oidc_ca_file == "/etc/devserver-console/oidc-ca/ca.crt"
    # The Ingress host with TLS is the origin, so the redirect URI is https://host/...
    assert settings.public_origin == "https://console.example.com"
    assert [(link.title, link.url) for link in settings.links] == [
        ("n8n", "https://n8n.example.com"),
        ("GitLab", "https://gitlab.example.com/team"),
    ]
    (mount,) = console["volumeMounts"]
    volumes = objects[("Deployment", NAME)]["spec"]["template"]["spec"]["volumes"]
    assert volumes == [
        {
            "name": mount["name"],
            "configMap": {"name": "idp-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]},
        }
    ]
    ingress = objects[("Ingress", NAME)]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert ingress["spec"]["tls"] == [
        {"secretName": "console-tls", "hosts": ["console.example.com"]}
    ]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "console.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": NAME,
        "port": {"name": "http"},
    }
    for document in objects.values():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_without_oidc_and_ingress_the_console_has_neither() -> None:
    objects = render("--set", "console.enabled=true")
    assert ("Ingress", NAME) not in objects
    console = _container(objects)
    assert not [e for e in console.get("env") or [] if "OIDC" in e["name"]]
    assert "volumeMounts" not in console


def test_helm_lint_is_clean_with_every_console_value() -> None:
    helm("lint", "--strict", CHART, *OIDC)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        # A secret value inline has no place in the values: the schema has no key for it.
        (["--set", "console.oidc.clientSecret.value=s3cret"], "additional properties 'value'"),
        (["--set", "console.oidc.issuerUrl=http://idp.example.com"], "/console/oidc/issuerUrl"),
        (["--set", "console.oidc.scopes={email}"], "/console/oidc/scopes"),
        (["--set", "console.links[0].title=x", "--set", "console.links[0].url=javascript:alert(1)"],
         "/console/links/0/url"),
        (["--set", "console.enabled=true", "--set", "console.oidc.issuerUrl=https://idp.example.com",
          "--set", "console.oidc.clientId=c"], "needs console.publicOrigin or an Ingress host"),
        (["--set", "console.enabled=true", "--set", "console.oidc.issuerUrl=https://idp.example.com",
          "--set", "console.publicOrigin=https://c.example.com"], "needs console.oidc.clientId"),
    ],
)  # fmt: skip
def test_helm_refuses_console_values_that_cannot_work(values: list[str], complaint: str) -> None:
    result = subprocess.run(
        [str(helm_binary()), "template", "x", str(CHART), *values],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert complaint in result.stderr, result.stderr


def test_the_links_value_is_json_the_console_reads() -> None:
    objects = render(*OIDC)
    environment = {e["name"]: e.get("value") for e in _container(objects)["env"]}
    assert json.loads(environment["DEVSERVER_CONSOLE_LINKS"])[0] == {
        "title": "n8n",
        "url": "https://n8n.example.com",
    }
