"""Lab: many "hosts" on one kernel, each a network namespace joined to a private bridge.

Layout of one lab (prefix e.g. "ql3a", subnet number n):

    hub netns  "<prefix>-hub": bridge br0 10.77.<n>.1/24, fd77:<n>::1/64, the portal listener
    host netns "<prefix>-<name>": eth0 10.77.<n>.<10+i>/24, fd77:<n>::<10+i>/64, lo up
    veth pair  "v<i>" (in the hub, a port of br0) <-> "eth0" (in the host)

Nothing is created in the root network namespace. A claim file under /run/quell-lab records
each live lab's owner pid and namespaces so that a later lab can remove the leftovers of a
lab whose process was SIGKILLed (the only case that skips every cleanup hook).
"""

import atexit
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from .netns import (call_in_netns, in_main_thread, netns_pids, ns_exists,
                    pdeathsig_preexec, pid_alive, run)
from .portal import Portal
from .util import to_yaml, wait_until

log = logging.getLogger("lab")

CLAIM_DIR = "/run/quell-lab"
# Directories every lab host gets its own tmpfs on (in its private mount namespace).
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
# Directories every lab host sees through a copy-on-write overlay: reads show the machine's
# files, writes (planted cron jobs, units, profiles, keys) land in the host's own upper dir
# and never reach the machine. Unlike the tmpfs dirs they survive a reboot, like a disk.
OVERLAY_DIRS = ("/etc", "/root", "/home", "/opt", "/usr/local", "/var/spool", "/var/log")
PREFIX_BASE = "ql"


def _disable_dad(ns):
    # Addresses that sit in "tentative" state cannot be bound or used; DAD is pointless on
    # a private bridge, so switch it off for every interface created in the namespace.
    run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
         "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])


def _kill_netns_processes(ns, timeout=5.0):
    if not ns_exists(ns):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = netns_pids(ns)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 2 * timeout)
        while time.monotonic() < deadline:
            if not [p for p in netns_pids(ns) if pid_alive(p)]:
                break
            time.sleep(0.05)


def _delete_netns(ns):
    if ns_exists(ns):
        _kill_netns_processes(ns)
        run(["ip", "netns", "del", ns], check=False)


def reap_stale_labs():
    """Removes namespaces of labs whose owner process is gone. Returns the prefixes reaped."""
    reaped = []
    try:
        names = os.listdir(CLAIM_DIR)
    except FileNotFoundError:
        return reaped
    for fname in names:
        if not fname.endswith(".json"):
            continue
        path = os.path.join(CLAIM_DIR, fname)
        try:
            with open(path) as f:
                claim = json.load(f)
        except (OSError, ValueError):
            continue
        if pid_alive(int(claim.get("pid", 0))) and _same_boot_process(claim):
            continue
        for ns in claim.get("namespaces", []):
            if ns.startswith(claim["prefix"] + "-"):
                _delete_netns(ns)
                shutil.rmtree(os.path.join(CLAIM_DIR, f"overlay-{ns}"), ignore_errors=True)
        try:
            os.unlink(path)
        except OSError:
            pass
        reaped.append(claim.get("prefix"))
    return reaped


