"""The `devserver-operator` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from devserver_operator import __version__
from devserver_operator.api.crd import GENERATED_HEADER, crd_files
from devserver_operator.run_flags import add_settings_arguments, settings_flags
from devserver_operator.settings import OperatorSettings


def _dump_all(documents: Sequence[object]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False, width=100)


def command_crds(args: argparse.Namespace) -> int:
    files = crd_files()
    if args.check is not None:
        directory = Path(args.check)
        stale = [
            name
            for name, text in files.items()
            if not (directory / name).is_file() or (directory / name).read_text() != text
        ]
        extra = (
            sorted(p.name for p in directory.glob("*.yaml") if p.name not in files)
            if directory.is_dir()
            else []
        )
        for name in stale:
            regenerate = f"devserver-operator crds --output-dir {directory}"
            print(f"{directory / name}: out of date; run: {regenerate}", file=sys.stderr)
        for name in extra:
            print(f"{directory / name}: not generated from the models; remove it", file=sys.stderr)
        return 1 if stale or extra else 0
    if args.output_dir is not None:
        directory = Path(args.output_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text)
        return 0
    sys.stdout.write(
        "".join(files.values()).replace(
            GENERATED_HEADER,
            "---\n",
        )
    )
    return 0


def command_manifests(args: argparse.Namespace) -> int:
    from devserver_operator.manifests import generated_files, stale_files, write_files

    if args.check is not None:
        stale = stale_files(Path(args.check))
        for path in stale:
            print(
                f"{path}: not what the code generates; run: "
                f"devserver-operator manifests --output-dir {args.check}",
                file=sys.stderr,
            )
        return 1 if stale else 0
    if args.output_dir is not None:
        for path in write_files(Path(args.output_dir)):
            print(f"wrote {path}", file=sys.stderr)
        return 0
    for path, text in generated_files(Path(args.repo)).items():
        sys.stdout.write(f"# ==> {path}\n{text}")
    return 0


def command_render(args: argparse.Namespace) -> int:
    from devserver_operator.render import RenderError, load_documents, render_document

    settings = OperatorSettings()
    documents = []
    failed = False
    loaded = list(load_documents(Path(p) for p in args.filename))
    neighbours = [document for _, document in loaded]
    for source, document in loaded:
        try:
            rendered = render_document(source, document, settings, neighbours=neighbours)
        except RenderError as error:
            print(f"error: {error}", file=sys.stderr)
            failed = True
            continue
        if rendered is None:
            continue
        if rendered.note:
            print(f"# {rendered.kind}/{rendered.name}: {rendered.note}", file=sys.stderr)
        documents.extend(rendered.children)
    if documents:
        sys.stdout.write(_dump_all(documents))
    return 1 if failed else 0


def command_reference(args: argparse.Namespace) -> int:
    from devserver_operator.api.reference import reference_markdown

    text = reference_markdown()
    if args.check is not None:
        target = Path(args.check)
        if not target.is_file() or target.read_text() != text:
            regenerate = f"devserver-operator reference --output {target}"
            print(f"{target}: out of date; run: {regenerate}", file=sys.stderr)
            return 1
        return 0
    if args.output is not None:
        Path(args.output).write_text(text)
        return 0
    sys.stdout.write(text)
    return 0


def command_dev(args: argparse.Namespace) -> int:
    from devserver_operator.devmode import run_dev

    return run_dev(Path(args.examples), once=args.once, control_plane_only=args.control_plane)


def command_version(_: argparse.Namespace) -> int:
    print(__version__)
    return 0


def settings_from_args(args: argparse.Namespace) -> OperatorSettings:
    """The settings: the options given on the command line, then the environment."""
    overrides = {
        name: getattr(args, name) for name in OperatorSettings.model_fields if name in args
    }
    return OperatorSettings(**overrides)


def command_run(args: argparse.Namespace) -> int:
    from devserver_operator.lean_imports import import_kopf

    import_kopf()
    from devserver_operator.runner import run_operator

    try:
        settings = settings_from_args(args)
    except ValidationError as error:
        for problem in error.errors():
            flag = settings_flags(str(problem["loc"][0]))[0] if problem["loc"] else "?"
            print(f"devserver-operator run: {flag}: {problem['msg']}", file=sys.stderr)
        return 2
    return run_operator(settings)


def command_console(args: argparse.Namespace) -> int:
    try:
        from devserver_operator.console.server import serve
        from devserver_operator.console.settings import ConsoleSettings
    except ImportError as error:
        print(
            f"devserver-operator console: {error.name} is missing; install "
            "devserver-workflow-operator[console]",
            file=sys.stderr,
        )
        return 2
    given = {k: v for k, v in vars(args).items() if k in ConsoleSettings.model_fields and v}
    try:
        settings = ConsoleSettings(**given)
    except ValidationError as error:
        print(f"devserver-operator console: {error}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


def command_stdio_proxy(args: argparse.Namespace) -> int:
    from devserver_operator.stdio_proxy.main import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devserver-operator",
        description="Kubernetes operator for MCP servers, n8n workflows, OpenHands, alerts "
        "and team access.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="run the operator against the current kubeconfig or in-cluster"
    )
    add_settings_arguments(run)
    run.set_defaults(handler=command_run)

    crds = commands.add_parser(
        "crds", help="print the CustomResourceDefinitions generated from the models"
    )
    target = crds.add_mutually_exclusive_group()
    target.add_argument(
        "--check", metavar="DIR", help="exit 1 when DIR differs from the generated CRDs"
    )
    target.add_argument("--output-dir", metavar="DIR", help="write one file per CRD into DIR")
    crds.set_defaults(handler=command_crds)

    manifests = commands.add_parser(
        "manifests",
        help="print the install files generated from the code (chart CRDs and RBAC, kustomize "
        "base)",
    )
    where = manifests.add_mutually_exclusive_group()
    where.add_argument(
        "--check", metavar="REPO", help="exit 1 when the files under REPO are not current"
    )
    where.add_argument("--output-dir", metavar="REPO", help="write the files under REPO")
    manifests.add_argument(
        "--repo", default=".", help="repository root to read the dashboard from when printing"
    )
    manifests.set_defaults(handler=command_manifests)

    render = commands.add_parser(
        "render", help="print, offline, the children the operator would apply"
    )
    render.add_argument(
        "-f", "--filename", action="append", required=True, help="file or directory (repeatable)"
    )
    render.set_defaults(handler=command_render)

    reference = commands.add_parser(
        "reference", help="print the CRD reference (Markdown) generated from the models"
    )
    where = reference.add_mutually_exclusive_group()
    where.add_argument("--check", metavar="FILE", help="exit 1 when FILE is out of date")
    where.add_argument("--output", metavar="FILE", help="write the reference to FILE")
    reference.set_defaults(handler=command_reference)

    dev = commands.add_parser(
        "dev",
        help="run the stack on kind (or, without Docker, a local control plane) with "
        "examples/, and print their status",
    )
    dev.add_argument("--examples", default="examples", help="file or directory to apply")
    dev.add_argument("--once", action="store_true", help="print the status once and exit")
    dev.add_argument(
        "--control-plane",
        action="store_true",
        help="use the local control plane (no pods) even where kind could run",
    )
    dev.set_defaults(handler=command_dev)

    console = commands.add_parser(
        "console",
        help="serve the web console and REST API (needs the extra "
        "devserver-workflow-operator[console]); settings also from DEVSERVER_CONSOLE_<NAME>",
    )
    console.add_argument("--kubeconfig", help="the console's own identity (default: in-cluster)")
    console.add_argument("--context", help="kubeconfig context")
    console.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    console.add_argument("--port", type=int, help="port to listen on (default 8080)")
    console.add_argument(
        "--local-admin",
        action="store_true",
        help="dev mode: no login, everyone on loopback is the console's own (admin) identity",
    )
    console.add_argument("--ui-dir", help="the built web UI (default: the package's own)")
    console.add_argument("--examples-dir", help="MCPServer templates (default: examples/)")
    console.set_defaults(handler=command_console)

    proxy = commands.add_parser(
        "stdio-proxy",
        help="serve a stdio MCP server (an attached container, or a local command) as "
        "streamable HTTP; the pod the operator runs next to stdio server images",
    )
    from devserver_operator.stdio_proxy.main import add_arguments

    add_arguments(proxy)
    proxy.set_defaults(handler=command_stdio_proxy)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=command_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
