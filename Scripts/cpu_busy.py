#!/usr/bin/env python3
"""Processes using the CPU right now, for the benchmarks' "is the machine quiet?" check.

    python3 Scripts/cpu_busy.py [--exclude PID ...] [--json]

Samples every process's CPU time (/proc/PID/stat) twice, one second apart, and lists those that used more than
20% of a core in between. Unlike `ps`'s %CPU (an average over the process's whole life), this sees a stopped
training run as idle and a just-started job as busy. Standard library only.
"""
import argparse
import json
import os
import time


def cpu_ticks():
    """pid -> (user + system clock ticks, command name) for every readable process."""
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                text = handle.read()
        except OSError:
            continue
        # comm is in parentheses and may hold spaces; the fields after it are space-separated.
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        ticks[int(entry)] = (int(fields[11]) + int(fields[12]), name)
    return ticks


def busy_processes(threshold=20.0, seconds=1.0, exclude=()):
    """[{pid, pcpu, comm}] of processes above `threshold` % of one core over the next `seconds`."""
    before = cpu_ticks()
    time.sleep(seconds)
    after = cpu_ticks()
    per_second = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (used, name) in after.items():
        if pid in exclude or pid not in before:
            continue
        percent = 100.0 * (used - before[pid][0]) / per_second / seconds
        if percent > threshold:
            busy.append({"pid": pid, "pcpu": round(percent, 1), "comm": name})
    return sorted(busy, key=lambda process: -process["pcpu"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exclude", type=int, nargs="*", default=[])
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    busy = busy_processes(exclude=set(arguments.exclude) | {os.getpid(), os.getppid()})
    if arguments.json:
        print(json.dumps(busy))
    else:
        for process in busy:
            print(f"    {process['pid']:>7} {process['pcpu']:5.0f}%  {process['comm']}")


if __name__ == "__main__":
    main()
