"""docs/gitops.md shows the takeover manifests that the e2e suite applies, verbatim."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.flux_takeover import helm_release, overlay

REPO = Path(__file__).resolve().parents[2]
# The operator image of the e2e suite (hack/kind/images.sh builds it under this tag).
E2E_IMAGE = "ghcr.io/ecospherenetwork/devserver-operator:e2e"


def test_gitops_docs_show_the_tested_helm_release_and_overlay() -> None:
    docs = (REPO / "docs" / "gitops.md").read_text(encoding="utf-8")
    assert helm_release(E2E_IMAGE) in docs
    assert overlay(E2E_IMAGE) in docs
