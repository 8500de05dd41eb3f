"""The listening sockets of ``consult serve``, bound before anything else starts, so that a port
another process holds is one clear error and not a traceback after the database was opened."""

from __future__ import annotations

import errno
import socket

from consult.errors import ConfigError


def bind(host: str, port: int) -> list[socket.socket]:
    """Bound (not yet listening) sockets for every address ``host`` resolves to.

    Raises ``ConfigError`` naming the address when it cannot be had: in use by another process,
    not an address of this host, or a host name that does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"CONSULT_HOST: {host} does not resolve ({exc.strerror})") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            # As asyncio's own create_server: a restart may reuse a port whose old connections
            # linger in TIME_WAIT, never one another socket listens on.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"cannot listen on {where}: the address is already in use by another process "
                              "(stop it, or choose another --port / CONSULT_PORT)") from None
        raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sockets
