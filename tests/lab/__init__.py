"""The Quell lab library: hosts made of network namespaces, real agents, a real server.

Shared by the end-to-end tests (tests/e2e) and `make run` (scripts/lab.py). Stdlib only.

    from lab import Binaries, Server, Lab
    bins = Binaries()                                   # QUELL_BIN_DIR or ./build
    srv = Server(bins.server, "/tmp/x/server").start()
    with Lab(agent_bin=bins.agent) as lab:
        lab.open_portal(srv.agent_port)                 # hub 10.77.n.1:port -> 127.0.0.1:port
        h1 = lab.add_host("h1")                         # 10.77.n.11, fd77:n::11
        h1.start_agent(lab.agent_config(h1, srv.create_enrollment_token(), srv.ca_path,
                                        srv.agent_port))
"""

from .api import ApiClient, ApiError, Response, raw_exchange
from .lab import Host, Lab, reap_stale_labs
from .netns import CommandError, list_netns, run
from .portal import Portal
from .probes import EchoServer, icmp_ok, reachability, tcp_connects, tcp_ok, udp_ok
from .server import Binaries, Server
from .util import Timeout, tail, to_yaml, wait_until

__all__ = [
    "ApiClient", "ApiError", "Binaries", "CommandError", "EchoServer", "Host", "Lab", "Portal",
    "Response", "Server", "Timeout", "icmp_ok", "list_netns", "raw_exchange", "reachability",
    "reap_stale_labs", "run", "tail", "tcp_connects", "tcp_ok", "to_yaml", "udp_ok",
    "wait_until",
]
