"""Status from what a reconcile observed. Pure, like the builders: observations in,
conditions and status fields out; no I/O, no clock."""
