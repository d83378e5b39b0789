"""A raw-frame HTTP/2 (h2c, prior knowledge) client on Python's h2 library (Debian's python3-h2).

One request, described by a JSON argument:
  {"port": N} or {"unix": "/path"}, "headers": [[name, value], ...] (sent in this order, duplicates kept),
  "body": "text" or null (null: END_STREAM on the HEADERS frame), "end": true/false (END_STREAM after the body),
  "reset": "none" | "on-signal" (RST_STREAM CANCEL once a line arrives on stdin) | "after-head" (once the
  response head arrives).
Prints one JSON line: {"status", "headers", "body", "reset", "stream_reset"} where stream_reset is the code of
an RST_STREAM the server sent. Exits after 10 s at most.
"""
import json
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events

spec = json.loads(sys.argv[1])
if "unix" in spec:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(spec["unix"])
else:
    sock = socket.create_connection(("127.0.0.1", spec["port"]))
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_outbound_headers=False, normalize_outbound_headers=False))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
sid = conn.get_next_available_stream_id()
body = spec.get("body")
conn.send_headers(sid, [tuple(h) for h in spec["headers"]], end_stream=body is None)
if body is not None:
    conn.send_data(sid, body.encode(), end_stream=bool(spec.get("end")))
sock.sendall(conn.data_to_send())

result = {"status": None, "headers": [], "body": "", "reset": False, "stream_reset": None}
done = False
deadline = time.time() + 10
mode = spec.get("reset", "none")


def reset():
    conn.reset_stream(sid, 8)
    sock.sendall(conn.data_to_send())
    result["reset"] = True


while not done and time.time() < deadline:
    watch = [sock] + ([sys.stdin] if mode == "on-signal" and not result["reset"] else [])
    ready, _, _ = select.select(watch, [], [], 0.2)
    if sys.stdin in ready:
        sys.stdin.readline()
        reset()
        # Let the frame leave before the connection closes.
        time.sleep(0.2)
        done = True
        break
    if sock not in ready:
        continue
    data = sock.recv(65535)
    if not data:
        break
    for event in conn.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived) and event.stream_id == sid:
            result["headers"] = [[k, v] for k, v in event.headers]
            result["status"] = int(dict(event.headers)[":status"])
            if mode == "after-head":
                reset()
                time.sleep(0.2)
                done = True
        elif isinstance(event, h2.events.DataReceived) and event.stream_id == sid:
            result["body"] += event.data.decode("utf-8", "replace")
            conn.acknowledge_received_data(event.flow_controlled_length, sid)
        elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
            done = True
        elif isinstance(event, h2.events.StreamReset) and event.stream_id == sid:
            result["stream_reset"] = event.error_code
            done = True
    out = conn.data_to_send()
    if out:
        sock.sendall(out)
sock.close()
print(json.dumps(result))
