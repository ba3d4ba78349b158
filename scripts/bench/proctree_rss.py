"""Resident memory of a process and all its descendants, from /proc.

    python scripts/bench/proctree_rss.py PID

Prints JSON: the sum over the tree of VmHWM (each process's peak) and VmRSS
(now), in MiB, and how many processes there were. Summing counts pages
shared between processes (libraries, copy-on-write) once per process, so
for a multi-process server it is an upper bound on the tree's footprint.
"""

import json
import os
import sys


def parents():
    """Map every live pid to its parent pid."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                # The command name is in parentheses and may hold spaces.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry)] = int(fields[1])
    return out


def tree(root):
    ppid = parents()
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in ppid.items() if parent in frontier]
        found += children
        frontier = children
    return found


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    pids = tree(int(sys.argv[1]))
    print(
        json.dumps(
            {
                "peak_mib": round(sum(status_kib(p, "VmHWM") for p in pids) / 1024, 1),
                "rss_mib": round(sum(status_kib(p, "VmRSS") for p in pids) / 1024, 1),
                "processes": len(pids),
            }
        )
    )


if __name__ == "__main__":
    main()
