"""A local Kubernetes control plane (etcd + kube-apiserver [+ kube-controller-manager])
built from pinned Go modules and run on loopback, for integration tests and
``devserver-operator dev``.

    from devserver_operator.localcluster import LocalControlPlane

    with LocalControlPlane() as cluster:
        print(cluster.server_url, cluster.kubeconfig_path)
"""

from devserver_operator.localcluster.binaries import (
    BinariesNotFoundError,
    PinnedVersions,
    build_binaries,
    ensure_binaries,
    locate_binary,
    read_pinned_versions,
)
from devserver_operator.localcluster.cluster import (
    ControlPlaneBinaries,
    ControlPlaneStartError,
    LocalControlPlane,
)
from devserver_operator.localcluster.kubeconfig import (
    KubeconfigCredentials,
    read_kubeconfig_credentials,
    write_kubeconfig,
)

__all__ = [
    "BinariesNotFoundError",
    "ControlPlaneBinaries",
    "ControlPlaneStartError",
    "KubeconfigCredentials",
    "LocalControlPlane",
    "PinnedVersions",
    "build_binaries",
    "ensure_binaries",
    "locate_binary",
    "read_kubeconfig_credentials",
    "read_pinned_versions",
    "write_kubeconfig",
]
