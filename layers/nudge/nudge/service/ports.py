"""What the services need from the outside world, and how it may fail.

The adapters implement these; the services and entrypoints see nothing else. An adapter
raises only the errors below (``nudge.adapters.aws_errors`` translates botocore's), so no
``ClientError`` crosses into a service, and an entrypoint picks the response for each.
"""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "Missing", "OutsideError", "Refused", "Unavailable"]


class OutsideError(Exception):
    """A call to the outside world did not do what was asked."""


class Unavailable(OutsideError):
    """Throttled, overloaded or unreachable: the same call may succeed later."""


class Conflict(OutsideError):
    """A condition did not hold (someone else wrote first, or the thing already exists)."""


class Missing(OutsideError):
    """What the call names does not exist."""


class Forbidden(OutsideError):
    """The caller may not do this: a permission is missing, which a retry will not fix."""


class Refused(OutsideError):
    """The request was refused as malformed or over a limit: a bug, not a passing state."""
