"""bench/cpu.py reads the kernel's process accounting records (struct acct_v3)."""

from __future__ import annotations

from bench.cpu import ACCT_V3, comp_t, records


def acct(name: bytes, uid: int, utime: int, stime: int, version: int = 3) -> bytes:
    fields = [0, version, 0, 0, uid, uid, 42, 1, 0, 0.5, utime, stime, 0, 0, 0, 0, 0, 0, name]
    return ACCT_V3.pack(*fields)


def test_comp_t_is_a_13_bit_mantissa_with_a_base_8_exponent():
    assert comp_t(100) == 100
    assert comp_t((2 << 13) | 5) == 5 * 64  # 5 x 8^2


def test_each_record_gives_its_name_uid_and_cpu_seconds():
    data = acct(b"supervisorctl", 0, 9, 2) + acct(b"u1-b1", 200007, (1 << 13) | 100, 0)
    data += acct(b"old", 0, 1, 1, version=2) + b"\0" * 10  # another format, a torn end
    assert records(data) == [("supervisorctl", 0, 0.11, 42, 1), ("u1-b1", 200007, 8.0, 42, 1)]
