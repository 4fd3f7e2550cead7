"""What a debugger could do to process PID: attach (PTRACE_SEIZE) and read its memory.

Usage: ptrace_probe.py PID HOLD_SECONDS [thread]
With `thread`, attaches to one of PID's other threads instead of its main thread (ptrace
works thread by thread). Prints one JSON line: {"attach_errno": E, "mem_errno": E} (0: it worked), then holds the
attachment for HOLD_SECONDS before exiting (the kernel detaches on exit).
"""
import ctypes
import json
import os
import sys
import time

PTRACE_SEIZE = 0x4206

pid = int(sys.argv[1])
hold = float(sys.argv[2])
target = pid
if len(sys.argv) > 3 and sys.argv[3] == "thread":
    target = max(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
attach_errno = 0 if libc.ptrace(PTRACE_SEIZE, target, None, None) == 0 else ctypes.get_errno()

mem_errno = 0
try:
    with open(f"/proc/{pid}/maps") as maps:
        first = maps.readline().split()[0].split("-")[0]
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(int(first, 16))
        mem.read(16)
except OSError as e:
    mem_errno = e.errno or -1

print(json.dumps({"attach_errno": attach_errno, "mem_errno": mem_errno}), flush=True)
time.sleep(hold)
