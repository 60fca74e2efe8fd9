"""Expand ``{{ $labels.name }}`` and ``{{ $value }}`` in annotations, as Prometheus does.

Only these two forms are supported (they are what alert annotations use in practice); any
other ``{{ ... }}`` is left as written, so a template meant for Prometheus is never mangled.
A label that the alert does not have expands to ``<no value>``, like Go templates do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_TEMPLATE = re.compile(r"\{\{-?\s*\$(labels\.([a-zA-Z_][a-zA-Z0-9_]*)|value)\s*-?\}\}")
NO_VALUE = "<no value>"


def format_value(value: float) -> str:
    """A sample value the way Prometheus prints it: integers without a decimal point."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def expand(text: str, labels: Mapping[str, str], value: float) -> str:
    def substitute(match: re.Match[str]) -> str:
        label = match.group(2)
        if label is None:
            return format_value(value)
        return labels.get(label, NO_VALUE)

    return _TEMPLATE.sub(substitute, text)


def expand_all(
    annotations: Mapping[str, str], labels: Mapping[str, str], value: float
) -> dict[str, str]:
    return {key: expand(text, labels, value) for key, text in annotations.items()}
