"""Operator-side alerting, pure: the alert state machine, notification planning (dedup, repeat
interval, resolved notices, channel backoff), rate limits, templates and the built-in
conditions on this project's own resources. No I/O and no clock: time is always a parameter,
so every rule here is tested without sleeping.

The AlertRule kind (``kinds/alertrule/``) feeds observations in, sends what the planner says
is due through ``integrations/notifiers``, and writes status.
"""
