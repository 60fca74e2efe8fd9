"""The web console and REST API: a separate process (`devserver-operator console`).

Every request runs as the person making it: the console authenticates their Kubernetes bearer
token (TokenReview) and impersonates them, so RBAC and TeamAccess roles decide what they see
and may do. The operator never imports this package (an import-linter contract keeps FastAPI
out of its import graph); it needs the optional extra ``console``.
"""
