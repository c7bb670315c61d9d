"""Traffic probes between lab hosts: TCP and UDP echo, ICMP ping, over IPv4 and IPv6.

An EchoServer listens in one host (dual-stack, TCP and UDP on the same port); probes run in
another host through sockets created inside that host's namespace, so a probe's packets
leave exactly the way a program on that host would send them.
"""

import concurrent.futures
import os
import select
import socket
import threading


class EchoServer:
    """TCP + UDP echo on [::]:port (IPv4-mapped too) inside `host`. Closed with the host."""

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self._closed = False
        self._socks = []
        tcp = host.socket(socket.AF_INET6, socket.SOCK_STREAM)
        udp = host.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        for s in (tcp, udp):
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", port))
        tcp.listen(64)
        self.tcp, self.udp = tcp, udp
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"echo:{host.name}:{port}")
        self._thread.start()
        host.own(self)

    def _loop(self):
        conns = []
        while True:
            try:
                readable, _, _ = select.select([self.tcp, self.udp, self._wake_r] + conns, [], [])
            except (OSError, ValueError):
                break
            if self._wake_r in readable:
                break
            for s in readable:
                try:
                    if s is self.tcp:
                        c, _ = s.accept()
                        c.setblocking(True)
                        c.settimeout(2)
                        conns.append(c)
                    elif s is self.udp:
                        data, addr = s.recvfrom(65536)
                        s.sendto(data, addr)
                    else:
                        data = s.recv(65536)
                        if data:
                            s.sendall(data)
                        else:
                            conns.remove(s)
                            s.close()
                except OSError:
                    if s in conns:
                        conns.remove(s)
                        s.close()
        for c in conns:
            c.close()

    def close(self):
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        for s in (self.tcp, self.udp):
            s.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def tcp_ok(host, address, port, timeout=1.0):
    """True if `host` can open a TCP connection to address:port and get an echo back."""
    s = host.socket(_family(address), socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((address, port))
        msg = b"quell-probe-tcp"
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(64)
            if not chunk:
                break
            got += chunk
        return got == msg
    except OSError:
        return False
    finally:
        s.close()


def tcp_connects(host, address, port, timeout=1.0):
    """True if a TCP handshake from `host` to address:port completes (no payload)."""
    s = host.socket(_family(address), socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def udp_ok(host, address, port, timeout=1.0, attempts=2):
    """True if a UDP datagram from `host` to address:port is echoed back."""
    s = host.socket(_family(address), socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout / attempts)
        msg = b"quell-probe-udp"
        for _ in range(attempts):
            try:
                s.sendto(msg, (address, port))
                data, _ = s.recvfrom(64)
                if data == msg:
                    return True
            except OSError:
                continue
        return False
    finally:
        s.close()


def icmp_ok(host, address, timeout=1):
    return host.ping(address, timeout=timeout)


def reachability(src, dst, port):
    """Runs every probe from src to dst in parallel.

    Returns {"tcp4": bool, "udp4": ..., "icmp4": ..., "tcp6": ..., "udp6": ..., "icmp6": ...}.
    """
    jobs = {}
    for v, addr in (("4", dst.ip4), ("6", dst.ip6)):
        jobs["tcp" + v] = (tcp_ok, src, addr, port)
        jobs["udp" + v] = (udp_ok, src, addr, port)
        jobs["icmp" + v] = (icmp_ok, src, addr)
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {k: pool.submit(fn, *args) for k, (fn, *args) in jobs.items()}
        return {k: f.result() for k, f in futures.items()}