def _process_start_time(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _same_boot_process(claim):
    # Guards against pid reuse: the claim records the owner's start time.
    start = claim.get("start_time")
    return start is None or _process_start_time(int(claim["pid"])) == start


class Host:
    """One lab host: a network namespace with its own addresses, hostname and agent."""

    def __init__(self, lab, name, index, hostname=None):
        self.lab = lab
        self.name = name
        self.index = index
        self.ns = f"{lab.prefix}-{name}"
        self.hostname = hostname or self.ns
        self.ip4 = f"10.77.{lab.n}.{10 + index}"
        self.ip6 = f"fd77:{lab.n}::{10 + index}"
        self.hub_port = f"v{index}"
        self.dir = os.path.join(lab.dir, name)
        self.state_dir = os.path.join(self.dir, "state")
        self.config_path = os.path.join(self.dir, "agent.yaml")
        self.log_path = os.path.join(self.dir, "agent.log")
        # Upper dirs of the host's overlays (OVERLAY_DIRS); on the machine's disk, outside
        # the private tmpfs dirs so a scan of the host's /tmp does not walk into them.
        self.overlay_dir = os.path.join(CLAIM_DIR, f"overlay-{self.ns}")
        os.makedirs(self.state_dir, exist_ok=True)
        self.agent = None           # Popen of the running agent, if any
        self.mnt_holder = None      # Popen of the process holding the host's mount+uts ns
        self.agent_config = None    # last config given to start_agent
        self._procs = []            # other processes started in this host
        self._resources = []        # objects with close() bound to this namespace

    # ---- network -------------------------------------------------------------------------

    def _create_netns(self):
        lab = self.lab
        run(["ip", "netns", "add", self.ns])
        lab._record_claim()
        _disable_dad(self.ns)
        run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        run(["ip", "-n", lab.hub, "link", "add", self.hub_port, "type", "veth",
             "peer", "name", "eth0", "netns", self.ns])
        run(["ip", "-n", lab.hub, "link", "set", self.hub_port, "master", "br0", "up"])
        run(["ip", "-n", self.ns, "addr", "add", f"{self.ip4}/24", "dev", "eth0"])
        run(["ip", "-n", self.ns, "addr", "add", f"{self.ip6}/64", "dev", "eth0", "nodad"])
        run(["ip", "-n", self.ns, "link", "set", "eth0", "up"])
        wait_until(self._link_ready, timeout=10, interval=0.05, what=f"{self.ns} eth0 up")

    def _link_ready(self):
        out = run(["ip", "-n", self.ns, "-o", "addr", "show", "dev", "eth0"], check=False).stdout
        state = run(["ip", "-n", self.ns, "-o", "link", "show", "dev", "eth0"], check=False).stdout
        return (self.ip4 in out and self.ip6 in out and "tentative" not in out
                and "LOWER_UP" in state)

    def _destroy_netns(self):
        self.close_resources()
        for p in self._procs:
            _terminate(p)
        self._procs.clear()
        _delete_netns(self.ns)
        # The namespace (and with it the veth pair) dies when its last user is gone.
        wait_until(lambda: run(["ip", "-n", self.lab.hub, "link", "show", self.hub_port],
                               check=False).returncode != 0,
                   timeout=10, interval=0.05, what=f"{self.hub_port} removed from the hub")

    # ---- running things ------------------------------------------------------------------

    def exec(self, *cmd, check=False, timeout=30, input=None):
        """Runs a command inside this host's network namespace; returns CompletedProcess."""
        return run(["ip", "netns", "exec", self.ns, *cmd], check=check, timeout=timeout,
                   input=input)

    def popen(self, cmd, log_name=None, **kwargs):
        """Starts a background process in this host; it is killed on reboot and cleanup."""
        out = open(os.path.join(self.dir, log_name), "ab") if log_name else subprocess.DEVNULL
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, *map(str, cmd)], stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=_preexec(), **kwargs)
        if out is not subprocess.DEVNULL:
            out.close()
        self._procs.append(p)
        return p

    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM, proto=0):
        """A socket that lives in this host's network namespace (caller closes it)."""
        return call_in_netns(self.ns, socket.socket, family, type, proto)

    def own(self, resource):
        """Ties resource.close() to this host's life (reboot, cleanup)."""
        self._resources.append(resource)
        return resource

    def close_resources(self):
        while self._resources:
            r = self._resources.pop()
            try:
                r.close()
            except Exception:
                pass

    def nft_tables(self):
        """Tables in this host's nftables ruleset, as "family name" strings."""
        out = self.exec("nft", "list", "tables", check=True).stdout
        return [line[len("table "):].strip() for line in out.splitlines()
                if line.startswith("table ")]

    def ping(self, address, timeout=1):
        flag = "-6" if ":" in address else "-4"
        return self.exec("ping", flag, "-n", "-c1", f"-W{timeout}", address,
                         timeout=timeout + 10).returncode == 0

    # ---- agent ---------------------------------------------------------------------------

    # ---- the host's own mount (and uts) namespace ------------------------------------------

    def _keep_paths(self, binary):
        """Paths under /tmp, /var/tmp, /dev/shm the agent needs inside the private mounts."""
        wanted = [self.dir, os.path.dirname(os.path.abspath(binary))]
        ca = (self.agent_config or {}).get("ca_cert")
        if ca:
            wanted.append(os.path.dirname(os.path.abspath(ca)))
        keep = []
        for path in wanted:
            real = os.path.realpath(path)
            if any(real == d or real.startswith(d + "/") for d in PRIVATE_DIRS):
                keep.append(real)
        return keep

    def _start_mount_ns(self, binary):
        """Starts the holder of this host's mount+uts namespaces: private propagation, its own
        hostname and private tmpfs on /tmp, /var/tmp and /dev/shm (the paths the agent needs
        from the machine's /tmp are bound back in). Lives until reboot or close, so the
        namespace survives agent restarts (and kill -9) like a real host's mounts do."""
        if self.mnt_holder is not None and self.mnt_holder.poll() is None:
            return
        stage = os.path.join(CLAIM_DIR, f"stage-{self.ns}")
        os.makedirs(stage, exist_ok=True)
        keep = self._keep_paths(binary)
        script = ['set -e', 'hostname "$1"', 'stage="$2"', 'shift 2',
                  'mount -t tmpfs -o size=1m tmpfs "$stage"']
        for i, d in enumerate(PRIVATE_DIRS):
            script += [f'mkdir "$stage/{i}"', f'mount --bind {d} "$stage/{i}"',
                       f'mount -t tmpfs -o mode=1777 tmpfs {d}']
        for i, d in enumerate(OVERLAY_DIRS):
            if not os.path.isdir(d):
                continue
            upper, work = (os.path.join(self.overlay_dir, str(i), x) for x in ("upper", "work"))
            os.makedirs(upper, exist_ok=True)
            os.makedirs(work, exist_ok=True)
            script.append(f'mount -t overlay overlay -o lowerdir={d},upperdir={upper},'
                          f'workdir={work} {d}')
        script += ['for p in "$@"; do',
                   '  case "$p" in']
        for i, d in enumerate(PRIVATE_DIRS):
            script += [f'    {d}/*) src="$stage/{i}/${{p#{d}/}}" ;;']
        script += ['  esac',
                   '  mkdir -p "$p"', '  mount --bind "$src" "$p"',
                   'done',
                   'umount -l "$stage"',
                   'exec sleep infinity']
        self.mnt_holder = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation", "private",
             "--uts", "sh", "-c", "\n".join(script), "sh", self.hostname, stage, *keep],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "mountns.log"), "ab"),
            stdin=subprocess.DEVNULL, preexec_fn=_preexec())

        def ready():
            if self.mnt_holder.poll() is not None:
                raise RuntimeError(f"mount namespace of {self.name} failed; see "
                                   f"{os.path.join(self.dir, 'mountns.log')}")
            with open(f"/proc/{self.mnt_holder.pid}/comm") as f:
                return f.read().strip() == "sleep"
        wait_until(ready, timeout=10, interval=0.02, what=f"{self.name} mount namespace")

    def _stop_mount_ns(self):
        if self.mnt_holder is not None:
            _terminate(self.mnt_holder)
            self.mnt_holder = None

    def nsenter(self):
        """The command prefix that enters this host (network, mount and uts namespaces)."""
        if self.mnt_holder is None or self.mnt_holder.poll() is not None:
            raise RuntimeError(f"{self.name} has no mount namespace (start its agent first)")
        return ["nsenter", "--target", str(self.mnt_holder.pid), "--mount", "--uts", "--net",
                "--"]

    def run_in_host(self, *cmd, check=False, timeout=30, input=None):
        """Runs a command inside this host as its agent sees it: its network namespace AND its
        mount namespace (private /tmp, marks of a restricted host). Returns CompletedProcess."""
        return run([*self.nsenter(), *map(str, cmd)], check=check, timeout=timeout, input=input)

    def start_agent(self, config=None, binary=None):
        """Writes agent.yaml and starts quell-agent with its own hostname in this host.

        The agent runs in the host's network namespace and in the host's own mount and uts
        namespaces (see _start_mount_ns). The Popen pid is the agent's pid: nsenter execs it.
        """
        if self.agent is not None and self.agent.poll() is None:
            raise RuntimeError(f"agent of {self.name} is already running")
        if config is not None:
            self.agent_config = dict(config)
        if self.agent_config is None:
            raise ValueError("start_agent needs a config the first time")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.agent_config))
        binary = binary or self.lab.agent_bin
        if not binary:
            raise ValueError("no quell-agent binary given to the lab")
        out = open(self.log_path, "ab")
        out.write(f"==== lab: starting agent at {time.strftime('%H:%M:%S')} ====\n".encode())
        out.flush()
        try:
            self._start_mount_ns(binary)
        except BaseException:
            out.close()
            raise
        self.agent = subprocess.Popen(
            [*self.nsenter(), binary, "--config", self.config_path],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_preexec())
        out.close()
        return self.agent

    def agent_running(self):
        return self.agent is not None and self.agent.poll() is None

    def kill_agent(self, sig=signal.SIGKILL, wait=True, timeout=10):
        """Sends sig to the agent; with wait, waits for it to exit (SIGKILL after timeout)."""
        if self.agent is None:
            return None
        if self.agent.poll() is None:
            try:
                self.agent.send_signal(sig)
            except ProcessLookupError:
                pass
        if not wait or sig in (signal.SIGSTOP, signal.SIGCONT):
            return None
        try:
            return self.agent.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.agent.kill()
            return self.agent.wait(timeout=10)

    def stop_agent(self, timeout=10):
        return self.kill_agent(signal.SIGTERM, timeout=timeout)

    def reboot(self, start_agent=True):
        """Power-cycles the host: kill the agent, recreate the namespace empty, restart it.

        The state dir survives (it is the host's disk); everything in the network namespace
        (addresses, routes, nftables, sockets) does not.
        """
        self.kill_agent(signal.SIGKILL)
        self._stop_mount_ns()  # a reboot loses the host's tmpfs mounts too
        self._destroy_netns()
        self._create_netns()
        if start_agent and self.agent_config is not None:
            self.start_agent()

    def close(self):
        if self.agent is not None:
            if self.agent.poll() is None:
                try:
                    os.kill(self.agent.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            _terminate(self.agent)
        self.close_resources()
        for p in self._procs:
            _terminate(p)
        self._procs.clear()
        self._stop_mount_ns()
        _delete_netns(self.ns)
        try:
            os.rmdir(os.path.join(CLAIM_DIR, f"stage-{self.ns}"))
        except OSError:
            pass
        shutil.rmtree(self.overlay_dir, ignore_errors=True)

    def __repr__(self):
        return f"Host({self.name}, ns={self.ns}, {self.ip4}, {self.ip6})"


def _preexec():
    return pdeathsig_preexec(signal.SIGKILL) if in_main_thread() else None


def _terminate(p, timeout=5):
    if p.poll() is not None:
        return
    try:
        p.terminate()
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)
    except ProcessLookupError:
        pass


