"""Then the workflows, then what the spec no longer lists."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from devserver_operator import metrics
from devserver_operator.api.workflowintegration import Workflow as WorkflowSpec
from devserver_operator.builders.common import stable_hash
from devserver_operator.builders.workflowintegration import (
    MANAGED_TAG,
    CredentialRef,
    DesiredWorkflow,
    WorkflowBuildError,
    WorkflowPendingError,
    build_workflow,
    workflow_hash,
    workflow_tag,
)
from devserver_operator.integrations.n8n import (
    N8nBadRequestError,
    N8nNotFoundError,
    Workflow,
)
from devserver_operator.integrations.n8n_payloads import (
    WorkflowPayload,
    production_webhook_urls,
    workflow_differences,
)
from devserver_operator.observe.workflowintegration import Problem

from .common import (
    Outcome,
    SyncResult,
    age,
    delete_workflow_copies,
    in_sync,
    n8n_payload,
    shown,
)
from .credentials import CredentialSync


class N8nSync(CredentialSync):
    """One pass over n8n for one WorkflowIntegration."""

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
            in_sync=sum(1 for entry in self.workflows.values() if in_sync(entry)),
            events=self.events,
        )

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
        outcome = Outcome(spec_changed=entry.get("hash") != digest)
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
        outcome: Outcome,
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
                f"{key}: n8n workflow {live.id} was edited in n8n ({shown(differences)}) "
                "and was put back",
            )
            metrics.N8N_CHANGES.labels("DriftCorrected").inc()
        return live

    async def _toggle(
        self,
        live: Workflow,
        desired: DesiredWorkflow,
        entry: Mapping[str, Any],
        outcome: Outcome,
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
        outcome: Outcome,
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
                    f"({shown(outcome.drift)}); driftPolicy is Report, so it is left as it is",
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
            tagged.sort(key=age)
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
            untagged.sort(key=age)
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
