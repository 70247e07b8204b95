# Hand-written jute (struct) client: connect, a failing multi, a succeeding multi, close.
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def send(b): s.sendall(struct.pack(">i", len(b)) + b)
def recv():
    n = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]; return s.recv(n, socket.MSG_WAITALL)
def ustr(x): b = x.encode(); return struct.pack(">i", len(b)) + b
def buf(b): return struct.pack(">i", len(b)) + b
acl = struct.pack(">i", 1) + struct.pack(">i", 31) + ustr("world") + ustr("anyone")
send(struct.pack(">iqiq", 0, 0, 10000, 0) + buf(b"\0" * 16) + b"\0"); recv()
def multi(xid, ops):
    body = struct.pack(">ii", xid, 14)
    for t, rec in ops: body += struct.pack(">i?i", t, False, -1) + rec
    body += struct.pack(">i?i", -1, True, -1)
    send(body); return recv()
create = lambda p, d: ustr(p) + buf(d) + acl + struct.pack(">i", 0)
check = lambda p, v: ustr(p) + struct.pack(">i", v)
setd = lambda p, d, v: ustr(p) + buf(d) + struct.pack(">i", v)
delete = lambda p, v: ustr(p) + struct.pack(">i", v)
multi(1, [(1, create("/m1", b"a")), (13, check("/w", 99))])
multi(2, [(1, create("/m1", b"a")), (13, check("/w", 1)), (5, setd("/w", b"v2", 1)), (2, delete("/m1", -1))])
send(struct.pack(">ii", 3, -11)); recv()