class Lab:
    """A set of lab hosts behind one bridge. Use as a context manager.

    Cleanup (agents, processes, portal, namespaces) runs on exit from the with-block, on
    exceptions, on SIGTERM/SIGINT (turned into SystemExit/KeyboardInterrupt in the main
    thread) and from an atexit hook; it is idempotent.
    """

    def __init__(self, base_dir=None, agent_bin=None, n=None):
        if os.geteuid() != 0:
            raise PermissionError("a lab needs root (network namespaces)")
        self.agent_bin = agent_bin
        self.hosts = {}
        self.portals = []
        self._closed = False
        self._lock = threading.Lock()
        self._old_sigterm = None
        self._owns_dir = False
        self.dir = None
        os.makedirs(CLAIM_DIR, exist_ok=True)
        reap_stale_labs()
        self.n, self.prefix = self._claim_subnet(n)
        self.hub = f"{self.prefix}-hub"
        self.claim_path = os.path.join(CLAIM_DIR, f"{self.prefix}.json")
        self._record_claim()
        atexit.register(self.close)
        if in_main_thread():
            self._old_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _raise_system_exit)
        # A temporary dir (no base_dir given) is removed on close; a given one is kept.
        self._owns_dir = base_dir is None
        if base_dir is None:
            self.dir = tempfile.mkdtemp(prefix=f"quell-lab-{self.prefix}-")
        else:
            self.dir = os.path.abspath(base_dir)
            os.makedirs(self.dir, exist_ok=True)
        try:
            self._create_hub()
        except BaseException:
            self.close()
            raise

    @property
    def gateway4(self):
        return f"10.77.{self.n}.1"

    @property
    def gateway6(self):
        return f"fd77:{self.n}::1"

    def _claim_subnet(self, preferred):
        # `ip netns add` fails if the name exists, which makes it an atomic claim.
        candidates = list(range(1, 255))
        random.shuffle(candidates)
        if preferred is not None:
            candidates.remove(preferred)
            candidates.insert(0, preferred)
        existing = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        for n in candidates:
            prefix = f"{PREFIX_BASE}{n:02x}"
            if any(name.startswith(prefix + "-") for name in existing):
                continue
            r = run(["ip", "netns", "add", f"{prefix}-hub"], check=False)
            if r.returncode == 0:
                return n, prefix
        raise RuntimeError("no free lab subnet (10.77.1-254)")

    def _record_claim(self):
        namespaces = [self.hub] + [h.ns for h in self.hosts.values()]
        claim = {"prefix": self.prefix, "pid": os.getpid(),
                 "start_time": _process_start_time(os.getpid()), "namespaces": namespaces}
        tmp = self.claim_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(claim, f)
        os.replace(tmp, self.claim_path)

    def _create_hub(self):
        hub = self.hub
        _disable_dad(hub)
        run(["ip", "-n", hub, "link", "set", "lo", "up"])
        run(["ip", "-n", hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"])
        run(["ip", "-n", hub, "addr", "add", f"{self.gateway4}/24", "dev", "br0"])
        run(["ip", "-n", hub, "addr", "add", f"{self.gateway6}/64", "dev", "br0", "nodad"])
        run(["ip", "-n", hub, "link", "set", "br0", "up"])

    def add_host(self, name, hostname=None):
        if name in self.hosts:
            raise ValueError(f"host {name} exists")
        host = Host(self, name, len(self.hosts) + 1, hostname)
        self.hosts[name] = host
        host._create_netns()
        return host

    def __getitem__(self, name):
        return self.hosts[name]

    def open_portal(self, port, target=None):
        """Forwards <gateway4>:port in the hub to target (default 127.0.0.1:port) here."""
        portal = Portal(self.hub, (self.gateway4, port), target or ("127.0.0.1", port))
        self.portals.append(portal)
        return portal

    def agent_config(self, host, enrollment_token, ca_cert, port, **extra):
        """The agent.yaml content for `host`, talking to the server through the portal."""
        cfg = {
            "server": f"{self.gateway4}:{port}",
            "server_name": "quell-server",
            "ca_cert": os.path.abspath(ca_cert),
            "enrollment_token": enrollment_token,
            "state_dir": host.state_dir,
            "heartbeat_interval_seconds": 2,
            "reconnect_initial_ms": 200,
            "reconnect_max_ms": 2000,
            "isolation": {"selective_allow": [], "watchdog_interval_seconds": 1},
            # A lab agent runs in its host's private mount namespace; refuse otherwise.
            "restriction": {"require_private_mount_namespace": True},
            # systemctl in a lab host would reach the machine's own systemd: never call it.
            "quarantine": {"use_systemctl": False},
            "log_level": "debug",
        }
        for k, v in extra.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k] = {**cfg[k], **v}
            else:
                cfg[k] = v
        return cfg

    def namespaces(self):
        return [self.hub] + [h.ns for h in self.hosts.values()]

    def close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
        errors = []
        for h in list(self.hosts.values()):
            try:
                h.close()
            except Exception as e:
                errors.append(e)
        for p in self.portals:
            try:
                p.close()
            except Exception as e:
                errors.append(e)
        try:
            _delete_netns(self.hub)
        except Exception as e:
            errors.append(e)
        try:
            os.unlink(self.claim_path)
        except OSError:
            pass
        if self._owns_dir and self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        try:
            atexit.unregister(self.close)
        except Exception:
            pass
        if self._old_sigterm is not None and in_main_thread():
            signal.signal(signal.SIGTERM, self._old_sigterm)
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _raise_system_exit(signum, frame):
    raise SystemExit(128 + signum)
