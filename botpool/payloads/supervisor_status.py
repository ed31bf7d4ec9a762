"""`supervisorctl status`, read from supervisord's socket with the standard library only.

Run inside a pool: `python3 -I -S -c "$(cat supervisor_status.py)" [SOCKET]`. Every snapshot
and the exporter read each pool's programs; supervisorctl costs about 0.13 CPU-second a call
(it imports supervisor's client), this about 0.06. It prints what supervisorctl prints, in
its layout (NAME STATE DESCRIPTION, a program a line) and with its exit codes, so
botpool.core.snapshot.parse_program and the exporter's parse_status read either; when
supervisord does not answer, one line naming the socket and why, as supervisorctl does.
The end-to-end tests import it and read a pool's socket from the host (read(), lines()).

`... -c SOURCE [SOCKET] --wait SECONDS NAME...` waits instead, in this one process, until
every named program is RUNNING (exit 0), reading every half second; past SECONDS it prints
the programs on stderr and exits 1. A converge waits so for each pool it starts: it polled
with a `docker exec` of this reader a second, about 0.1 CPU-second of the host's each.
"""

import http.client
import socket
import sys
import time
import xmlrpc.client

SOCKET = "/run/supervisor.sock"  # templates/supervisord.conf.j2, [unix_http_server]
TIMEOUT = 10.0


class _Connection(http.client.HTTPConnection):
    def __init__(self, socket_path: str) -> None:
        super().__init__("localhost")
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(self.socket_path)


class _Transport(xmlrpc.client.Transport):
    def __init__(self, socket_path: str) -> None:
        super().__init__()
        self.socket_path = socket_path

    def make_connection(self, host: object) -> http.client.HTTPConnection:
        return _Connection(self.socket_path)


def read(path: str = SOCKET) -> list[dict[str, object]]:
    """supervisord's getAllProcessInfo: one dict a program (name, group, statename, ...)."""
    server = xmlrpc.client.ServerProxy("http://localhost", transport=_Transport(path))
    return server.supervisor.getAllProcessInfo()  # type: ignore[return-value]


def lines(programs: list[dict[str, object]]) -> list[str]:
    """supervisorctl status's lines: NAME STATE DESCRIPTION, a program a line."""
    names = [
        str(p["name"] if p["group"] == p["name"] else f"{p['group']}:{p['name']}") for p in programs
    ]
    width = max([30, *map(len, names)]) + 3
    return [
        f"{name:<{width}}{p['statename']:<10}{p['description']}"
        for name, p in zip(names, programs, strict=True)
    ]


def wait(path: str, seconds: float, names: list[str]) -> int:
    """Until every program in names is RUNNING (0); 1 past seconds, its lines on stderr."""
    deadline = time.monotonic() + seconds
    found: list[str] = []
    while True:
        try:
            found = lines(read(path))
        except (OSError, xmlrpc.client.Error) as e:  # supervisord not up yet, or restarting
            found = [f"unix://{path} {type(e).__name__}: {e}"]
        running = {line.split()[0] for line in found if line.split()[1:2] == ["RUNNING"]}
        if running.issuperset(names):
            return 0
        if time.monotonic() >= deadline:
            print("\n".join(found), file=sys.stderr)
            return 1
        time.sleep(0.5)


def main() -> int:
    """supervisorctl's exit codes too: 4 when supervisord does not answer, 3 when a program
    is not running (STOPPED, EXITED, FATAL or UNKNOWN), else 0."""
    args = sys.argv[1:]
    path = args.pop(0) if args and not args[0].startswith("--") else SOCKET
    if args[:1] == ["--wait"]:
        return wait(path, float(args[1]), args[2:])
    try:
        programs = read(path)
    except FileNotFoundError:
        print(f"unix://{path} no such file")
        return 4
    except ConnectionRefusedError:
        print(f"unix://{path} refused connection")
        return 4
    except (OSError, xmlrpc.client.Error) as e:
        print(f"unix://{path} {type(e).__name__}: {e}")
        return 4
    for line in lines(programs):
        print(line)
    stopped = {"STOPPED", "EXITED", "FATAL", "UNKNOWN"}
    return 3 if any(p["statename"] in stopped for p in programs) else 0


if __name__ == "__main__":
    sys.exit(main())
