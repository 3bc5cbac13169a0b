"""A small server on 127.0.0.1 speaking the Anthropic Messages dialect (POST /v1/messages,
streamed), standing in for a hosted upstream in the routing-policy tests. What it answers is
chosen by the request's model name:

- "stub-text": a text answer, "Hello from the stub." in three deltas, stop_reason end_turn;
- "stub-tool": a tool_use block calling get_weather {"city": "Paris"} in two JSON pieces;
- "stub-think": a thinking block then text;
- "stub-die": message_start and one delta, then the connection is dropped;
- "stub-slow": a delta every 50 ms for up to 20 s (to see a client's disconnect cancel it);
- "stub-401": an authentication error (HTTP 401, Anthropic's error object).

It counts requests and keeps their bodies and headers, and counts the slow streams whose
reader went away before the end.
"""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Stub:
    def __init__(self):
        self.requests = []  # (headers dict, body dict)
        self.cancelled = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                with stub.lock:
                    stub.requests.append((dict(self.headers), body))
                if self.path != "/v1/messages":
                    return self.whole(404, {"type": "error", "error": {
                        "type": "not_found_error", "message": f"no route {self.path}"}})
                model = body.get("model", "")
                if model == "stub-401":
                    return self.whole(401, {"type": "error", "error": {
                        "type": "authentication_error", "message": "invalid x-api-key"}})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    stub.stream(self, model)
                except (BrokenPipeError, ConnectionResetError):
                    with stub.lock:
                        stub.cancelled += 1
                self.close_connection = True

            def whole(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def event(h, name, obj):
        obj = {"type": name, **obj}
        h.wfile.write(f"event: {name}\ndata: {json.dumps(obj)}\n\n".encode())
        h.wfile.flush()

    def stream(self, h, model):
        ev = lambda name, **kw: self.event(h, name, kw)  # noqa: E731
        ev("message_start", message={"id": "msg_stub", "type": "message", "role": "assistant",
                                     "model": model, "content": [], "stop_reason": None,
                                     "usage": {"input_tokens": 17, "output_tokens": 0}})
        ev("ping")
        if model == "stub-tool":
            ev("content_block_start", index=0, content_block={
                "type": "tool_use", "id": "toolu_stub1", "name": "get_weather", "input": {}})
            ev("content_block_delta", index=0, delta={"type": "input_json_delta",
                                                      "partial_json": "{\"city\": "})
            ev("content_block_delta", index=0, delta={"type": "input_json_delta",
                                                      "partial_json": "\"Paris\"}"})
            ev("content_block_stop", index=0)
            ev("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9})
            ev("message_stop")
            return
        if model == "stub-think":
            ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""})
            ev("content_block_delta", index=0, delta={"type": "thinking_delta",
                                                      "thinking": "Let me think."})
            ev("content_block_stop", index=0)
        idx = 1 if model == "stub-think" else 0
        ev("content_block_start", index=idx, content_block={"type": "text", "text": ""})
        if model == "stub-die":
            ev("content_block_delta", index=idx, delta={"type": "text_delta", "text": "Half"})
            h.connection.shutdown(2)  # the upstream goes away mid-stream
            return
        if model == "stub-slow":
            for _ in range(400):
                ev("content_block_delta", index=idx, delta={"type": "text_delta", "text": "."})
                time.sleep(0.05)
        for piece in ("Hello", " from the", " stub."):
            ev("content_block_delta", index=idx, delta={"type": "text_delta", "text": piece})
        ev("content_block_stop", index=idx)
        ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 5})
        ev("message_stop")
