"""Copied into a temp dir as ``sitecustomize.py`` and put first on a kernel's PYTHONPATH.

Python imports ``sitecustomize`` at start-up, so the kernel comes up with every non-loopback
connection refused at once: socket.connect / connect_ex / sendto, socket.create_connection and
name lookups other than localhost raise ``OSError``. Loopback stays open, since the kernel talks
ZeroMQ to its client over 127.0.0.1.
"""

import errno
import ipaddress
import socket

MESSAGE = "network access blocked by the robustness tests (loopback only)"
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_loopback_host(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _allowed(sock_family, address) -> bool:
    if sock_family not in (socket.AF_INET, socket.AF_INET6):
        return True  # Unix sockets and the like never leave the machine
    return isinstance(address, tuple) and _is_loopback_host(address[0])


def _refuse(address):
    raise OSError(errno.ENETUNREACH, f"{MESSAGE}: {address!r}")


_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
_create_connection, _getaddrinfo = socket.create_connection, socket.getaddrinfo


def connect(self, address):
    if not _allowed(self.family, address):
        _refuse(address)
    return _connect(self, address)


def connect_ex(self, address):
    if not _allowed(self.family, address):
        _refuse(address)
    return _connect_ex(self, address)


def sendto(self, data, *args):
    address = args[-1]
    if not _allowed(self.family, address):
        _refuse(address)
    return _sendto(self, data, *args)


def create_connection(address, *args, **kwargs):
    if not _is_loopback_host(address[0]):
        _refuse(address)
    return _create_connection(address, *args, **kwargs)


def getaddrinfo(host, *args, **kwargs):
    if host is not None and not _is_loopback_host(host):
        try:
            ipaddress.ip_address(host if isinstance(host, str) else host.decode())
        except ValueError:  # a name lookup would query DNS over the network
            raise socket.gaierror(socket.EAI_NONAME, f"{MESSAGE}: lookup of {host!r}") from None
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.socket.sendto = sendto
socket.create_connection = create_connection
socket.getaddrinfo = getaddrinfo
