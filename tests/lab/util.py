"""Small helpers shared by the lab, the tests and scripts."""

import json
import os
import time


class Timeout(AssertionError):
    pass


def wait_until(predicate, timeout=20.0, interval=0.2, what=None):
    """Polls predicate() until it returns a truthy value, which is returned.

    Raises Timeout (an AssertionError, so pytest reports it as a failure) naming `what` and
    the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as e:  # the predicate may fail while things settle
            last = e
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout:.0f}s waiting for "
                          f"{what or getattr(predicate, '__name__', 'condition')}; last: {last!r}")
        time.sleep(interval)


def to_yaml(value, indent=0):
    """Dumps dicts, lists, strings, numbers and booleans as block-style YAML.

    Strings are written double-quoted with JSON escapes, which YAML reads the same way.
    """
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        out = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            else:
                out.append(f"{pad}{k}: {_scalar(v)}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return "[]\n"
        out = []
        for v in value:
            if isinstance(v, (dict, list)) and v:
                body = to_yaml(v, indent + 1).lstrip()
                out.append(f"{pad}- {body}")
            else:
                out.append(f"{pad}- {_scalar(v)}\n")
        return "".join(out)
    return _scalar(value) + "\n"


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    if v is None:
        return "null"
    return json.dumps(str(v))


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError as e:
        return f"<{path}: {e}>"
    return "\n".join(data.splitlines()[-lines:])
