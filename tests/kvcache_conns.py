#!/usr/bin/env python3
"""tests/kvcache_conns.py KVCACHE — examples/kvcache against hostile clients,
with each event loop (io_uring, then epoll with -E): a client that sends half
a command (a line, then a value) and stalls while others are served; 10,000
idle connections held open while a client still gets answers; clients gone
in the middle of a value.  Each time: the right replies, the server stays
up, regio's committed bytes stay under the hard limit (-m 64) and so does
the process's RSS.

RLIMIT_NOFILE is raised to its hard limit (the server raises its own);
exit 77 (skip) when that is below 10,000 + headroom."""
import resource
import socket
import sys
import time

from kvcache_server import fail, start

IDLE = 10000
LIMIT_MIB = 64

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def reply(s, end=b"\r\n"):
    buf = b""
    while not buf.endswith(end):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf

def ask(port, req, end=b"\r\n"):
    s = connect(port)
    s.sendall(req)
    r = reply(s, end)
    s.close()
    return r

def stats(port):
    out = {}
    for line in ask(port, b"stats\r\n", b"END\r\n").decode().splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == "STAT":
            out[f[1]] = f[2]
    return out

def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

def check(name, want, got):
    if want != got:
        fail("%s: expected %r got %r" % (name, want, got))
    print("ok:", name)

def check_memory(p, port, when):
    st = stats(port)
    limit = int(st["regio_limit"])
    sysb = int(st["regio_sys"])
    rss = vm_kib(p.pid, "VmRSS") * 1024
    print("  %s: regio_sys %.1f MiB, RSS %.1f MiB, limit %d MiB, connections %s"
          % (when, sysb / 2**20, rss / 2**20, limit >> 20, st["curr_connections"]))
    if sysb > limit:
        fail("%s: regio_sys %d over the limit %d" % (when, sysb, limit))
    # The server's -m is the memory budget of the whole process: regio's own
    # limit is -m less what the process holds outside regio, so RSS is
    # checked against -m, not against regio's share of it.
    if rss > (LIMIT_MIB << 20) * 105 // 100:
        fail("%s: RSS %d over -m %d MiB + 5%%" % (when, rss, LIMIT_MIB))
    return st

def suite(srv, extra):
    p, loop, port = start(srv, 2, LIMIT_MIB, extra)
    print("== %s loop" % loop)
    try:
        # Half a command line, then a stall: others are served meanwhile.
        stall = connect(port)
        stall.sendall(b"get ha")
        check("served while a line is half sent", b"STORED\r\n", ask(port, b"set half 0 0 2\r\nhi\r\n"))
        time.sleep(0.2)
        stall.sendall(b"lf\r\n")
        check("the half line completes", b"VALUE half 0 2\r\nhi\r\nEND\r\n", reply(stall, b"END\r\n"))
        # Half a value, then a stall.
        stall.sendall(b"set v 0 0 10\r\nabc")
        check("served while a value is half sent", b"END\r\n", ask(port, b"get v\r\n"))
        time.sleep(0.2)
        stall.sendall(b"defghij\r\n")
        check("the half value completes", b"STORED\r\n", reply(stall))
        stall.close()
        # Gone in the middle of a value, many times over.
        for i in range(200):
            s = connect(port)
            s.sendall(b"set gone%d 0 0 1000\r\n" % i + b"x" * 500)
            s.close()
        check("values cut by a disconnect are not stored", b"END\r\n", ask(port, b"get gone0 gone199\r\n"))

        # 10,000 idle connections.
        idle = []
        for i in range(IDLE):
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(("127.0.0.1", port))
                idle.append(s)
            except OSError as e:
                fail("idle connection %d: %s" % (i, e))
        # every one of them answered (accepted by the server, not just queued)
        deadline = time.time() + 30
        while time.time() < deadline and int(stats(port)["curr_connections"]) < IDLE:
            time.sleep(0.2)
        st = check_memory(p, port, "%d idle connections" % IDLE)
        if int(st["curr_connections"]) < IDLE:
            fail("only %s of %d connections accepted" % (st["curr_connections"], IDLE))
        print("ok: %d idle connections held" % IDLE)
        check("served beside 10,000 idle connections", b"STORED\r\n", ask(port, b"set busy 0 0 3\r\nyes\r\n"))
        # a few of the idle ones wake up and are answered
        for s in idle[::1000]:
            s.sendall(b"get busy\r\n")
        for s in idle[::1000]:
            if reply(s, b"END\r\n") != b"VALUE busy 0 3\r\nyes\r\nEND\r\n":
                fail("an idle connection that woke up got a wrong reply")
        print("ok: idle connections that wake up are answered")
        # half of them leave with half a command sent
        for i, s in enumerate(idle):
            if i % 2:
                s.sendall(b"set x 0 0 5\r\nab")
            s.close()
        idle = []
        deadline = time.time() + 30
        while time.time() < deadline and int(stats(port)["curr_connections"]) > 5:
            time.sleep(0.2)
        check_memory(p, port, "after they left")
        check("still serving", b"VALUE busy 0 3\r\nyes\r\nEND\r\n", ask(port, b"get busy\r\n", b"END\r\n"))
        if p.poll() is not None:
            fail("server died")
    finally:
        p.kill()
        p.wait()

def main():
    srv = sys.argv[1]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = IDLE + 200
    if hard != resource.RLIM_INFINITY and hard < want:
        print("RLIMIT_NOFILE hard limit %d < %d: skip" % (hard, want))
        sys.exit(77)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as e:
        print("cannot raise RLIMIT_NOFILE (%s): skip" % e)
        sys.exit(77)
    suite(srv, [])
    suite(srv, ["-E"])

if __name__ == "__main__":
    main()
