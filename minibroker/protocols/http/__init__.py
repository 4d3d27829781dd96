"""HTTP/1.1, the management API's wire: a strict, small sans-IO server codec.

``codec.py`` frames requests and responses (RFC 9112) under explicit limits; ``messages.py``
holds the values it hands out and takes in. Routing, authentication and JSON live in
``minibroker.management``; sockets live in the shell.
"""

from minibroker.protocols.http.codec import DEFAULT_LIMITS, HTTPCodec, HTTPLimits
from minibroker.protocols.http.messages import (
    REASONS,
    ExpectContinue,
    Headers,
    HTTPError,
    Request,
    Response,
)

__all__ = [
    "DEFAULT_LIMITS", "REASONS", "ExpectContinue", "HTTPCodec", "HTTPError", "HTTPLimits",
    "Headers", "Request", "Response",
]
