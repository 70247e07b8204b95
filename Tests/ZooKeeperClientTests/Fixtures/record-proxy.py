# Recording TCP proxy: forwards 127.0.0.1:LISTEN to 127.0.0.1:TARGET and appends every ZooKeeper
# frame (4-byte length + body) to OUT as "<direction> <hex of body>" lines (C = client to server).
import socket, sys, threading
listen, target, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
def pump(src, dst, tag):
    buf = b""
    while True:
        d = src.recv(65536)
        if not d: break
        dst.sendall(d); buf += d
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + n: break
            with lock, open(out, "a") as f: f.write(f"{tag} {buf[4:4+n].hex()}\n")
            buf = buf[4+n:]
    try: dst.shutdown(socket.SHUT_WR)
    except OSError: pass
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", listen)); s.listen()
while True:
    c, _ = s.accept()
    u = socket.create_connection(("127.0.0.1", target))
    with lock, open(out, "a") as f: f.write("# connection\n")
    threading.Thread(target=pump, args=(c, u, "C"), daemon=True).start()
    threading.Thread(target=pump, args=(u, c, "S"), daemon=True).start()
