"""Decide one AdmissionReview: the rights a spec needs (``references``), asked of the API
server for the requester with SubjectAccessReviews."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from devserver_operator.api import API_VERSION
from devserver_operator.api.alertrule import AlertRuleSpec
from devserver_operator.api.mcpserver import MCPServerSpec
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.workflowintegration import select_mcp_servers
from devserver_operator.kube.client import KubeClient

from .references import Requirement, changed, image_allowed, requirements

SPEC_MODELS: dict[str, type[BaseModel]] = {
    "MCPServer": MCPServerSpec,
    "WorkflowIntegration": WorkflowIntegrationSpec,
    "AlertRule": AlertRuleSpec,
}
REFUSED_PREFIX = "the operator would act on your behalf beyond your own rights"
# A LocalSubjectAccessReview asks about one namespace only, which is all a namespaced
# reference needs, and a Role may grant it: single-namespace installs stay free of
# cluster-scoped rights.
LOCAL_SAR_PATH = "/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews"


class BadReviewError(ValueError):
    """The AdmissionReview itself is malformed (not the object under review)."""


def needed(
    request: Mapping[str, Any],
    *,
    bridge_image: str,
    foreign_accounts: Collection[str] = (),
    openhands_headers: Collection[tuple[str, str]] = (),
) -> list[Requirement]:
    """The requirements to check for one admission request: all of them on create, the new
    ones on update. Raises ValidationError for a spec the operator's model refuses.

    ``foreign_accounts`` (see ``requirements``) counts for the new spec only: the old spec
    vouches for no account that was not its own, so taking one over is always checked."""
    kind = str((request.get("kind") or {}).get("kind") or "")
    model = SPEC_MODELS.get(kind)
    if model is None:
        raise BadReviewError(f"kind {kind!r} is not one this webhook checks")
    new_object = request.get("object")
    if not isinstance(new_object, Mapping):
        raise BadReviewError("the request carries no object")
    spec = model.model_validate(new_object.get("spec") or {})
    wanted = requirements(
        kind,
        spec,
        bridge_image=bridge_image,
        foreign_accounts=foreign_accounts,
        openhands_headers=openhands_headers,
    )
    old_object = request.get("oldObject")
    if request.get("operation") != "UPDATE" or not isinstance(old_object, Mapping):
        return wanted
    try:
        old_spec = model.model_validate(old_object.get("spec") or {})
    except ValidationError:
        return wanted  # an old spec the model no longer accepts vouches for nothing
    # The old spec is given the same servers: a header copied before is not checked again,
    # one that is new (a new server selected, a new openHands target) is.
    previous = requirements(
        kind, old_spec, bridge_image=bridge_image, openhands_headers=openhands_headers
    )
    return changed(wanted, previous)


async def refusals(
    kube: KubeClient,
    user_info: Mapping[str, Any],
    namespace: str,
    wanted: Sequence[Requirement],
    allowed_images: Sequence[str],
) -> list[str]:
    """One sentence per requirement the requester does not meet, naming field and right."""
    open_ = [r for r in wanted if r.image is None or not image_allowed(r.image, allowed_images)]
    rights = sorted({(r.resource, r.verb, r.name) for r in open_})
    answers = await asyncio.gather(
        *(_may(kube, user_info, namespace, resource, verb, name) for resource, verb, name in rights)
    )
    allowed = {right for right, yes in zip(rights, answers, strict=True) if yes}
    sentences = []
    for requirement in open_:
        if (requirement.resource, requirement.verb, requirement.name) in allowed:
            continue
        target = (
            f'{requirement.resource} "{requirement.name}"'
            if requirement.name
            else requirement.resource
        )
        sentence = (
            f"{requirement.field}: needs permission to {requirement.verb} {target} "
            f"in namespace {namespace}"
        )
        if requirement.image is not None:
            sentence += f", or the image {requirement.image} on the operator's allowedImages"
        sentences.append(sentence)
    return sentences


async def _may(
    kube: KubeClient,
    user_info: Mapping[str, Any],
    namespace: str,
    resource: str,
    verb: str,
    name: str,
) -> bool:
    spec: dict[str, Any] = {
        "user": user_info.get("username", ""),
        "groups": list(user_info.get("groups") or []),
        "resourceAttributes": {
            "namespace": namespace,
            "group": "",
            "resource": resource,
            "verb": verb,
            "name": name,
        },
    }
    if user_info.get("uid"):
        spec["uid"] = user_info["uid"]
    if user_info.get("extra"):
        # Scopes of a bound token and the like narrow what RBAC grants; keep them.
        spec["extra"] = user_info["extra"]
    review = await kube.raw(
        "POST",
        LOCAL_SAR_PATH.format(namespace=namespace),
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "LocalSubjectAccessReview",
            "metadata": {"namespace": namespace},
            "spec": spec,
        },
    )
    return bool((review.get("status") or {}).get("allowed"))


async def decide(
    review: Mapping[str, Any],
    kube: KubeClient,
    *,
    allowed_images: Sequence[str],
    bridge_image: str,
) -> dict[str, Any]:
    """The AdmissionReview answer to ``review``."""
    request = review.get("request")
    if not isinstance(request, Mapping) or not request.get("uid"):
        raise BadReviewError("not an AdmissionReview request")
    try:
        foreign = await foreign_accounts(kube, request)
        headers = await openhands_header_secrets(kube, request)
        wanted = needed(
            request,
            bridge_image=bridge_image,
            foreign_accounts=foreign,
            openhands_headers=headers,
        )
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return _answer(request, 422, "Invalid", f"spec.{where}: {first['msg']}".rstrip("."))
    if not wanted:
        return _answer(request)
    user_info = request.get("userInfo") or {}
    namespace = str(request.get("namespace") or "")
    sentences = await refusals(kube, user_info, namespace, wanted, allowed_images)
    if not sentences:
        return _answer(request)
    who = user_info.get("username", "unknown")
    message = f"{REFUSED_PREFIX} (you are {who}): " + "; ".join(sentences)
    return _answer(request, 403, "Forbidden", message)


async def foreign_accounts(kube: KubeClient, request: Mapping[str, Any]) -> set[str]:
    """The ServiceAccount an MCPServer asks to create, when it already exists and has no
    ownerReference to this MCPServer (the operator's forced apply would take it over)."""
    if str((request.get("kind") or {}).get("kind") or "") != "MCPServer":
        return set()
    new_object = request.get("object")
    if not isinstance(new_object, Mapping):
        return set()
    account = (new_object.get("spec") or {}).get("serviceAccount") or {}
    if not (isinstance(account, Mapping) and account.get("create")):
        return set()
    # Without a name the operator names the account after the MCPServer (builders'
    # service_account_name); an existing account of that name is taken over just the same.
    name = account.get("name") or (new_object.get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        return set()
    namespace = str(request.get("namespace") or "")
    existing = await kube.get("v1", "ServiceAccount", name, namespace)
    if existing is None:
        return set()
    uid = (new_object.get("metadata") or {}).get("uid")
    owners = (existing.get("metadata") or {}).get("ownerReferences") or []
    if uid and any(owner.get("uid") == uid for owner in owners):
        return set()
    return {name}


async def openhands_header_secrets(
    kube: KubeClient, request: Mapping[str, Any]
) -> set[tuple[str, str]]:
    """(MCPServer, Secret) of the headers of the MCPServers a WorkflowIntegration with
    ``openHands`` selects now (by name or label). A server selected later is not seen here:
    its own author was checked for those Secrets when it was admitted."""
    if str((request.get("kind") or {}).get("kind") or "") != "WorkflowIntegration":
        return set()
    new_object = request.get("object")
    if not isinstance(new_object, Mapping):
        return set()
    try:
        spec = WorkflowIntegrationSpec.model_validate(new_object.get("spec") or {})
    except ValidationError:
        return set()  # needed() reports it
    if spec.open_hands is None or spec.mcp_servers is None:
        return set()
    namespace = str(request.get("namespace") or "")
    bodies = await kube.list(API_VERSION, "MCPServer", namespace)
    return {
        (server.name, ref.secret)
        for server in select_mcp_servers(spec.mcp_servers, bodies)
        for ref in server.headers
    }


def _answer(
    request: Mapping[str, Any], code: int = 200, reason: str = "", message: str = ""
) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": request["uid"], "allowed": code == 200}
    if code != 200:
        response["status"] = {"code": code, "reason": reason, "message": message}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }
