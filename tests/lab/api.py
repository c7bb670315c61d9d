"""A small REST client for quell-server (stdlib only: http.client + ssl)."""

import http.client
import json
import socket
import ssl
import urllib.parse


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    def error_code(self):
        try:
            return self.json["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class ApiError(AssertionError):
    def __init__(self, method, path, response):
        self.response = response
        super().__init__(f"{method} {path} -> {response.status}: {response.body[:500]!r}")


class ApiClient:
    def __init__(self, base_url, token, ca_path, timeout=15):
        u = urllib.parse.urlsplit(base_url)
        self.host = u.hostname
        self.port = u.port or 443
        self.token = token
        self.ca_path = ca_path
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=ca_path)

    def with_token(self, token):
        return ApiClient(f"https://{self.host}:{self.port}", token, self.ca_path, self.timeout)

    def request(self, method, path, body=None, raw=None, headers=None, token=True):
        """Sends one request on a fresh connection; returns a Response (never raises on 4xx).

        body is JSON-encoded; raw (bytes or str) is sent as is.
        """
        hdrs = {"Accept": "application/json"}
        if token and self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
        elif raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=self.timeout)
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, dict(r.getheaders()), r.read().decode(errors="replace"))
        finally:
            conn.close()

    def call(self, method, path, body=None, expect=(200, 201)):
        r = self.request(method, path, body=body)
        if r.status not in ((expect,) if isinstance(expect, int) else expect):
            raise ApiError(method, path, r)
        return r.json

    # ---- resources -----------------------------------------------------------------------

    def machines(self):
        return self.call("GET", "/api/machines")["value"]

    def machine(self, machine_id):
        return self.call("GET", f"/api/machines/{_q(machine_id)}")

    def machine_by_name(self, name):
        for m in self.machines():
            if m.get("computerDnsName") == name:
                return m
        return None

    def isolate(self, machine_id, comment="e2e", isolation_type="Full", expect=201):
        return self.call("POST", f"/api/machines/{_q(machine_id)}/isolate",
                         {"Comment": comment, "IsolationType": isolation_type}, expect)

    def unisolate(self, machine_id, comment="e2e", expect=201):
        return self.call("POST", f"/api/machines/{_q(machine_id)}/unisolate",
                         {"Comment": comment}, expect)

    def offboard(self, machine_id, comment="e2e", expect=(200, 201)):
        return self.call("POST", f"/api/machines/{_q(machine_id)}/offboard",
                         {"Comment": comment}, expect)

    def action(self, action_id):
        return self.call("GET", f"/api/machineactions/{_q(action_id)}")

    def actions(self, odata_filter=None, top=None):
        q = {}
        if odata_filter:
            q["$filter"] = odata_filter
        if top is not None:
            q["$top"] = str(top)
        path = "/api/machineactions" + ("?" + urllib.parse.urlencode(q) if q else "")
        return self.call("GET", path)["value"]

    def cancel(self, action_id, comment="e2e", expect=200):
        return self.call("POST", f"/api/machineactions/{_q(action_id)}/cancel",
                         {"Comment": comment}, expect)

    def audit(self, target=None):
        path = "/api/audit" + (f"?target={_q(target)}" if target else "")
        return self.call("GET", path)


def _q(s):
    return urllib.parse.quote(str(s), safe="")


def raw_exchange(host, port, ca_path, request_head, body_chunks, timeout=15):
    """Sends a hand-made HTTP/1.1 request and returns (status or None, response text).

    Body write errors are tolerated: a server that refuses an oversized body may answer and
    close before reading it all; what it answered is still read.
    """
    ctx = ssl.create_default_context(cafile=ca_path)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(request_head.encode())
            try:
                for chunk in body_chunks:
                    s.sendall(chunk)
            except OSError:
                pass
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    if b"\r\n\r\n" in data:
                        head, _, rest = data.partition(b"\r\n\r\n")
                        length = _content_length(head)
                        if length is not None and len(rest) >= length:
                            break
            except (OSError, ssl.SSLError):
                pass
    text = data.decode(errors="replace")
    status = None
    if text.startswith("HTTP/"):
        try:
            status = int(text.split(" ", 2)[1])
        except (IndexError, ValueError):
            pass
    return status, text


def _content_length(head):
    for line in head.decode(errors="replace").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            try:
                return int(v.strip())
            except ValueError:
                return None
    return None
