"""A TCP relay in front of PostgreSQL, to take the database away from a running service
(a restart or a failover, as the service sees one) and give it back.

``DatabaseRelay(target)`` listens on 127.0.0.1 (an ephemeral port, ``port``) and passes each
connection on to ``target``: ``("host", port)`` or the path of a Unix socket. ``cut()`` drops
every connection and refuses new ones; ``resume()`` accepts them again on the same port.
"""

import contextlib
import socket
import threading

BUFFER = 65536


class DatabaseRelay:
    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self.lock = threading.Lock()
        self.connections: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.port = 0
        self.resume()

    def resume(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Close the listening socket and every relayed connection."""
        with self.lock:
            sockets, self.connections = [self.listener, *self.connections], []
            self.listener = None
        for each in sockets:
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            family = socket.AF_UNIX if isinstance(self.target, str) else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            server.connect(self.target)
            with self.lock:
                self.connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(BUFFER):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
