"""What a spec makes the operator do on the requester's behalf, as rights the requester needs.

Pure: a parsed spec in, a list of ``Requirement`` out. Each requirement names the field, the
right (verb on a resource, with a name) and where the referenced data goes (``reaches``): the
code of a workload, or a URL the operator sends it to. On update only requirements that are
new in that sense are checked, so moving a Secret to another destination is checked again
while an unrelated edit (replicas, labels) by someone with fewer rights passes.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from devserver_operator.api.alertrule import AlertRuleSpec
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec

CHECKED_KINDS = ("MCPServer", "WorkflowIntegration", "AlertRule")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Requirement:
    """The requester must hold ``verb`` on ``resource`` (named ``name``, "" for any)."""

    field: str
    """Path of the field in the object, e.g. spec.env[0].valueFrom.secretKeyRef.name."""
    resource: str
    """Core-group resource: secrets, configmaps or pods."""
    verb: str
    name: str
    reaches: str
    """Who receives what the field refers to: a workload (its image, command, account) or
    the URL the operator sends it to. Part of a requirement's identity on update."""
    image: str | None = None
    """Set when an image on the administrator's allow-list stands in for the right."""

    @property
    def key(self) -> tuple[str, str, str, str, str | None]:
        return (self.resource, self.verb, self.name, self.reaches, self.image)


def requirements(
    kind: str,
    spec: Any,
    *,
    bridge_image: str,
    foreign_accounts: Collection[str] = (),
    openhands_headers: Collection[tuple[str, str]] = (),
) -> list[Requirement]:
    """Every right ``spec`` (a parsed spec model of ``kind``) needs of its author.

    ``foreign_accounts``: names of ServiceAccounts that exist in the namespace and are not
    owned by this object. One the MCPServer would "create" is taken over, so it counts as
    named, not fresh.

    ``openhands_headers``: (MCPServer, Secret) of every header of the MCPServers a
    WorkflowIntegration selects now; with ``openHands`` the operator copies those values into
    the OpenHands Secret, which whoever may read that Secret (or mount it) then reads."""
    if isinstance(spec, MCPServerSpec):
        return list(_mcpserver(spec, bridge_image, foreign_accounts))
    if isinstance(spec, WorkflowIntegrationSpec):
        return list(_workflowintegration(spec, openhands_headers))
    if isinstance(spec, AlertRuleSpec):
        return list(_alertrule(spec))
    raise TypeError(f"no admission rules for {kind}")


def changed(new: Sequence[Requirement], old: Sequence[Requirement]) -> list[Requirement]:
    """The requirements of ``new`` that ``old`` did not already have (same right, same
    destination): only these are checked on update."""
    before = {requirement.key for requirement in old}
    return [requirement for requirement in new if requirement.key not in before]


def image_allowed(image: str, allow_list: Iterable[str]) -> bool:
    """Whether ``image`` is on the allow-list: an entry ending in '/' is a registry or
    repository prefix, 'sha256:<hex>' a digest, anything else an exact reference."""
    for entry in allow_list:
        if entry.endswith("/"):
            if image.startswith(entry):
                return True
        elif DIGEST.match(entry):
            if image.endswith("@" + entry):
                return True
        elif image == entry:
            return True
    return False


def check_allow_list_entry(entry: str) -> str:
    """Refuse entries that would match more than an administrator means: a prefix must end
    in '/' (``ghcr.io/org`` would also match ``ghcr.io/organisation-of-someone-else``), an
    exact reference must pin a digest (a tag can be pushed again)."""
    if entry.endswith("/") and len(entry) > 1 and " " not in entry:
        return entry
    if DIGEST.match(entry):
        return entry
    name, _, digest = entry.partition("@")
    if name and DIGEST.match(digest):
        return entry
    raise ValueError(
        f"allowed image {entry!r}: use a prefix ending in '/' (ghcr.io/org/), "
        "a digest (sha256:<64 hex>) or a reference with a digest (image@sha256:<64 hex>)"
    )


# -- per kind -------------------------------------------------------------------------------


