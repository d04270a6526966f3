"""IP addresses, checked and normalised by the standard library's ``ipaddress``."""

from __future__ import annotations

import ipaddress

from piiguard.errors import InvalidPII

__all__ = ["check_ipv4", "check_ipv6"]


def check_ipv4(value: object) -> str | InvalidPII:
    """Return the dotted-quad form, or (not raise) why the value is not an IPv4 address."""
    if isinstance(value, str):
        try:
            return str(ipaddress.IPv4Address(value.strip()))
        except ValueError:
            pass
    return InvalidPII("ipv4", "format", "not an IPv4 address")


def check_ipv6(value: object) -> str | InvalidPII:
    """Return the compressed lower-case form, or (not raise) why the value is not IPv6."""
    if isinstance(value, str):
        try:
            return ipaddress.IPv6Address(value.strip()).compressed
        except ValueError:
            pass
    return InvalidPII("ipv6", "format", "not an IPv6 address")
