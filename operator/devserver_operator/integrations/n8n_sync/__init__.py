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

from .common import (
    SyncMemory,
    SyncResult,
    WorkflowSources,
    delete_untagged_copies,
    delete_workflow_copies,
    n8n_client,
    n8n_payload,
    timestamp,
)
from .workflows import N8nSync

__all__ = [
    "N8nSync",
    "SyncMemory",
    "SyncResult",
    "WorkflowSources",
    "delete_untagged_copies",
    "delete_workflow_copies",
    "n8n_client",
    "n8n_payload",
    "timestamp",
]
