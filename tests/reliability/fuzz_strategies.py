"""Hypothesis strategies for the specs of all four kinds, valid and invalid.

Specs are grown from the generated CRD schemas themselves, so the strategies follow every
change of the models: a random set of properties (required ones always), values within the
declared enums, patterns, lengths and ranges; then, for some examples, one mutation that
breaks a rule (a wrong type, a value out of range or off its pattern, a missing required
property, an unknown property). Cross-field (CEL) rules are left to chance, which breaks them
often enough.

Property names steer values where randomness would only produce noise: URLs point at
loopback (a closed port, or a real MCP server), images are pinned, and Secret references
point at a Secret holding a planted canary value, which must never show up anywhere.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.support.schemas import crd_schema

KINDS = ("MCPServer", "WorkflowIntegration", "AlertRule", "TeamAccess")
CANARY_SECRET = "canary"
CANARY_KEYS = ("value", "url", "apiKey", "token", "password")
CLOSED_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens on loopback
MAX_DEPTH = 4
MAX_OPTIONAL = 3  # optional properties per object: deep k8s types would explode otherwise
_RFC3339 = ("2030-01-01T00:00:00Z", "2020-01-01T00:00:00Z", "2027-06-30T12:30:00+02:00")


@dataclass(frozen=True)
class Loopback:
    """Where generated URLs may point."""

    mcp_url: str  # a real MCP server (streamable HTTP)


@dataclass(frozen=True)
class Spec:
    kind: str
    spec: dict[str, Any]
    mutation: str | None  # what was broken on purpose, or None


@functools.cache
def spec_schema(kind: str) -> dict[str, Any]:
    # Cached: building the CRD takes about 50 ms, longer than drawing a spec from it.
    schema: dict[str, Any] = crd_schema(kind)["properties"]["spec"]
    return schema


@functools.cache
def _grown(kind: str, loopback: Loopback) -> st.SearchStrategy[dict[str, Any]]:
    # Built once per kind: strategies are immutable, and hypothesis caches what it learns
    # about one (emptiness, validation) on the object, so a fresh one per draw costs twice.
    return _value(spec_schema(kind), loopback, depth=0, key="spec")


def specs(loopback: Loopback, kind: str | None = None) -> st.SearchStrategy[Spec]:
    """Specs of ``kind``, or of any kind."""
    if kind is not None:
        return _spec_of(kind, loopback)
    return st.sampled_from(KINDS).flatmap(lambda drawn: _spec_of(drawn, loopback))


def _seeds(kind: str, loopback: Loopback) -> list[dict[str, Any]]:
    """Minimal valid specs the generated properties are laid over: without them, cross-field
    rules (exactly one of image or url, ...) would reject nearly everything."""
    canary_ref = {"name": CANARY_SECRET, "key": "apiKey"}
    return {
        "MCPServer": [
            {"image": "ghcr.io/example/server:1.0.0", "verification": {"enabled": False}},
            {"image": "ghcr.io/example/server:1.0.0"},
            {"url": CLOSED_URL + "mcp"},
            {"url": loopback.mcp_url},
            {"transport": "stdio", "command": ["npx", "-y", "some-server@1.0.0"]},
        ],
        "WorkflowIntegration": [
            {"openHands": {"configMapName": "openhands-mcp"}},
            {"n8n": {"url": CLOSED_URL, "apiKeySecretRef": canary_ref}},
        ],
        "AlertRule": [{"rules": [{"name": "Down", "builtin": {"condition": "MCPServerNotReady"}}]}],
        "TeamAccess": [{"role": "viewer", "members": [{"kind": "User", "name": "someone"}]}],
    }[kind]


@st.composite
def _spec_of(draw: Callable[..., Any], kind: str, loopback: Loopback) -> Spec:
    schema = spec_schema(kind)
    seed = draw(st.sampled_from(_seeds(kind, loopback)), label="seed")
    grown = draw(_grown(kind, loopback), label=f"{kind} spec")
    spec = {**seed, **grown}
    if draw(st.sampled_from(range(10))) < 6:  # most keep every per-field rule
        return Spec(kind, spec, None)
    mutated = copy.deepcopy(spec)
    return Spec(kind, mutated, draw(_mutation(schema, mutated), label="mutation"))


# ------------------------------------------------------------------------------ values


def _hint(key: str, loopback: Loopback) -> st.SearchStrategy[Any] | None:
    """Domain values by property name; None: generate from the schema."""
    lowered = key.lower()
    if lowered in ("url", "prometheusurl", "webhookbaseurl"):
        return st.sampled_from([CLOSED_URL, loopback.mcp_url, CLOSED_URL + "mcp"])
    if lowered == "image":
        return st.sampled_from(
            ["ghcr.io/example/server:1.0.0", "docker.io/library/busybox:1.36", "unpinned/image"]
        )
    if lowered.endswith("secretref") or lowered in ("secretkeyref",):
        return st.fixed_dictionaries(
            {"name": st.just(CANARY_SECRET), "key": st.sampled_from(CANARY_KEYS)}
        )
    if lowered == "secretkey":
        return st.sampled_from(CANARY_KEYS)
    if lowered == "smtphost":
        return st.just("127.0.0.1")
    if lowered == "smtpport":
        return st.just(9)
    return None


def _value(
    schema: Mapping[str, Any], loopback: Loopback, *, depth: int, key: str
) -> st.SearchStrategy[Any]:
    hint = _hint(key, loopback) if depth > 0 else None
    if hint is not None:
        return hint
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.integers(0, 65535), st.sampled_from(["50%", "http", "1"]))
    if "anyOf" in schema:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return st.one_of(
            [_value(rest | branch, loopback, depth=depth, key=key) for branch in schema["anyOf"]]
        )
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, loopback, depth=depth)
    if kind == "array":
        return _array(schema, loopback, depth=depth, key=key)
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        low = int(schema.get("minimum", -3))
        high = int(schema.get("maximum", max(low, 0) + 100))
        return st.integers(low, high)
    if kind == "number":
        return st.floats(0, 100, allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    return st.none()


def _string(schema: Mapping[str, Any]) -> st.SearchStrategy[str]:
    low = int(schema.get("minLength", 0))
    high = min(int(schema.get("maxLength", 40)), 40)
    if schema.get("format") == "date-time":
        return st.sampled_from(_RFC3339)
    pattern = schema.get("pattern")
    if pattern:
        # Compiled once: hypothesis clears re's own cache after every regex draw.
        compiled = re.compile(pattern)
        return (
            st.from_regex(compiled, fullmatch=True)
            .map(lambda s: s[: int(schema.get("maxLength", 253))])
            .filter(lambda s: len(s) >= low and compiled.fullmatch(s) is not None)
        )
    alphabet = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-._ /:{}$")
    return st.text(alphabet, min_size=max(low, 0), max_size=max(high, low))


def _object(
    schema: Mapping[str, Any], loopback: Loopback, *, depth: int
) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties") or {}
    if not properties:
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return _free_json()
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            return st.dictionaries(
                st.from_regex(r"[a-z][a-z0-9./-]{0,20}", fullmatch=True),
                _value(extra, loopback, depth=depth + 1, key=""),
                max_size=3,
            )
        return st.just({})
    required = list(schema.get("required") or [])
    optional = [k for k in properties if k not in required]
    budget = MAX_OPTIONAL if depth < MAX_DEPTH else 0

    values: dict[str, st.SearchStrategy[Any]] = {}

    def value(key: str) -> st.SearchStrategy[Any]:
        if key not in values:
            values[key] = _value(properties[key], loopback, depth=depth + 1, key=key)
        return values[key]

    def build(chosen: list[str]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({k: value(k) for k in [*required, *chosen]})

    if not optional or budget == 0:
        return build([])
    return st.lists(st.sampled_from(optional), max_size=budget, unique=True).flatmap(build)


def _array(
    schema: Mapping[str, Any], loopback: Loopback, *, depth: int, key: str
) -> st.SearchStrategy[list[Any]]:
    items = schema.get("items") or {}
    low = int(schema.get("minItems", 0))
    high = max(low, min(int(schema.get("maxItems", 3)), 3))
    element = _value(items, loopback, depth=depth + 1, key=key)
    keys = schema.get("x-kubernetes-list-map-keys")
    if keys:
        return st.lists(
            element,
            min_size=low,
            max_size=high,
            unique_by=lambda x: tuple(
                repr(x.get(k)) if isinstance(x, dict) else repr(x) for k in keys
            ),
        )
    if schema.get("x-kubernetes-list-type") == "set":
        return st.lists(element, min_size=low, max_size=high, unique_by=repr)
    return st.lists(element, min_size=low, max_size=high)


def _free_json() -> st.SearchStrategy[dict[str, Any]]:
    scalar = st.one_of(st.text(max_size=10), st.integers(-5, 5), st.booleans())
    return st.dictionaries(st.text(min_size=1, max_size=8), scalar, max_size=3).map(
        lambda d: {**d, "nodes": []}  # workflow-shaped often enough to pass the model
    )


# ------------------------------------------------------------------------------ mutations


def _mutation(schema: Mapping[str, Any], spec: dict[str, Any]) -> st.SearchStrategy[str]:
    """Break one per-field rule of ``spec`` in place; the strategy yields what was done."""
    places = list(_places(schema, spec, ()))

    @st.composite
    def mutate(draw: Callable[..., Any]) -> str:
        breakable = [
            (path, options)
            for path, node, container, key in places
            if (options := _breakers(node, container, key))
        ]
        if not breakable:
            spec["notAField"] = 1
            return "unknown field at spec"
        path, options = draw(st.sampled_from(breakable))
        name, action = draw(st.sampled_from(options))
        action()
        return f"{name} at spec.{'.'.join(map(str, path))}"

    return mutate()


def _places(schema: Mapping[str, Any], value: Any, path: tuple[Any, ...]) -> Any:
    """(path, schema, container, key) of every value in ``value`` that has a schema."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, item in value.items():
            sub = properties.get(key)
            if sub is None:
                continue
            yield (*path, key), sub, value, key
            yield from _places(sub, item, (*path, key))
    elif isinstance(value, list):
        items = schema.get("items") or {}
        for index, item in enumerate(value):
            yield (*path, index), items, value, index
            yield from _places(items, item, (*path, index))


