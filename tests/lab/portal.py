"""The portal: how agents inside lab hosts reach a server on the root namespace's loopback.

A Portal listens inside the hub namespace (on the bridge address) and, for every accepted
connection, opens a TCP connection to a target address in the namespace the Portal was
created from (normally 127.0.0.1:<port> in the root namespace) and pumps bytes both ways.
It keeps no state about the server: when the server is down, new connections are accepted
and closed at once, and they work again as soon as the server is back.
"""

import logging
import select
import socket
import threading

from .netns import call_in_netns

log = logging.getLogger("lab.portal")


class Portal:
    def __init__(self, hub_ns, listen, target):
        """listen: (address, port) inside hub_ns; target: (address, port) here."""
        self.hub_ns = hub_ns
        self.listen_addr = listen
        self.target = target
        self._lock = threading.Lock()
        self._conns = set()
        self._closed = False
        self._paused = False
        self._black_hole = False
        self.accepted = 0
        self.forwarded = 0

        def make_listener():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(listen)
            s.listen(128)
            return s

        self._listener = call_in_netns(hub_ns, make_listener)
        self._thread = threading.Thread(target=self._accept_loop, name="portal-accept",
                                        daemon=True)
        self._thread.start()

    def pause(self):
        """Simulates an unreachable server: new connections are closed, current ones cut."""
        with self._lock:
            self._paused = True
            conns = list(self._conns)
        for c in conns:
            _close(c)

    def resume(self):
        with self._lock:
            self._paused = False

    def black_hole(self, on=True):
        """While on, bytes from agents to the server are read and discarded; the server's
        bytes still reach the agents. Agents believe they are connected while nothing they send
        arrives (a half-dead link). A stream that lost bytes is corrupt: pause() it before
        turning this off."""
        with self._lock:
            self._black_hole = on

    def _discarding(self):
        with self._lock:
            return self._black_hole

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
        _close(self._listener)
        for c in conns:
            _close(c)
        self._thread.join(timeout=5)

    def _accept_loop(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    _close(client)
                    return
                paused = self._paused
                self.accepted += 1
            if paused:
                _close(client)
                continue
            threading.Thread(target=self._serve, args=(client,), name="portal-conn",
                             daemon=True).start()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError as e:
            log.debug("portal: upstream %s unreachable: %s", self.target, e)
            _close(client)
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._closed or self._paused:
                _close(client)
                _close(upstream)
                return
            self._conns.update((client, upstream))
            self.forwarded += 1
        try:
            _pump(client, upstream, drop_from=client, dropping=self._discarding)
        finally:
            with self._lock:
                self._conns.discard(client)
                self._conns.discard(upstream)
            _close(client)
            _close(upstream)


def _pump(a, b, drop_from=None, dropping=lambda: False):
    """Copies bytes both ways until both directions are finished or one side fails. Bytes
    read from `drop_from` are discarded while dropping() is true."""
    peer = {a: b, b: a}
    open_in = {a, b}
    while open_in:
        try:
            readable, _, _ = select.select(list(open_in), [], [], 1.0)
        except (OSError, ValueError):
            return
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                return
            if not data:
                open_in.discard(s)
                try:
                    peer[s].shutdown(socket.SHUT_WR)
                except OSError:
                    return
                continue
            if s is drop_from and dropping():
                continue
            try:
                peer[s].sendall(data)
            except OSError:
                return


def _close(s):
    # shutdown first: it wakes a thread blocked in select/recv on the same socket.
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
