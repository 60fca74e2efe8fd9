"""Make n8n match one WorkflowIntegration: credentials first (workflows refer to their ids),
then workflows, then what the spec no longer lists.

Invariants:

- Never two copies of one workflow: a workflow is found by the id in status, else by its own
  tag (``devserver-<hash of namespace/name/key>``), else, untagged, by its name (a create
  whose tagging was cut short). Extra tagged copies are deleted.
- Nothing is created without being recorded: the id of a new workflow or credential goes to
  status right after n8n answered, before anything else happens.
- An unchanged spec costs no n8n request, except on a drift check (every ``syncInterval``):
  one GET per workflow.

Transient n8n errors (unreachable, 5xx) and a refused API key propagate to the caller; every
other problem is recorded per workflow or credential and the pass goes on with the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from devserver_operator import metrics
from devserver_operator.api.base import parse_duration
from devserver_operator.api.workflowintegration import Workflow as WorkflowSpec
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import Owner, stable_hash
from devserver_operator.builders.workflowintegration import (
    MANAGED_TAG,
    CredentialRef,
    DesiredWorkflow,
    WiredMcpServer,
    WorkflowBuildError,
    WorkflowPendingError,
    build_workflow,
    credential_data,
    credential_hash,
    credential_name,
    workflow_hash,
    workflow_tag,
)
from devserver_operator.integrations.n8n import (
    Credential,
    N8nBadRequestError,
    N8nClient,
    N8nNotFoundError,
    RetryPolicy,
    Workflow,
)
from devserver_operator.integrations.n8n_payloads import (
    WorkflowPayload,
    assign_webhook_ids,
    production_webhook_urls,
    with_save_defaults,
    workflow_differences,
)
from devserver_operator.observe.workflowintegration import Problem

EventType = Literal["Normal", "Warning"]
Persist = Callable[[dict[str, Any]], Awaitable[None]]
MAX_DIFFERENCES_SHOWN = 5


@dataclass(frozen=True)
class WorkflowSources:
    """Parsed ConfigMap workflows by workflow key, and the problems of those that failed."""

    parsed: dict[str, dict[str, Any]]
    problems: dict[str, Problem]


@dataclass
class SyncMemory:
    """What one object's passes remember between reconciles (lost on restart, which only
    costs one extra drift check)."""

    failed: dict[str, tuple[str, Problem]] = field(default_factory=dict)
    """"workflow/<key>" or "credential/<name>" -> (hash of the input that failed, problem):
    a permanent failure is retried only when its input changes or on a drift check."""
    created: dict[str, tuple[str, Credential]] = field(default_factory=dict)
    """credential key -> (hash of its input, the credential n8n created) until status has
    recorded it: when the status write fails, the next pass takes this one instead of
    creating another copy of the secret."""


@dataclass
class SyncResult:
    workflows: list[dict[str, Any]]
    credentials: list[dict[str, Any]]
    problems: list[Problem]
    drifted: list[str]
    in_sync: int
    events: list[tuple[EventType, str, str]]


def n8n_payload(desired: DesiredWorkflow) -> WorkflowPayload:
    """What is sent to n8n: stable webhook ids, and the settings n8n would add on save."""
    nodes = assign_webhook_ids(desired.workflow["nodes"], desired.webhook_key)
    return with_save_defaults({**desired.workflow, "nodes": nodes})


def timestamp(now: datetime) -> str:
    return now.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class N8nSync:
    """One pass over n8n for one WorkflowIntegration."""

    def __init__(
        self,
        client: N8nClient,
        owner: Owner,
        spec: WorkflowIntegrationSpec,
        *,
        status: Mapping[str, Any],
        servers: Sequence[WiredMcpServer],
        secrets: Mapping[str, dict[str, str] | None],
        sources: WorkflowSources,
        memory: SyncMemory,
        tag_ids: dict[str, str],
        persist: Persist,
        full_check: bool,
        now: datetime,
    ) -> None:
        assert spec.n8n is not None
        self.client = client
        self.owner = owner
        self.spec = spec
        self.servers = servers
        self.secrets = secrets
        self.sources = sources
        self.memory = memory
        self.tag_ids = tag_ids
        self.persist_fields = persist
        self.full_check = full_check
        self.now = timestamp(now)
        self.webhook_base = spec.n8n.webhook_base_url or spec.n8n.url
        self.workflows: dict[str, dict[str, Any]] = {
            entry["name"]: dict(entry) for entry in status.get("workflows") or []
        }
        self.credentials: dict[str, dict[str, Any]] = {
            entry["name"]: dict(entry) for entry in status.get("credentials") or []
        }
        self.problems: list[Problem] = []
        self.drifted: list[str] = []
        self.events: list[tuple[EventType, str, str]] = []

    # ------------------------------------------------------------------ the pass

    async def run(self) -> SyncResult:
        refs = await self._sync_credentials()
        for workflow in self.spec.workflows or []:
            await self._sync_workflow(workflow, refs)
        await self._remove_unlisted_workflows()
        await self._remove_unlisted_credentials()
        if not self.problems:  # every workflow now uses the current credentials
            await self._delete_retired_credentials()
        await self._persist()
        return SyncResult(
            workflows=self._ordered(self.workflows, [w.name for w in self.spec.workflows or []]),
            credentials=self._ordered(
                self.credentials, [c.name for c in self.spec.credentials or []]
            ),
            problems=self.problems,
            drifted=self.drifted,
            in_sync=sum(1 for entry in self.workflows.values() if _in_sync(entry)),
            events=self.events,
        )

    async def _persist(self) -> None:
        # Empty lists are written as "absent" (None): the API server drops an empty list, and
        # comparing [] with nothing would write it again on every reconcile.
        await self.persist_fields(
            {
                "workflows": self._ordered(
                    self.workflows, [w.name for w in self.spec.workflows or []]
                )
                or None,
                "credentials": self._ordered(
                    self.credentials, [c.name for c in self.spec.credentials or []]
                )
                or None,
            }
        )

    @staticmethod
    def _ordered(
        entries: Mapping[str, dict[str, Any]], order: Sequence[str]
    ) -> list[dict[str, Any]]:
        known = [entries[key] for key in order if key in entries]
        rest = [entries[key] for key in sorted(entries) if key not in order]
        return known + rest

    def _problem(self, problem: Problem, memory_key: str | None = None, digest: str = "") -> None:
        self.problems.append(problem)
        metrics.N8N_PROBLEMS.labels(problem.reason).inc()
        if memory_key is not None:
            self.memory.failed[memory_key] = (digest, problem)

    def _remembered_failure(self, memory_key: str, digest: str) -> bool:
        """True (and the problem re-reported) when this exact input already failed for good
        and no drift check is due: no hot retry loop against n8n."""
        failed = self.memory.failed.get(memory_key)
        if failed is None or failed[0] != digest:
            self.memory.failed.pop(memory_key, None)
            return False
        if self.full_check:
            return False
        self.problems.append(failed[1])
        return True

    # ------------------------------------------------------------------ credentials

    async def _sync_credentials(self) -> dict[str, CredentialRef | None]:
        refs: dict[str, CredentialRef | None] = {}
        for credential in self.spec.credentials or []:
            entry = self.credentials.get(credential.name) or {}
            current = (
                CredentialRef(
                    entry["id"],
                    entry.get("n8nName") or credential_name(self.owner, credential.name),
                )
                if entry.get("id")
                else None
            )
            refs[credential.name] = current
            where = f"spec.credentials[{credential.name}]"
            secret = self.secrets.get(credential.secret_ref.name)
            if secret is None:
                self._problem(
                    Problem(
                        "stalled",
                        "MissingSecret",
                        f"{where}.secretRef: Secret {self.owner.namespace}/"
                        f"{credential.secret_ref.name} does not exist",
                    )
                )
                continue
            try:
                data = credential_data(credential, secret)
            except WorkflowBuildError as error:
                self._problem(Problem("stalled", "MissingSecret", str(error)))
                continue
            digest = credential_hash(self.owner, credential, data)
            if current is not None and entry.get("secretHash") == digest:
                continue
            memory_key = f"credential/{credential.name}"
            if self._remembered_failure(memory_key, digest):
                continue
            try:
                created = await self._create_credential(credential.name, entry, digest, data)
            except N8nBadRequestError as error:
                # Nothing was created: the entry goes back to what it was.
                if entry:
                    self.credentials[credential.name] = entry
                else:
                    self.credentials.pop(credential.name, None)
                self._problem(
                    Problem(
                        "stalled",
                        "CredentialRejected",
                        f"{where}: n8n refused the credential: {error.message}",
                    ),
                    memory_key,
                    digest,
                )
                continue
            retired = [*entry.get("retiredIds", []), *([current.id] if current else [])]
            self.credentials[credential.name] = {
                "name": credential.name,
                "id": created.id,
                "n8nName": created.name,
                "secretHash": digest,
                **({"retiredIds": retired} if retired else {}),
            }
            await self._persist()  # recorded before anything else can fail
            self.memory.created.pop(credential.name, None)
            refs[credential.name] = CredentialRef(created.id, created.name)
            action = "CredentialRotated" if current is not None else "CredentialCreated"
            metrics.N8N_CHANGES.labels(action).inc()
            self.events.append(
                (
                    "Normal",
                    action,
                    f"n8n credential {created.name} is {created.id}"
                    + (f" (replaces {current.id})" if current is not None else ""),
                )
            )
        return refs

    async def _create_credential(
        self, key: str, entry: Mapping[str, Any], digest: str, data: Mapping[str, str]
    ) -> Credential:
        """Create the credential, never leaving a copy nobody knows of.

        n8n cannot take an id from us, so the intent goes to status first (``creating``). A
        pass that finds the mark left over (the operator stopped between the create and
        the record) first deletes the copy the create may have left, which no workflow uses."""
        earlier = self.memory.created.get(key)
        if earlier is not None and earlier[0] == digest:
            return earlier[1]  # created by an earlier pass whose status write failed
        if entry.get("creating"):
            await self._delete_unrecorded_copies(key)
        self.credentials[key] = {**entry, "name": key, "creating": True}
        await self._persist()
        created = await self.client.create_credential(
            credential_name(self.owner, key), self._credential_type(key), data
        )
        self.memory.created[key] = (digest, created)
        return created

    def _credential_type(self, key: str) -> str:
        return next(c.type for c in self.spec.credentials or [] if c.name == key)

    async def _delete_unrecorded_copies(self, key: str) -> None:
        name = credential_name(self.owner, key)
        recorded = {
            credential_id
            for entry in self.credentials.values()
            for credential_id in [entry.get("id"), *entry.get("retiredIds", [])]
            if credential_id
        }
        for credential_id, found_name in await self.client.unused_credentials():
            if found_name != name or credential_id in recorded:
                continue
            with contextlib.suppress(N8nNotFoundError):
                await self.client.delete_credential(credential_id)
            self.events.append(
                (
                    "Normal",
                    "CredentialLeftoverDeleted",
                    f"deleted n8n credential {credential_id}: an interrupted create left it",
                )
            )

    async def _delete_retired_credentials(self) -> None:
        """Old credentials go once every workflow was re-linked to the new ones."""
        for name, entry in self.credentials.items():
            retired = entry.get("retiredIds") or []
            for credential_id in retired:
                with contextlib.suppress(N8nNotFoundError):
                    await self.client.delete_credential(credential_id)
                self.events.append(
                    ("Normal", "CredentialRetired", f"deleted old n8n credential {credential_id}")
                )
            if retired:
                self.credentials[name] = {k: v for k, v in entry.items() if k != "retiredIds"}

    async def _remove_unlisted_credentials(self) -> None:
        listed = {c.name for c in self.spec.credentials or []}
        for name in [n for n in self.credentials if n not in listed]:
            entry = self.credentials.pop(name)
            if self.spec.deletion_policy == "Delete":
                for credential_id in [entry.get("id"), *entry.get("retiredIds", [])]:
                    if credential_id:
                        with contextlib.suppress(N8nNotFoundError):
                            await self.client.delete_credential(credential_id)
            await self._persist()

    # ------------------------------------------------------------------ workflows

    async def _sync_workflow(
        self, spec: WorkflowSpec, refs: Mapping[str, CredentialRef | None]
    ) -> None:
        key = spec.name
        entry = self.workflows.get(key) or {}
        desired: DesiredWorkflow | None = None
        problem = self.sources.problems.get(key)
        if problem is None:
            try:
                desired = build_workflow(
                    self.owner,
                    spec,
                    servers=self.servers,
                    credentials=refs,
                    source=self.sources.parsed.get(key),
                )
            except WorkflowPendingError as error:
                waits_for = "Credential" if "credential" in str(error) else "MCPServer"
                problem = Problem("pending", f"WaitingFor{waits_for}", str(error))
            except WorkflowBuildError as error:
                problem = Problem("stalled", "InvalidWorkflow", str(error))
        if desired is None:
            assert problem is not None
            self._problem(problem)
            # What n8n has stays as it is (and recorded): only the message is new.
            self.workflows[key] = {**entry, "name": key, "message": problem.message}
            return
        payload = n8n_payload(desired)
        digest = stable_hash(
            {"workflow": workflow_hash(payload, desired.active), "webhooks": self.webhook_base},
            length=20,
        )
        unchanged = entry.get("id") and entry.get("hash") == digest and not entry.get("message")
        if unchanged and not self.full_check:
            if entry.get("drifted"):
                self.drifted.append(key)
            return
        if self._remembered_failure(f"workflow/{key}", digest):
            return
        await self._bring_in_line(desired, payload, digest, entry)

    async def _bring_in_line(
        self,
        desired: DesiredWorkflow,
        payload: WorkflowPayload,
        digest: str,
        entry: Mapping[str, Any],
    ) -> None:
        outcome = _Outcome(spec_changed=entry.get("hash") != digest)
        live = await self._locate(entry, desired)
        if live is None:
            live = await self._create(desired, payload, digest, entry)
            if live is None:
                return
            outcome.changed = True
        await self._ensure_tags(live, desired.tag)
        if not outcome.changed:
            updated = await self._update_if_different(
                live, desired, payload, digest, entry, outcome
            )
            if updated is None:
                return
            live = updated
        if outcome.activation_error is None and live.active != desired.active:
            live = await self._toggle(live, desired, entry, outcome)
        self._record(live, desired, digest, entry, outcome)

    async def _create(
        self,
        desired: DesiredWorkflow,
        payload: WorkflowPayload,
        digest: str,
        entry: Mapping[str, Any],
    ) -> Workflow | None:
        key = desired.key
        # The intent first: n8n cannot take an id or a tag with the create, so should the
        # operator stop before the id is recorded, the name is how that copy is found again
        # (the next pass adopts it; the finalizer deletes it).
        name = desired.workflow["name"]
        self.workflows[key] = {**entry, "name": key, "creating": True, "n8nName": name}
        await self._persist()
        try:
            live = await self.client.create_workflow(payload)
        except N8nBadRequestError as error:
            self._record_failure(
                key,
                entry,
                Problem(
                    "stalled",
                    "WorkflowRejected",
                    f"spec.workflows[{key}]: n8n refused the workflow: {error.message}",
                ),
                digest,
            )
            return None
        self.workflows[key] = {"name": key, "id": live.id, "tag": desired.tag}
        await self._persist()  # recorded before tagging: a restart finds it by id
        self._event("Normal", "WorkflowCreated", f"{key}: created n8n workflow {live.id}")
        return live

    async def _update_if_different(
        self,
        live: Workflow,
        desired: DesiredWorkflow,
        payload: WorkflowPayload,
        digest: str,
        entry: Mapping[str, Any],
        outcome: _Outcome,
    ) -> Workflow | None:
        """n8n's copy after putting the desired one back where it differs (or, with
        driftPolicy Report and an unchanged spec, after only noting the differences)."""
        key = desired.key
        differences = workflow_differences(payload, live.model_dump(by_alias=True))
        if not differences:
            return live
        adopted = not entry.get("id")
        if not (outcome.spec_changed or adopted or self.spec.drift_policy == "Correct"):
            outcome.drift = differences
            return live
        try:
            live = await self.client.update_workflow(live.id, payload)
        except N8nBadRequestError as error:
            # n8n quirk: updating an ACTIVE workflow that cannot be re-activated answers 400
            # with the activation error, yet stores the new version, inactive.
            stored = await self.client.get_workflow(live.id)
            if workflow_differences(payload, stored.model_dump(by_alias=True)):
                self._record_failure(
                    key,
                    {**entry, "id": live.id, "tag": desired.tag},
                    Problem(
                        "stalled",
                        "WorkflowRejected",
                        f"spec.workflows[{key}]: n8n refused the workflow: {error.message}",
                    ),
                    digest,
                )
                return None
            live, outcome.activation_error = stored, error.message
        outcome.changed = True
        if outcome.spec_changed or adopted:
            self._event("Normal", "WorkflowUpdated", f"{key}: updated n8n workflow {live.id}")
        else:
            self._event(
                "Normal",
                "DriftCorrected",
                f"{key}: n8n workflow {live.id} was edited in n8n ({_shown(differences)}) "
                "and was put back",
            )
            metrics.N8N_CHANGES.labels("DriftCorrected").inc()
        return live

    async def _toggle(
        self,
        live: Workflow,
        desired: DesiredWorkflow,
        entry: Mapping[str, Any],
        outcome: _Outcome,
    ) -> Workflow:
        toggled_in_n8n = entry.get("active") == desired.active and not outcome.spec_changed
        if toggled_in_n8n and self.spec.drift_policy == "Report":
            outcome.drift.append("active")
            return live
        try:
            live = await (
                self.client.activate_workflow(live.id)
                if desired.active
                else self.client.deactivate_workflow(live.id)
            )
        except N8nBadRequestError as error:
            outcome.activation_error = error.message
            return live
        outcome.changed = True
        if toggled_in_n8n:
            self._event(
                "Normal",
                "DriftCorrected",
                f"{desired.key}: n8n workflow {live.id} was "
                f"{'deactivated' if desired.active else 'activated'} in n8n and was put back",
            )
            metrics.N8N_CHANGES.labels("DriftCorrected").inc()
        return live

    def _record(
        self,
        live: Workflow,
        desired: DesiredWorkflow,
        digest: str,
        entry: Mapping[str, Any],
        outcome: _Outcome,
    ) -> None:
        key = desired.key
        new_entry: dict[str, Any] = {
            "name": key,
            "id": live.id,
            "active": live.active,
            "tag": desired.tag,
            "hash": digest,
            "lastSyncTime": self.now if outcome.changed else entry.get("lastSyncTime") or self.now,
        }
        urls = production_webhook_urls(self.webhook_base, live.nodes, workflow_id=live.id)
        if live.active and urls:
            new_entry["webhookUrls"] = sorted(urls.values())
        if self.spec.drift_policy == "Report":
            new_entry["drifted"] = bool(outcome.drift)
        if outcome.drift:
            self.drifted.append(key)
            if not entry.get("drifted"):
                self._event(
                    "Warning",
                    "DriftDetected",
                    f"{key}: n8n workflow {live.id} differs from the spec "
                    f"({_shown(outcome.drift)}); driftPolicy is Report, so it is left as it is",
                )
                metrics.N8N_CHANGES.labels("DriftReported").inc()
        memory_key = f"workflow/{key}"
        if outcome.activation_error is not None:
            problem = Problem(
                "stalled",
                "ActivationFailed",
                f"spec.workflows[{key}]: n8n could not activate the workflow: "
                f"{outcome.activation_error}",
            )
            new_entry["message"] = problem.message
            self._problem(problem, memory_key, digest)
        else:
            self.memory.failed.pop(memory_key, None)
        self.workflows[key] = new_entry
        if outcome.changed:
            metrics.N8N_CHANGES.labels("WorkflowSynced").inc()

    def _record_failure(
        self, key: str, entry: Mapping[str, Any], problem: Problem, digest: str
    ) -> None:
        self._problem(problem, f"workflow/{key}", digest)
        kept = {k: v for k, v in entry.items() if k not in ("message",)}
        self.workflows[key] = {**kept, "name": key, "message": problem.message}

    async def _locate(self, entry: Mapping[str, Any], desired: DesiredWorkflow) -> Workflow | None:
        """n8n's copy of the workflow: by id, else by its tag, else untagged by its name."""
        if entry.get("id"):
            with contextlib.suppress(N8nNotFoundError):
                found = await self.client.get_workflow(entry["id"])
                if not found.is_archived:
                    return found
            self._event(
                "Warning",
                "WorkflowMissing",
                f"{desired.key}: n8n workflow {entry['id']} is gone; looking for it by tag",
            )
        tagged = [
            w
            async for w in self.client.iter_workflows(tags=[desired.tag], exclude_pinned_data=True)
            if not w.is_archived
        ]
        if tagged:
            tagged.sort(key=_age)
            for extra in tagged[1:]:
                with contextlib.suppress(N8nNotFoundError):
                    await self.client.delete_workflow(extra.id)
                self._event(
                    "Warning",
                    "DuplicateRemoved",
                    f"{desired.key}: deleted duplicate n8n workflow {extra.id} "
                    f"(kept {tagged[0].id})",
                )
            return tagged[0]
        name = desired.workflow["name"]
        untagged = [
            w
            async for w in self.client.iter_workflows(name=name, exclude_pinned_data=True)
            if w.name == name and not w.tags and not w.is_archived
        ]
        if untagged:
            untagged.sort(key=_age)
            self._event(
                "Normal",
                "WorkflowAdopted",
                f"{desired.key}: adopted untagged n8n workflow {untagged[0].id} named {name!r}",
            )
            return untagged[0]
        return None

    async def _ensure_tags(self, live: Workflow, tag: str) -> None:
        have = {t.name: t.id for t in live.tags}
        if MANAGED_TAG in have and tag in have:
            return
        for attempt in range(2):
            ids = list(have.values())
            try:
                for name in (MANAGED_TAG, tag):
                    if name not in have:
                        ids.append(await self._tag_id(name))
                await self.client.set_workflow_tags(live.id, ids)
                return
            except (N8nNotFoundError, N8nBadRequestError):
                if attempt:
                    raise
                self.tag_ids.clear()  # a cached tag was deleted in n8n: look them up again

    async def _tag_id(self, name: str) -> str:
        if name not in self.tag_ids:
            self.tag_ids[name] = (await self.client.ensure_tag(name)).id
        return self.tag_ids[name]

    async def _remove_unlisted_workflows(self) -> None:
        listed = {w.name for w in self.spec.workflows or []}
        for key in [k for k in self.workflows if k not in listed]:
            entry = self.workflows.pop(key)
            if self.spec.deletion_policy == "Delete":
                await delete_workflow_copies(
                    self.client, entry.get("id"), entry.get("tag") or workflow_tag(self.owner, key)
                )
                self._event("Normal", "WorkflowDeleted", f"{key}: deleted from n8n")
            else:
                self._event("Normal", "WorkflowOrphaned", f"{key}: left in n8n (Orphan)")
            await self._persist()

    def _event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def n8n_client(spec: WorkflowIntegrationSpec, api_key: str) -> N8nClient:
    assert spec.n8n is not None
    timeout = parse_duration(spec.n8n.timeout)
    # Few, quick retries inside one reconcile; longer outages are retried by kopf with backoff.
    retry = RetryPolicy(max_attempts=3, initial_delay=0.5, max_delay=2.0, total_timeout=timeout)
    return N8nClient(spec.n8n.url, api_key, retry=retry, timeout=timeout)