def _breakers(
    schema: Mapping[str, Any], container: Any, key: Any
) -> list[tuple[str, Callable[[], None]]]:
    def put(value: Any) -> Callable[[], None]:
        def act() -> None:
            container[key] = value

        return act

    kind = schema.get("type")
    options: list[tuple[str, Callable[[], None]]] = []
    wrong = {
        "string": 12345,
        "integer": "twelve",
        "boolean": "yes",
        "array": {"a": 1},
        "object": [1],
    }
    if kind in wrong and not schema.get("x-kubernetes-int-or-string"):
        options.append((f"wrong type ({kind} expected)", put(wrong[kind])))
    if "enum" in schema:
        options.append(("value outside the enum", put("NotInTheEnum")))
    if kind == "string" and "maxLength" in schema:
        options.append(("too long", put("x" * (int(schema["maxLength"]) + 1))))
    if kind == "string" and schema.get("pattern"):
        options.append(("off the pattern", put(" not matching\n")))
    if kind == "integer" and "minimum" in schema:
        options.append(("below the minimum", put(int(schema["minimum"]) - 1)))
    if kind == "integer" and "maximum" in schema:
        options.append(("above the maximum", put(int(schema["maximum"]) + 1)))
    if kind == "object" and isinstance(container[key], dict):
        target = container[key]
        if schema.get("properties") and not schema.get("x-kubernetes-preserve-unknown-fields"):
            options.append(("unknown field", lambda: target.__setitem__("notAField", True)))
        for required in schema.get("required") or []:
            if required in target:
                options.append((f"missing required {required}", lambda r=required: target.pop(r)))
    if kind == "array" and "minItems" in schema and int(schema["minItems"]) > 0:
        options.append(("too few items", put([])))
    if kind == "array" and "maxItems" in schema and isinstance(container[key], list):
        items = container[key]
        if items:
            options.append(("too many items", put(items * (int(schema["maxItems"]) + 1))))
    return options
