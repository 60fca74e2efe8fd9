"""Pure builders: typed spec in, plain child manifests out. No I/O and no clock here."""