async def delete_untagged_copies(client: N8nClient, name: str) -> None:
    """Delete the untagged workflows named ``name``: what a create cut short leaves."""
    async for found in client.iter_workflows(name=name, exclude_pinned_data=True):
        if found.name == name and not found.tags:
            with contextlib.suppress(N8nNotFoundError):
                await client.delete_workflow(found.id)


async def delete_workflow_copies(client: N8nClient, workflow_id: str | None, tag: str) -> None:
    """Delete a workflow by id and every copy that carries its tag, then the tag."""
    if workflow_id:
        with contextlib.suppress(N8nNotFoundError):
            await client.delete_workflow(workflow_id)
    async for leftover in client.iter_workflows(tags=[tag], exclude_pinned_data=True):
        with contextlib.suppress(N8nNotFoundError):
            await client.delete_workflow(leftover.id)
    async for found in client.iter_tags(page_size=250):
        if found.name == tag:
            with contextlib.suppress(N8nNotFoundError):
                await client.delete_tag(found.id)


@dataclass
class _Outcome:
    spec_changed: bool
    changed: bool = False
    activation_error: str | None = None
    drift: list[str] = field(default_factory=list)


def _in_sync(entry: Mapping[str, Any]) -> bool:
    return bool(
        entry.get("id")
        and entry.get("hash")
        and not entry.get("message")
        and not entry.get("drifted")
    )


def _age(workflow: Workflow) -> tuple[str, str]:
    created = workflow.created_at.isoformat() if workflow.created_at else ""
    return (created, workflow.id)


def _shown(differences: Sequence[str]) -> str:
    shown = ", ".join(differences[:MAX_DIFFERENCES_SHOWN])
    more = len(differences) - MAX_DIFFERENCES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
