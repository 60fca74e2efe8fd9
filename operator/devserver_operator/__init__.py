"""devserver-operator: Kubernetes operator for the Dev-Server-Workflow stack."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("devserver-workflow-operator")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
