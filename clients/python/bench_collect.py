"""Measures the Python client: the cost of collect() in the scoring thread,
and how many rows the background sender delivers per second.

    python3 clients/python/bench_collect.py                      # against a stdlib stand-in server
    BENCH_ENDPOINT=http://127.0.0.1:4320 python3 clients/python/bench_collect.py   # a running collector
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("MODELDATA_BUFFER_ROWS", "1000000")
os.environ.setdefault("MODELDATA_MODEL_CONFIG_MAP", os.devnull)

import modeldata_collector as mdc  # noqa: E402


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def main():
    endpoint = os.environ.get("BENCH_ENDPOINT")
    if not endpoint:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        endpoint = "http://127.0.0.1:%d" % server.server_address[1]
    dc = mdc.ModelDataCollector("bench_model", model_version="1", feature_names=["f%d" % i for i in range(10)],
                                endpoint=endpoint)
    row = [1.5, 2, "abc", True, None, 3.25, 7, "xyz", 0.001, 42]
    for rows_per_call, calls in ((1, 20000), (100, 1000)):
        data = [row] * rows_per_call
        start = time.perf_counter()
        for _ in range(calls):
            dc.collect(data)
        queued = time.perf_counter()
        if not mdc.flush(timeout=300):
            print("flush timed out", file=sys.stderr)
        done = time.perf_counter()
        print("%3d row(s) x 10 features per collect(): %6.1f us per collect() call, %7.0f rows/s delivered"
              % (rows_per_call, (queued - start) / calls * 1e6, rows_per_call * calls / (done - start)))
    print(json.dumps(mdc.stats()))


if __name__ == "__main__":
    main()
