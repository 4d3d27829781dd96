"""TLS contexts: the server's for AMQPS and native over TLS, the client's for ``minibrokers://``.

Standard-library ``ssl`` only. The listener wraps its sockets with :func:`server_context`; the
native client connects with :func:`client_context`.

Rules:

1. The server needs a certificate (``certfile``) and its private key (``keyfile``, or in the
   certfile). ``cafile`` holds the CAs whose client certificates it trusts. ``verify_peer``
   requires every client to present a certificate signed by one of them (RabbitMQ's
   ``verify_peer`` with ``fail_if_no_peer_cert = true``); without it client certificates are not
   asked for. ``verify_peer`` without a ``cafile`` is refused: there is nothing to verify with.
2. The client verifies the server's certificate against ``cafile`` (the system's CAs when none)
   and its host name, unless told otherwise; ``certfile``/``keyfile`` are its own certificate for
   a server that verifies peers.
3. TLS 1.2 is the oldest version either side accepts (RabbitMQ's default is 1.2 and 1.3).
4. A bad setting fails when the context is built, with a :class:`TLSConfigError` that names the
   setting and the file: missing, unreadable, not PEM, or a key that does not match its
   certificate. A broker must not start listening with a certificate it cannot serve.
5. ``ssl`` is imported when a context is built: the command line's ``--help`` and usage
   errors, which read :class:`TLSSettings`, do not load it (4-6 ms).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from minibroker.valueclass import valueclass

if TYPE_CHECKING:
    import ssl

__all__ = ["TLSConfigError", "TLSSettings", "client_context", "server_context"]


class TLSConfigError(ValueError):
    """A TLS setting that cannot work; the message names the setting and the file."""


@valueclass(frozen=True)
class TLSSettings:
    """The server's TLS settings (``--certfile``, ``--keyfile``, ``--cafile``,
    ``--verify-peer``)."""

    certfile: str
    keyfile: str | None = None
    cafile: str | None = None
    verify_peer: bool = False

    def __post_init__(self) -> None:
        if self.verify_peer and not self.cafile:
            raise TLSConfigError("verify_peer needs a cafile: the CA certificates that sign "
                                 "the clients' certificates")


def _pem(setting: str, path: str, marker: str) -> None:
    """Rule 4: the file exists, is readable, and holds a PEM block containing ``marker``."""
    file = Path(path)
    try:
        content = file.read_bytes()
    except FileNotFoundError:
        raise TLSConfigError(f"{setting} {path!r} does not exist") from None
    except IsADirectoryError:
        raise TLSConfigError(f"{setting} {path!r} is a directory, not a file") from None
    except OSError as err:
        raise TLSConfigError(f"{setting} {path!r} cannot be read: {err.strerror}") from None
    if b"-----BEGIN " not in content or marker.encode() not in content:
        raise TLSConfigError(f"{setting} {path!r} holds no PEM {marker.lower()}")


def _load_chain(context: ssl.SSLContext, setting: str, certfile: str,
                keyfile: str | None) -> None:
    import ssl  # rule 5

    _pem(setting, certfile, "CERTIFICATE")
    key_setting = "keyfile" if keyfile else setting
    _pem(key_setting, keyfile or certfile, "PRIVATE KEY")
    try:
        context.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as err:
        if "KEY_VALUES_MISMATCH" in str(err) or "key values mismatch" in str(err):
            raise TLSConfigError(
                f"{key_setting} {keyfile or certfile!r} does not hold the private key of the "
                f"certificate in {certfile!r}") from None
        raise TLSConfigError(
            f"{setting} {certfile!r} / {key_setting} {keyfile or certfile!r} cannot be loaded: "
            f"{err.reason or err}") from None


def _load_cas(context: ssl.SSLContext, cafile: str) -> None:
    import ssl  # rule 5

    _pem("cafile", cafile, "CERTIFICATE")
    try:
        context.load_verify_locations(cafile=cafile)
    except ssl.SSLError as err:
        raise TLSConfigError(f"cafile {cafile!r} cannot be loaded: {err.reason or err}") from None


def server_context(settings: TLSSettings) -> ssl.SSLContext:
    """The context a TLS listener wraps its sockets with (rule 1)."""
    import ssl  # rule 5

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(context, "certfile", settings.certfile, settings.keyfile)
    if settings.cafile:
        _load_cas(context, settings.cafile)
    # CERT_REQUIRED on a server: a client without a trusted certificate fails the handshake.
    context.verify_mode = ssl.CERT_REQUIRED if settings.verify_peer else ssl.CERT_NONE
    return context


def client_context(
    *, cafile: str | None = None, certfile: str | None = None, keyfile: str | None = None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """The context a client connects with (rule 2). ``check_hostname=False`` still verifies
    the certificate chain; it only skips matching the name."""
    if keyfile and not certfile:
        raise TLSConfigError("keyfile given without a certfile")
    import ssl  # rule 5

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cafile:
        _load_cas(context, cafile)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = check_hostname
    if certfile:
        _load_chain(context, "certfile", certfile, keyfile)
    return context
