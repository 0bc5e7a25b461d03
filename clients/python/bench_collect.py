"""A scoring loop that measures the Python client from the scoring thread.

Each run() collects 1-5 input rows (cycling, 3 on average) and as many
predictions carrying the inputs' correlations: two collect() calls, the shape
of an azureml-monitoring scoring script. It prints one JSON line when the loop
ends: rows collected, the collect() latency p50/p99/max, then (after the
flush) rows/s delivered and the client's counters.

    python3 clients/python/bench_collect.py                       # against a stdlib stand-in server
    python3 clients/python/bench_collect.py --endpoint http://127.0.0.1:4320 --seconds 10 --rate 50000

The end-to-end tests (test/e2e/python_client_load_test.go) run it against
the built collector and count its rows in the CSV files: --then exit leaves
the flush to the client's exit hook, --then wait keeps the process alive
after the loop until it is sent SIGTERM, --server-handler installs a SIGTERM
handler before the collectors exist, as a scoring server does.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("MODELDATA_MODEL_CONFIG_MAP", os.devnull)


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


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="the collector (default: a stand-in server in this process)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the loop (default 10)")
    parser.add_argument("--rate", type=float, default=0, help="rows/s to collect, inputs and predictions "
                        "together (default 0: as fast as possible)")
    parser.add_argument("--features", type=int, default=5, help="input features per row (default 5)")
    parser.add_argument("--then", choices=("flush", "exit", "wait"), default="flush",
                        help="after the loop: flush and report rows/s delivered (default); exit at once "
                             "(the client flushes at exit); or wait for SIGTERM")
    parser.add_argument("--server-handler", action="store_true",
                        help="install a SIGTERM handler that exits the process, before the collectors exist")
    args = parser.parse_args()

    if args.server_handler:
        def server_shutdown(signum, frame):
            print(json.dumps({"server_handler": signum}), flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, server_shutdown)

    import modeldata_collector as mdc

    endpoint = args.endpoint
    if not endpoint:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        endpoint = "http://127.0.0.1:%d" % server.server_address[1]
    names = ["f%d" % i for i in range(args.features)]
    inputs = mdc.ModelDataCollector("bench_model", "inputs", names, model_version="1", endpoint=endpoint)
    predictions = mdc.ModelDataCollector("bench_model", "predictions", ["score"], model_version="1",
                                         endpoint=endpoint)
    row = [1.5, 2, "abc", True, None, 3.25, 7, "xyz", 0.001, 42] * (args.features // 10 + 1)
    batches = [[row[:args.features]] * k for k in range(1, 6)]
    scores = [[0.5] * k for k in range(1, 6)]

    latencies = []
    clock = time.perf_counter_ns
    rows = calls = 0
    start = time.perf_counter()
    end = start + args.seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if args.rate and rows > (now - start) * args.rate:
            time.sleep(min(end - now, rows / args.rate - (now - start)))
            continue
        k = calls % 5
        t0 = clock()
        correlations = inputs.collect(batches[k])
        t1 = clock()
        predictions.collect(predictions.add_correlations(scores[k], correlations))
        t2 = clock()
        latencies.append(t1 - t0)
        latencies.append(t2 - t1)
        rows += 2 * (k + 1)
        calls += 1
    elapsed = time.perf_counter() - start
    latencies.sort()
    result = {
        "rows": rows,
        "collect_calls": 2 * calls,
        "seconds": round(elapsed, 3),
        "collected_rows_per_s": round(rows / elapsed),
        "collect_p50_us": round(percentile(latencies, 0.50) / 1000, 1),
        "collect_p99_us": round(percentile(latencies, 0.99) / 1000, 1),
        "collect_max_us": round(latencies[-1] / 1000, 1),
        "buffered_rows": mdc.stats()["buffered_rows"],  # not yet taken by the collector when the loop ended
    }
    if args.then != "flush":
        print(json.dumps(result), flush=True)
        while args.then == "wait":
            time.sleep(3600)
        return
    flushed = mdc.flush(timeout=120)
    result["flushed"] = flushed
    result["delivered_rows_per_s"] = round(rows / (time.perf_counter() - start))
    result["stats"] = mdc.stats()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
