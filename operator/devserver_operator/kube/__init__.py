"""Talking to the Kubernetes API: server-side apply, status patches, lookups."""
