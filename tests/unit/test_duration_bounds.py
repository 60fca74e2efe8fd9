"""Durations beyond Go's time.Duration: the API server's CEL rules fail on them, so the model
refuses them as well (found by the fuzz suite: the server refused what the model accepted)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from devserver_operator.api.base import Duration

DURATION: TypeAdapter[str] = TypeAdapter(Duration)


def test_the_longest_go_duration_is_accepted_and_a_longer_one_refused() -> None:
    assert DURATION.validate_python("2562047h") == "2562047h"  # Go's maximum, about 292 years
    with pytest.raises(ValidationError, match="longest duration Kubernetes can hold"):
        DURATION.validate_python("99740021008.585s")
