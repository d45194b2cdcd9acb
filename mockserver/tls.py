"""HTTPS for clients that refuse ``http://``: a throwaway CA (trustme) and a server certificate
for loopback names, written to a temporary folder whose CA bundle path is printed for clients.

Only imported with ``--tls`` / ``LiveServer(tls=True)``: trustme is not needed otherwise.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsFiles", "make_tls"]

#: names every certificate covers (what a client on this machine may call the fake)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of one throwaway CA and the server certificate it signed."""

    ca_bundle: Path
    cert: Path
    key: Path


def make_tls(hosts: Iterable[str] = (), directory: Path | None = None) -> TlsFiles:
    """Make a CA and a server certificate for the loopback names and ``hosts``.

    ``directory`` defaults to a new temporary folder (kept until the process exits, so a
    client started later can still read the CA bundle).
    """
    import trustme

    names = list(dict.fromkeys([*LOOPBACK_NAMES, *(h for h in hosts if h and h not in ("0.0.0.0", "::"))]))
    folder = directory or Path(tempfile.mkdtemp(prefix="kling-testkit-tls-"))
    ca = trustme.CA(organization_name="kling-testkit throwaway CA")
    server = ca.issue_cert(*names)
    ca_bundle = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_bundle))
    cert = folder / "server.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(cert), append=True)
    key = folder / "server.key"
    server.private_key_pem.write_to_path(str(key))
    return TlsFiles(ca_bundle=ca_bundle, cert=cert, key=key)
