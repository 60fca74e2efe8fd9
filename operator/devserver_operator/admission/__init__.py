"""Admission of MCPServers, WorkflowIntegrations and AlertRules against the requester's own
rights, so that the operator is no confused deputy (docs/security.md, "Through the operator").

``references`` is pure (spec -> what the requester must be allowed); ``decision`` asks the
API server with SubjectAccessReviews; ``server`` answers the API server's AdmissionReviews.
"""

WEBHOOK_PATH = "/validate"
"""Where the API server sends AdmissionReviews."""