def _mcpserver(
    spec: MCPServerSpec, bridge_image: str, foreign_accounts: Collection[str]
) -> Iterable[Requirement]:
    if spec.url is not None:
        # Remote: the operator sends the headers to the URL; no workload runs.
        yield from _headers(spec, f"url {spec.url}")
        return
    image = spec.image if spec.image is not None else bridge_image
    account = spec.service_account
    named_account = account.name if account is not None and not account.create else None
    account_field = "spec.serviceAccount.name"
    if account is not None and account.create and foreign_accounts:
        # create: true on an existing account owned by someone else: the operator's forced
        # apply would take it over, so it is as good as naming it. foreign_accounts holds at
        # most the one account this MCPServer creates (named, or named after the MCPServer).
        if account.name is None:
            named_account = sorted(foreign_accounts)[0]
            account_field = f"spec.serviceAccount.create (the account {named_account})"
        elif account.name in foreign_accounts:
            named_account = account.name
    # Whatever the pod runs receives every Secret and ConfigMap it mounts, so they belong to
    # the workload: a change of image, command, args or account checks them all again.
    workload = (
        f"workload image={image} command={spec.command} args={spec.args} "
        f"serviceAccount={named_account or ''}"
    )
    image_field = "spec.image" if spec.image is not None else "spec.transport (the bridge image)"
    yield Requirement(image_field, "pods", "create", "", workload, image=image)
    if named_account is not None:
        # A named account carries its own rights (and cloud identity): only who may create
        # pods may run code as it. The account the MCPServer creates itself is fresh.
        yield Requirement(account_field, "pods", "create", "", workload)
    for index, env in enumerate(spec.env or []):
        source = env.get("valueFrom") or {}
        field = f"spec.env[{index}].valueFrom"
        if "secretKeyRef" in source:
            yield _get("secrets", f"{field}.secretKeyRef.name", source["secretKeyRef"], workload)
        if "configMapKeyRef" in source:
            yield _get(
                "configmaps", f"{field}.configMapKeyRef.name", source["configMapKeyRef"], workload
            )
    for index, env_from in enumerate(spec.env_from or []):
        field = f"spec.envFrom[{index}]"
        if "secretRef" in env_from:
            yield _get("secrets", f"{field}.secretRef.name", env_from["secretRef"], workload)
        if "configMapRef" in env_from:
            yield _get(
                "configmaps", f"{field}.configMapRef.name", env_from["configMapRef"], workload
            )
    for index, volume in enumerate(spec.volumes or []):
        field = f"spec.volumes[{index}]"
        if volume.secret is not None:
            name = volume.secret.secret_name
            yield Requirement(f"{field}.secret.secretName", "secrets", "get", name, workload)
        if volume.config_map is not None:
            name = volume.config_map.name
            yield Requirement(f"{field}.configMap.name", "configmaps", "get", name, workload)
    overrides = spec.pod_overrides
    for index, pull_secret in enumerate((overrides.image_pull_secrets or []) if overrides else []):
        field = f"spec.podOverrides.imagePullSecrets[{index}].name"
        yield _get("secrets", field, pull_secret, workload)
    yield from _headers(spec, workload)


def _headers(spec: MCPServerSpec, reaches: str) -> Iterable[Requirement]:
    for index, header in enumerate(spec.headers or []):
        field = f"spec.headers[{index}].valueFrom.secretKeyRef.name"
        yield Requirement(field, "secrets", "get", header.value_from.secret_key_ref.name, reaches)


def _get(resource: str, field: str, ref: dict[str, Any], reaches: str) -> Requirement:
    # Kubernetes' own types allow an empty name (it then means nothing is referenced).
    return Requirement(field, resource, "get", str(ref.get("name") or ""), reaches)


def _workflowintegration(
    spec: WorkflowIntegrationSpec, openhands_headers: Collection[tuple[str, str]]
) -> Iterable[Requirement]:
    if spec.open_hands is not None:
        target = f"openhands secret {spec.open_hands.config_map_name}"
        for server, secret in sorted(set(openhands_headers)):
            field = f"spec.openHands (a header of MCPServer {server})"
            yield Requirement(field, "secrets", "get", secret, target)
    if spec.n8n is None:
        return
    n8n = f"url {spec.n8n.url}"
    yield Requirement(
        "spec.n8n.apiKeySecretRef.name", "secrets", "get", spec.n8n.api_key_secret_ref.name, n8n
    )
    for index, credential in enumerate(spec.credentials or []):
        field = f"spec.credentials[{index}].secretRef.name"
        yield Requirement(field, "secrets", "get", credential.secret_ref.name, n8n)
    for index, workflow in enumerate(spec.workflows or []):
        if workflow.config_map_ref is not None:
            field = f"spec.workflows[{index}].configMapRef.name"
            yield Requirement(field, "configmaps", "get", workflow.config_map_ref.name, n8n)


def _alertrule(spec: AlertRuleSpec) -> Iterable[Requirement]:
    for index, channel in enumerate(spec.channels or []):
        field = f"spec.channels[{index}]"
        if channel.slack is not None:
            # The URL is in the Secret itself: whoever can change it may read it anyway.
            ref = channel.slack.webhook_url_secret_ref
            yield Requirement(
                f"{field}.slack.webhookUrlSecretRef.name", "secrets", "get", ref.name, "slack"
            )
        if channel.teams is not None:
            ref = channel.teams.webhook_url_secret_ref
            yield Requirement(
                f"{field}.teams.webhookUrlSecretRef.name", "secrets", "get", ref.name, "teams"
            )
        if channel.webhook is not None:
            hook = channel.webhook
            # The HMAC key goes wherever the URL (or the Secret holding it) points.
            target = (
                f"url {hook.url}" if hook.url is not None else f"url from {hook.url_secret_ref}"
            )
            if hook.url_secret_ref is not None:
                name = hook.url_secret_ref.name
                yield Requirement(
                    f"{field}.webhook.urlSecretRef.name", "secrets", "get", name, target
                )
            if hook.hmac_secret_ref is not None:
                name = hook.hmac_secret_ref.name
                yield Requirement(
                    f"{field}.webhook.hmacSecretRef.name", "secrets", "get", name, target
                )
        if channel.email is not None:
            email = channel.email
            smtp = f"smtp {email.smtp_host}:{email.smtp_port} tls={email.tls}"
            for attribute, wire in (
                ("username_secret_ref", "usernameSecretRef"),
                ("password_secret_ref", "passwordSecretRef"),
            ):
                ref = getattr(email, attribute)
                if ref is not None:
                    yield Requirement(
                        f"{field}.email.{wire}.name", "secrets", "get", ref.name, smtp
                    )
