"""Peak memory of the current process, for the benches."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM, of its current address space).

    Not `getrusage(RUSAGE_SELF).ru_maxrss`: Linux carries that high-water mark across fork
    and exec, so a child spawned by a 300 MB parent reports 300 MB however little it uses
    (measured: 311 MB by ru_maxrss, 11 MB by VmHWM, for `python -c` under such a parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")
