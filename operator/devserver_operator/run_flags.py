"""The flags of `devserver-operator run`, one per operator setting, generated from the model.

Apart from the command line so that `manifests` (the README's table of flags) can use them
without importing the command line back.
"""

from __future__ import annotations

import argparse
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from devserver_operator.settings import OperatorSettings

# Flags whose names differ from the field's: the repeatable list options are singular.
_FLAG_NAMES: dict[str, tuple[str, ...]] = {
    "namespaces": ("--namespace", "-n"),
    "allowed_images": ("--allowed-image",),
}


def settings_flags(field_name: str) -> tuple[str, ...]:
    """The command-line flags of one field of :class:`OperatorSettings`."""
    return _FLAG_NAMES.get(field_name, ("--" + field_name.replace("_", "-"),))


def _settings_help(field_name: str, info: FieldInfo) -> str:
    doc = " ".join((info.description or "").split())
    env = f"{OperatorSettings.model_config.get('env_prefix', '')}{field_name.upper()}"
    default = info.get_default(call_default_factory=True)
    shown = "" if default in (None, [], "") else f" Default: {default}."
    return f"{doc}{shown} Env: {env}.".replace("%", "%%").strip()


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per field of :class:`OperatorSettings`, generated from the model.

    The type and choices come from the annotation (a ``Literal`` gives choices, a list a
    repeatable option), the help text from the field's docstring; pydantic validates the
    values as it validates the environment. Options not given are left out, so the
    environment (``DEVSERVER_OPERATOR_*``) and the defaults apply to them.
    """
    group = parser.add_argument_group(
        "settings", "every operator setting (also DEVSERVER_OPERATOR_<NAME> in the environment)"
    )
    for name, info in OperatorSettings.model_fields.items():
        annotation: Any = info.annotation
        if get_origin(annotation) in (Union, types.UnionType):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        kwargs: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS,
            "help": _settings_help(name, info),
        }
        if get_origin(annotation) is list:
            kwargs["action"] = "append"
            kwargs["metavar"] = "VALUE"
        elif get_origin(annotation) is Literal:
            kwargs["choices"] = list(get_args(annotation))
        elif annotation in (int, float):
            kwargs["type"] = annotation
            seconds = "seconds" in (info.description or "").lower()
            kwargs["metavar"] = "SECONDS" if seconds else "N"
        else:
            kwargs["metavar"] = "VALUE"
        group.add_argument(*settings_flags(name), **kwargs)
