"""kopf handlers, one module per kind. Importing this package registers them."""

from . import lifecycle, operator_settings

__all__ = ["lifecycle", "operator_settings"]
