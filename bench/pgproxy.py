"""A proxy in front of PostgreSQL that counts round trips.

Every exchange that makes a client wait for the server ends with the server's
ReadyForQuery message ('Z'): one per simple Query, one per extended-protocol
Sync. Counting them counts the round trips a client made (outside pipeline
mode, which batches several). The proxy can also hold back every client
message by --latency seconds, to show what the round trips cost on a network.

Connect with sslmode=disable and gssencmode=disable: the proxy reads the
server's messages, which an encrypted stream would hide.

It listens on a Unix socket in a directory of its own (mode 0700): the servers it
stands in front of trust whoever connects, so only this OS user may (connect with
``host=proxy.host port=proxy.port``). It reaches the server at ``host``: a Unix
socket directory, or a TCP host.

Used by bench/django_context.py and tests/test_django.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any


class CountingProxy:
    def __init__(self, host: str, port: int, latency: float = 0.0) -> None:
        self.target = (host, port)
        self.latency = latency
        self.round_trips = 0
        self._lock = threading.Lock()
        self.host = tempfile.mkdtemp(prefix="pgproxy_")
        self.port = 5432
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(os.path.join(self.host, f".s.PGSQL.{self.port}"))
        self._listener.listen()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> CountingProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def trips(self, work: Callable[[], Any]) -> int:
        """The round trips work() makes."""
        before = self.round_trips
        work()
        return self.round_trips - before

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        shutil.rmtree(self.host, ignore_errors=True)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            host, port = self.target
            if host.startswith("/"):
                server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                server.connect(os.path.join(host, f".s.PGSQL.{port}"))
            else:
                server = socket.create_connection(self.target)
                server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._client_to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(server, client), daemon=True).start()

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                if self.latency:
                    time.sleep(self.latency)
                server.sendall(data)
        except OSError:
            pass
        finally:
            server.close()

    def _server_to_client(self, server: socket.socket, client: socket.socket) -> None:
        pending = b""
        try:
            while data := server.recv(65536):
                pending += data
                # Server messages: a type byte, then a length that counts itself.
                while len(pending) >= 5:
                    length = int.from_bytes(pending[1:5], "big")
                    if len(pending) < 1 + length:
                        break
                    if pending[:1] == b"Z":
                        with self._lock:
                            self.round_trips += 1
                    pending = pending[1 + length :]
                client.sendall(data)  # counted first: the client sees no reply not yet counted
        except OSError:
            pass
        finally:
            client.close()
