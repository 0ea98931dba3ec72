"""Reading a process tree from /proc, for the benchmarks that measure one (CPU, resident memory)."""

from __future__ import annotations

import os

_PAGE = os.sysconf("SC_PAGE_SIZE")


def processes() -> dict[int, tuple[int, int, int, str, str]]:
    """pid -> (parent, CPU ticks, RSS bytes, command line, state) of every process we can read."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended while we looked
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[21]) * _PAGE, cmd, fields[0])
    return found


def tree(procs: dict[int, tuple[int, int, int, str, str]], root: int) -> set[int]:
    members, grew = {root}, True
    while grew:
        grew = False
        for pid, row in procs.items():
            if row[0] in members and pid not in members:
                members.add(pid)
                grew = True
    return members


def tree_rss(root: int) -> int:
    """Bytes of resident memory of `root` and every descendant."""
    procs = processes()
    return sum(procs[pid][2] for pid in tree(procs, root) if pid in procs)
