"""tests/kvcache_server.py — what the kvcache tests share: start a kvcache
on an ephemeral loopback port and learn its loop and port from what it
prints; fail with a message."""
import subprocess
import sys
import time


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def start(srv, threads, limit_mib, extra):
    """Starts srv -p 0 -t threads -m limit_mib extra...; returns
    (process, loop name or None, port).  Fails when no port is printed
    within 10 s."""
    p = subprocess.Popen([srv, "-p", "0", "-t", str(threads), "-m", str(limit_mib)] + extra,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    loop = port = None
    deadline = time.time() + 10
    while time.time() < deadline and port is None:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("loop "):
            loop = line.split()[1]
        if line.startswith("port "):
            port = int(line.split()[1])
    if port is None:
        p.kill()
        fail("kvcache printed no port")
    return p, loop, port
