"""An RFC 5425 syslog receiver for tests: TLS (1.2 or later) on 127.0.0.1, octet-counted frames (MSG-LEN SP MSG).

usage: syslog_tls_listener.py PORT CERT KEY OUT [CLIENT_CA]
Writes one JSON line per frame to OUT: {"frame": <the syslog message, UTF-8>, "client": <client cert subject CN or
null>}. With CLIENT_CA a client certificate signed by it is required (mutual TLS). Prints "ready" once listening.
A handshake failure is written as {"error": ...} and the listener goes on."""
import json
import socket
import ssl
import sys
import threading

port, cert, key, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
client_ca = sys.argv[5] if len(sys.argv) > 5 else None

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.minimum_version = ssl.TLSVersion.TLSv1_2
context.load_cert_chain(cert, key)
if client_ca:
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client_ca)

lock = threading.Lock()


def write(record):
    with lock, open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve(raw):
    try:
        conn = context.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as e:
        write({"error": str(e)})
        raw.close()
        return
    peer = conn.getpeercert()
    cn = None
    if peer:
        for rdn in peer.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
    try:
        while True:
            length = b""
            while True:
                c = read_exact(conn, 1)
                if c is None:
                    return
                if c == b" ":
                    break
                length += c
            frame = read_exact(conn, int(length))
            if frame is None:
                return
            write({"frame": frame.decode("utf-8"), "client": cn, "version": conn.version()})
    finally:
        conn.close()


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(8)
print("ready", flush=True)
while True:
    raw, _ = server.accept()
    threading.Thread(target=serve, args=(raw,), daemon=True).start()
