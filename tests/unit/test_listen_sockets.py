"""The servers hotfolder starts (the sandbox, the dashboard) listen on sockets that say they
are TCP."""

from __future__ import annotations

import socket

from hotfolder.web.server import bind
from hotfolder.web.settings import Listen
from hotfolder_sandbox.server import _bind


def test_the_listening_sockets_say_they_are_tcp():
    """asyncio turns Nagle's algorithm off only on sockets whose protocol is IPPROTO_TCP; a
    socket made with the default 0 left it on, and every answer on a kept-alive connection
    waited 40 ms for the client's delayed ACK (measured: 44 ms, then 0.4 ms)."""
    sandbox = _bind("127.0.0.1", 0)
    dashboard = bind(Listen("127.0.0.1", 0))
    try:
        assert sandbox.proto == dashboard.proto == socket.IPPROTO_TCP
    finally:
        sandbox.close()
        dashboard.close()
