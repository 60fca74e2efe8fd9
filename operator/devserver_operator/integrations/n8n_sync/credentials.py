"""Credentials first: workflows refer to their ids."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from devserver_operator import metrics
from devserver_operator.api.workflowintegration import WorkflowIntegrationSpec
from devserver_operator.builders.common import Owner
from devserver_operator.builders.workflowintegration import (
    CredentialRef,
    WiredMcpServer,
    WorkflowBuildError,
    credential_data,
    credential_hash,
    credential_name,
)
from devserver_operator.integrations.n8n import (
    Credential,
    N8nBadRequestError,
    N8nClient,
    N8nNotFoundError,
)
from devserver_operator.observe.workflowintegration import Problem

from .common import (
    EventType,
    Persist,
    SyncMemory,
    WorkflowSources,
    timestamp,
)


class CredentialSync:
    """The state of one pass over n8n, and its credentials (first: workflows refer to their
    ids)."""

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

    def _event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))
