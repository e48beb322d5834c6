#!/usr/bin/env python3
"""examples/kvcache/paced.py PID PORT RATE SECONDS — a light, steady load:
one connection to 127.0.0.1:PORT sends `get k` (a 1,000-byte item it stores
first) RATE times a second for SECONDS, then prints the gets done and the
CPU the server process PID spent meanwhile (utime+stime of all its threads,
from /proc), in ms and µs per get.  For what a busy poll costs when the
server is not saturated (kvcache -B)."""
import os
import socket
import sys
import time


def cpu_ticks(pid):
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    pid, port, rate, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    if rate <= 0 or secs <= 0:
        sys.exit("paced.py: RATE and SECONDS must be positive")
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"set k 0 0 1000\r\n" + b"x" * 1000 + b"\r\n")
    s.recv(100)
    hz = os.sysconf("SC_CLK_TCK")
    c0 = cpu_ticks(pid)
    gap = 1.0 / rate
    t = time.monotonic()
    end = t + secs
    n = 0
    while t < end:
        s.sendall(b"get k\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            b = s.recv(4096)
            if not b:
                sys.exit("paced.py: server closed the connection")
            buf += b
        n += 1
        t += gap
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)
    ms = (cpu_ticks(pid) - c0) * 1000 / hz
    print(f"{n} gets in {secs:g} s, server CPU {ms:.0f} ms, {ms * 1000 / n:.1f} us per get")


if __name__ == "__main__":
    main()
