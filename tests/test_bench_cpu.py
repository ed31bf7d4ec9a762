"""bench/cpu.py reads the kernel's process accounting records (struct acct_v3)."""

from __future__ import annotations

from bench.cpu import (
    ACCT_V3,
    INSIDE,
    ContainerSampler,
    Record,
    comp_t,
    container_cpu,
    parents,
    project_of,
    records,
)


def acct(
    name: bytes,
    uid: int,
    utime: int,
    stime: int,
    version: int = 3,
    pid: int = 42,
    ppid: int = 1,
    began: int = 1000,
    ticks: float = 50.0,
) -> bytes:
    fields = [0, version, 0, 0, uid, uid, pid, ppid, began, ticks, utime, stime]
    return ACCT_V3.pack(*fields, 0, 0, 0, 0, 0, 0, name)


def test_comp_t_is_a_13_bit_mantissa_with_a_base_8_exponent():
    assert comp_t(100) == 100
    assert comp_t((2 << 13) | 5) == 5 * 64  # 5 x 8^2


def test_each_record_gives_its_name_uid_cpu_seconds_and_life():
    data = acct(b"supervisorctl", 0, 9, 2) + acct(b"u1-b1", 200007, (1 << 13) | 100, 0)
    data += acct(b"old", 0, 1, 1, version=2) + b"\0" * 10  # another format, a torn end
    assert records(data) == [
        Record("supervisorctl", 0, 0.11, 42, 1, 1000, 1000.5),  # 50 ticks of 100 a second
        Record("u1-b1", 200007, 8.0, 42, 1, 1000, 1000.5),
    ]


def test_a_reused_pid_is_the_parent_alive_when_its_child_ended():
    """pid 500 is a shell first and a supervisord later; each child gets its own."""
    data = acct(b"sh", 0, 1, 0, pid=500, began=1000, ticks=1000)  # 1000 to 1010
    data += acct(b"cat", 0, 1, 0, pid=501, ppid=500, began=1002, ticks=100)  # ends 1003
    data += acct(b"supervisord", 0, 1, 0, pid=500, began=2000, ticks=5000)  # 2000 to 2050
    data += acct(b"python3", 0, 1, 0, pid=502, ppid=500, began=2010, ticks=200)  # ends 2012
    data += acct(b"orphan", 0, 1, 0, pid=503, ppid=999999, began=3000)  # no such parent
    assert parents(records(data), {}) == {0: "?", 1: "sh", 2: "?", 3: "supervisord", 4: "?"}
    # a parent still running, started before its child ended (start: ticks since boot)
    late = acct(b"python3", 0, 1, 0, pid=504, ppid=7, began=2_000_000_000)
    assert parents(records(late), {7: ("containerd-shim", 0, 0.0, "")}) == {0: "containerd-shim"}


def test_each_containers_cpu_is_read_from_its_cgroup_v1_or_v2(tmp_path):
    ids = ["a" * 64, "b" * 64, "c" * 64]
    v1 = tmp_path / "cpuacct" / "docker" / ids[0]
    v1.mkdir(parents=True)
    (v1 / "cpuacct.usage").write_text("2500000000\n")  # nanoseconds
    v2 = tmp_path / "docker" / ids[1]
    v2.mkdir(parents=True)
    (v2 / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    systemd = tmp_path / "system.slice" / f"docker-{ids[2]}.scope"
    systemd.mkdir(parents=True)
    (systemd / "cpu.stat").write_text("usage_usec 250000\n")
    (tmp_path / "system.slice" / "ssh.service").mkdir()  # not a container
    gone = tmp_path / "cpuacct" / "docker" / ("d" * 64)  # removed between listing and reading:
    (gone / "cpuacct.usage").mkdir(parents=True)  # a file there that cannot be read
    assert container_cpu(tmp_path) == {ids[0]: 2.5, ids[1]: 1.5, ids[2]: 0.25}


def test_containers_are_counted_by_project_removed_ones_included(monkeypatch):
    readings = iter(
        [
            {"p1": 10.0, "p2": 5.0},  # at the start
            {"p1": 12.0, "p2": 6.0, "v1": 1.0, "in": 3.0},
            {"p1": 13.0, "v1": 4.0, "in": 3.5},  # p2 removed: its last reading stays
        ]
    )
    names = {"p1": "e2econv_ann-pool-1", "p2": "e2econv_exchange_e2econv"}
    names |= {"v1": "botpool-test-vps-1a2b3c4d"}  # "in": a container of the VPS's engine
    monkeypatch.setattr("bench.cpu.containers", lambda: names)
    sampler = ContainerSampler(read=lambda: next(readings))
    sampler.sample()
    sampler.sample()
    assert sampler.by_project() == {
        "e2econv": 3.0 + 1.0,
        "botpool-test-vps-*": 4.0,
        INSIDE: 3.5,
    }
    assert project_of("botpool-probe-11023-1795914031") == "botpool-probe-*-*"
    assert project_of("botpool") == "botpool" and project_of("objective") == "objective"
