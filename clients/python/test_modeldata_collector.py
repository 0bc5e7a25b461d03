"""Unit tests of modeldata_collector against a real HTTP server on 127.0.0.1.

Run: python3 -m unittest discover clients/python
"""

import contextlib
import io
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import modeldata_collector as mdc  # noqa: E402

# Every test builds its own collectors against its own server; none reads the
# environment of the machine running the tests.
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if not k.startswith(("MODELDATA_", "AML_MODEL_DC_")) and k != "SERVICE_NAME"}
CLEAN_ENV["MODELDATA_MODEL_CONFIG_MAP"] = os.devnull


def fork_worker_that_collects(dc):
    """Forks a child, as gunicorn forks a worker after init(), that collects
    one row and flushes it; the child exits 0 when the row was sent."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            dc.collect([["child"]])
            code = 0 if mdc.flush(timeout=10) else 2
        finally:
            os._exit(code)
    return pid


class CollectServer:
    """A stand-in collector: POST /v1/collect/batch (NDJSON) and /v1/collect,
    answering as the modeldata receiver does. Records every collect group it
    accepts, in order, and every HTTP request; scripted answers go first."""

    def __init__(self, port=0, batch_route=True):
        self.requests = []  # accepted collect groups
        self.posts = []  # (path, headers, number of groups) of every HTTP request
        self.answers = []  # (status, body, headers) served first, one per HTTP request; status 0: taken, no answer
        self.refuse = None  # group -> error message, to refuse single groups of a batch
        self.max_body = None  # bytes: larger bodies get 413
        self.keys = set()  # Idempotency-Keys of accepted requests: a resend is answered, not recorded again
        self.arrived = 0  # HTTP requests read, answered or not
        self.hold = threading.Event()  # cleared: requests wait before they are answered
        self.hold.set()
        self.hold_body = threading.Event()  # cleared: answers stop after their headers
        self.hold_body.set()
        self.lock = threading.Lock()
        self.received = threading.Condition(self.lock)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as Go servers do; else each answer waits for a delayed ACK

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.arrived += 1
                    outer.received.notify_all()
                outer.hold.wait()
                batch = self.path.endswith("/batch")
                if batch and not batch_route:
                    return self.answer(404, '{"error":"404 page not found"}', {})
                groups = [json.loads(line) for line in body.split(b"\n") if line.strip()] if batch else [json.loads(body)]
                key = self.headers.get("Idempotency-Key")
                with outer.lock:
                    outer.posts.append((self.path, dict(self.headers), len(groups)))
                    if key in outer.keys:
                        return self.answer(200, '{"repeated":true}', {"Idempotent-Replayed": "true"})
                    answer = outer.answers.pop(0) if outer.answers else None
                    if answer is None and outer.max_body is not None and len(body) > outer.max_body:
                        answer = (413, '{"error":"too large"}', {})
                    rejected = []
                    if answer is None or 200 <= answer[0] < 300 or answer[0] == 0:
                        if key:
                            outer.keys.add(key)
                        for i, group in enumerate(groups):
                            why = outer.refuse(group) if outer.refuse else None
                            if why:
                                rejected.append({"group": i, "status": 400, "error": why})
                            else:
                                outer.requests.append(group)
                    outer.received.notify_all()
                if answer is None:
                    accepted = sum(len(g["data"]) for i, g in enumerate(groups) if i not in {r["group"] for r in rejected})
                    status = 400 if rejected and len(rejected) == len(groups) else 200
                    answer = (status, json.dumps({"groups": len(groups), "accepted": accepted, "rejected": rejected}), {})
                if answer[0] == 0:  # the rows are taken, the answer is lost (the collector died)
                    self.close_connection = True
                    return
                self.answer(*answer)

            def answer(self, status, text, headers):
                data = text.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.flush()
                outer.hold_body.wait()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("got %d requests, want %d: %r" % (len(self.requests), n, self.requests))
                self.received.wait(remaining)
            return list(self.requests)

    def wait_arrived(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.arrived < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("%d requests arrived, want %d" % (self.arrived, n))
                self.received.wait(remaining)

    def close(self):
        self.hold.set()
        self.hold_body.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d" % port


class FakeArray:
    """Duck-typed numpy.ndarray: what the client may touch of one."""

    def __init__(self, rows):
        self._rows = rows
        self.ndim = 2 if rows and isinstance(rows[0], list) else 1
        self.shape = (len(rows), len(rows[0])) if self.ndim == 2 else (len(rows),)

    def tolist(self):
        return [list(r) for r in self._rows] if self.ndim == 2 else list(self._rows)

    def __iter__(self):
        raise AssertionError("iterate an ndarray through tolist(), never element by element")


class FakeScalar:
    """Duck-typed numpy scalar (numpy.float32 and friends)."""

    dtype = "float32"

    def __init__(self, value):
        self.value = value

    def item(self):
        return self.value


class FakeDataFrame:
    """Duck-typed pandas.DataFrame."""

    def __init__(self, columns):
        self._columns = dict(columns)

    @property
    def columns(self):
        return list(self._columns)

    def to_numpy(self, dtype=None):
        return FakeArray([list(r) for r in zip(*self._columns.values())])

    def assign(self, **kwargs):
        n = len(next(iter(self._columns.values())))
        cols = dict(self._columns)
        for k, v in kwargs.items():
            cols[k] = [v] * n
        return FakeDataFrame(cols)


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.env = mock.patch.dict(os.environ, CLEAN_ENV, clear=True)
        self.env.start()
        self.addCleanup(self.env.stop)
        self.server = CollectServer()
        self.addCleanup(self.server.close)
        mdc.set_request_id(None)

    def collector(self, designation="inputs", **kwargs):
        kwargs.setdefault("model_version", "10")
        kwargs.setdefault("endpoint", self.server.url)
        return mdc.ModelDataCollector("best_model", designation=designation, **kwargs)

    def test_collect_sends_rows_with_the_returned_correlations(self):
        dc = self.collector(feature_names=["age", "income", "city"])
        corr = dc.collect([[31, 5000.5, "Redmond"], [45, 1200, "Zürich"]], user_correlation_id="user42")
        (req,) = self.server.wait_for(1)
        self.assertEqual(req["model_name"], "best_model")
        self.assertEqual(req["model_version"], "10")
        self.assertEqual(req["designation"], "inputs")
        self.assertEqual(req["feature_names"], ["age", "income", "city"])
        self.assertEqual(req["data"], [[31, 5000.5, "Redmond"], [45, 1200, "Zürich"]])
        self.assertEqual(req["correlation_id"], corr[mdc.CORRELATION_ID])
        self.assertEqual(req["scoring_timestamp"], corr[mdc.SCORING_TIMESTAMP])
        self.assertEqual(req["request_id"], corr[mdc.REQUEST_ID])
        self.assertTrue(corr[mdc.CORRELATION_ID].startswith("user42-"))
        self.assertRegex(corr[mdc.SCORING_TIMESTAMP], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
        self.assertNotIn("correlation_ids", req)
        self.assertEqual(self.server.posts[0][1]["Content-Type"], "application/x-ndjson")
        self.assertTrue(self.server.posts[0][0].endswith("/v1/collect/batch"), self.server.posts[0][0])

    def test_predictions_carry_the_inputs_correlations(self):
        inputs = self.collector(feature_names=["a", "b"])
        predictions = self.collector("predictions", feature_names=["score"])
        cases = {
            "list": lambda corr: predictions.add_correlations([0.9], corr),
            "ndarray column": lambda corr: predictions.add_correlations(FakeArray([0.9, 0.1]), corr),
            "dataframe": lambda corr: mdc.add_correlations(FakeDataFrame({"score": [0.9, 0.1]}), corr),
            "dicts": lambda corr: mdc.add_correlations([{"score": 0.9}], corr),
        }
        for i, (name, attach) in enumerate(cases.items()):
            with self.subTest(name):
                mdc.set_request_id("req-%d" % i)
                corr = inputs.collect([[1, 2]])
                mdc.set_request_id(None)  # the prediction must not need it
                time.sleep(0.002)  # a later call would get a later timestamp
                predictions.collect(attach(corr))
                reqs = self.server.wait_for(2 * (i + 1))
                inp, pred = reqs[-2], reqs[-1]
                self.assertEqual(inp["request_id"], "req-%d" % i)
                for key in ("correlation_id", "scoring_timestamp", "request_id"):
                    self.assertEqual(pred[key], inp[key], key)
                self.assertEqual(pred["designation"], "predictions")
                self.assertEqual(pred["feature_names"], ["score"])
                self.assertNotIn("correlation_ids", pred)
                self.assertTrue(all(len(r) == 1 for r in pred["data"]), pred["data"])

    def test_input_shapes(self):
        nan = float("nan")
        cases = [
            ("list of lists", ["a", "b"], [[1, 2], [3, 4]], ["a", "b"], [[1, 2], [3, 4]]),
            ("flat list is one row", ["a", "b"], [1, 2], ["a", "b"], [[1, 2]]),
            ("ndarray 2-D", ["a", "b"], FakeArray([[1, 2], [3, 4]]), ["a", "b"], [[1, 2], [3, 4]]),
            ("ndarray 1-D is one row", ["a", "b", "c"], FakeArray([1, 2, 3]), ["a", "b", "c"], [[1, 2, 3]]),
            ("dataframe names its columns", ["x"], FakeDataFrame({"b": [1, 2], "a": ["u", "v"]}),
             ["b", "a"], [[1, "u"], [2, "v"]]),
            ("dicts in feature_names order", ["a", "b"], [{"b": 2, "a": 1}, {"a": 3, "c": True}],
             ["a", "b", "c"], [[1, 2, None], [3, None, True]]),
            ("one dict", None, {"x": 1, "y": "z"}, ["x", "y"], [[1, "z"]]),
            ("columnar dict", None, {"x": [1, 2], "y": [3, 4]}, ["x", "y"], [[1, 3], [2, 4]]),
            ("scalar", ["p"], 0.5, ["p"], [[0.5]]),
            ("special cells", ["f", "n", "s", "l"], [[nan, FakeScalar(1.5), b"hi", [1, 2]]],
             ["f", "n", "s", "l"], [["nan", 1.5, "hi", "[1, 2]"]]),
        ]
        for i, (name, feature_names, data, want_names, want_rows) in enumerate(cases):
            with self.subTest(name):
                dc = self.collector(feature_names=feature_names)
                dc.collect(data)
                req = self.server.wait_for(i + 1)[-1]
                self.assertEqual(req.get("feature_names"), want_names)
                self.assertEqual(req["data"], want_rows)

    def test_dataframe_with_per_row_correlations(self):
        df = FakeDataFrame({"score": [0.1, 0.2], mdc.CORRELATION_ID: ["c1", "c2"],
                            mdc.SCORING_TIMESTAMP: ["2020-08-13T15:54:16.691697"] * 2, mdc.REQUEST_ID: ["r", "r"]})
        corr = self.collector("predictions").collect(df)
        (req,) = self.server.wait_for(1)
        self.assertEqual(req["feature_names"], ["score"])
        self.assertEqual(req["data"], [[0.1], [0.2]])
        self.assertEqual(req["correlation_ids"], ["c1", "c2"])
        self.assertEqual(req["scoring_timestamp"], "2020-08-13T15:54:16.691697")
        self.assertEqual(corr[mdc.REQUEST_ID], "r")

    def test_constructor_takes_the_original_argument_order(self):
        # azureml-monitoring: ModelDataCollector(model_name, designation='default', feature_names=None,
        # workspace='default/default/default', webservice_name='default', model_version='default',
        # collection_name='default')
        dc = mdc.ModelDataCollector("best_model", "predictions", ["score"], "1A2B/rg/ws", "aks-w-collv9", "3",
                                    "default", endpoint=self.server.url)
        self.assertEqual((dc.designation, dc.feature_names, dc.webservice_name, dc.model_version),
                         ("predictions", ["score"], "aks-w-collv9", "3"))
        self.assertEqual(dc.workspace, {"subscription_id": "1A2B", "resource_group": "rg", "workspace": "ws"})
        dc.collect([0.5])
        (req,) = self.server.wait_for(1)
        self.assertEqual((req["designation"], req["model_version"], req["webservice"], req["workspace"]),
                         ("predictions", "3", "aks-w-collv9", "ws"))
        general = mdc.ModelDataCollector("best_model", model_version="3", endpoint=self.server.url)
        self.assertEqual(general.designation, "general")
        older = mdc.ModelDataCollector("best_model", identifier="labels", model_version="3", endpoint=self.server.url)
        self.assertEqual(older.designation, "labels")

    def test_bad_configuration_fails_at_start(self):
        for kwargs in ({"designation": "in/puts"}, {"designation": ".."}, {"model_version": "v1."},
                       {"webservice_name": " svc"}, {"endpoint": "ftp://x"}):
            with self.subTest(kwargs):
                with self.assertRaises(ValueError):
                    mdc.ModelDataCollector("best_model", **dict({"model_version": "1"}, **kwargs))
        with self.assertRaises(ValueError):
            mdc.ModelDataCollector("", model_version="1")

    def test_unreadable_data_never_raises(self):
        dc = self.collector(feature_names=["a", "b"])
        with self.assertLogs("modeldata_collector", "WARNING") as logs:
            corr = dc.collect([[1, 2, 3]])  # three values for two names
            dc.collect([[1, 2, 3]])
        self.assertIn(mdc.CORRELATION_ID, corr)
        self.assertEqual(len(logs.records), 1, logs.output)
        self.assertIn("do not match", logs.output[0])

    def test_refused_groups_are_dropped_and_logged_once(self):
        self.server.refuse = lambda g: "rows of 3 values, 1 feature name" if len(g["data"][0]) == 3 else None
        self.server.hold.clear()  # the three calls travel in one batch
        dc = self.collector()
        before = mdc.stats()["dropped_rows"]
        with self.assertLogs("modeldata_collector", "WARNING") as logs:
            dc.collect([[1, 2, 3]])
            dc.collect([[1, 2, 3]])
            dc.collect([[4]])
            self.server.hold.set()
            reqs = self.server.wait_for(1)
            self.assertTrue(mdc.flush(timeout=10))
        self.assertEqual([r["data"] for r in reqs], [[[4]]])
        self.assertEqual(mdc.stats()["dropped_rows"] - before, 2)
        self.assertEqual(len(logs.records), 1, logs.output)
        self.assertIn("HTTP 400: rows of 3 values", logs.output[0])
        self.assertIn("best_model/inputs", logs.output[0])

    def test_refused_request_is_dropped(self):
        self.server.answers = [(400, '{"error":"model_name is missing"}', {})]
        dc = self.collector("labels")
        before = mdc.stats()["dropped_rows"]
        with self.assertLogs("modeldata_collector", "WARNING") as logs:
            dc.collect([[1, 2]])
            self.assertTrue(mdc.flush(timeout=10))
        dc.collect([[3]])
        self.assertEqual([r["data"] for r in self.server.wait_for(1)], [[[3]]])
        self.assertEqual(mdc.stats()["dropped_rows"] - before, 1)
        self.assertIn("HTTP 400: model_name is missing", logs.output[0])

    def test_refused_for_good_by_the_pipeline_is_dropped_not_retried(self):
        self.server.answers = [(500, '{"error":"Permanent error: bad record"}', {})]
        dc = self.collector()
        before = mdc.stats()["dropped_rows"]
        with self.assertLogs("modeldata_collector", "WARNING"):
            dc.collect([[1, 2]])
            self.assertTrue(mdc.flush(timeout=10))
        dc.collect([[3]])
        self.assertEqual([r["data"] for r in self.server.wait_for(1)], [[[3]]])
        self.assertEqual(mdc.stats()["dropped_rows"] - before, 1)

    def test_backpressure_is_retried_after_retry_after(self):
        self.server.answers = [(503, "busy", {"Retry-After": "0"}), (429, "slow down", {"Retry-After": "0"}),
                               (502, "bad gateway", {"Retry-After": "0"}), (504, "timeout", {"Retry-After": "0"})]
        dc = self.collector()
        dc.collect([[1]])
        (req,) = self.server.wait_for(1)
        self.assertEqual(req["data"], [[1]])
        self.assertEqual(self.server.answers, [])

    def test_every_send_of_a_batch_has_its_idempotency_key(self):
        # Refusals that pass, or the rows taken and the answer lost (the
        # collector died; the resend goes on a fresh connection, or after
        # backoff): every send of a batch has one key, so the collector keeps
        # the rows once; the next batch has a key of its own.
        for answers in ([(503, "busy", {"Retry-After": "0"}), (429, "slow down", {"Retry-After": "0"})],
                        [(0, "", {})],
                        [(503, "busy", {"Retry-After": "0"}), (0, "", {})]):
            with self.subTest(answers=[a[0] for a in answers]):
                with self.server.lock:
                    self.server.answers = list(answers)
                    self.server.requests.clear()
                    self.server.posts.clear()
                dc = self.collector(feature_names=["i"])
                dc.collect([[1]])
                self.assertTrue(mdc.flush(timeout=10))
                dc.collect([[2]])
                self.assertTrue(mdc.flush(timeout=10))
                self.assertEqual([r["data"] for r in self.server.wait_for(2)], [[[1]], [[2]]])
                keys = [p[1].get("Idempotency-Key") for p in self.server.posts]
                self.assertEqual(len(keys), len(answers) + 2, keys)
                self.assertEqual(len(set(keys[:-1])), 1, keys)
                self.assertNotEqual(keys[-1], keys[0])
                self.assertEqual(len(keys[0]), 36)

    def test_many_calls_travel_in_one_request(self):
        dc = self.collector(feature_names=["i"])
        dc.collect([[-1]])
        self.server.wait_for(1)
        self.server.hold.clear()  # the collector is slow to answer: calls pile up meanwhile
        dc.collect([[0]])
        for i in range(1, 2000):
            dc.collect([[i]])
        self.server.hold.set()
        reqs = self.server.wait_for(2001)
        self.assertEqual([r["data"][0][0] for r in reqs], list(range(-1, 2000)))
        self.assertLessEqual(len(self.server.posts), 4, [p[2] for p in self.server.posts])

    def test_batches_shrink_when_the_collector_says_too_large(self):
        self.server.max_body = 2000
        dc = self.collector(feature_names=["i"])
        self.server.hold.clear()
        for i in range(100):
            dc.collect([[i]])
        self.server.hold.set()
        reqs = self.server.wait_for(100)
        self.assertEqual([r["data"][0][0] for r in reqs], list(range(100)))
        self.assertGreater(len(self.server.posts), 1)

    def test_older_collector_without_batch_route(self):
        old = CollectServer(batch_route=False)
        self.addCleanup(old.close)
        dc = self.collector(endpoint=old.url)
        with self.assertLogs("modeldata_collector", "WARNING") as logs:
            for i in range(3):
                dc.collect([[i]])
            reqs = old.wait_for(3)
        self.assertEqual([r["data"] for r in reqs], [[[0]], [[1]], [[2]]])
        self.assertEqual({p[0] for p in old.posts}, {"/v1/collect"})
        self.assertEqual(len(logs.records), 1, logs.output)
        self.assertIn("no /batch route", logs.output[0])

    def test_rows_are_kept_across_a_collector_restart(self):
        url = closed_port_url()
        dc = self.collector(endpoint=url, feature_names=["i"])
        with self.assertLogs("modeldata_collector", "WARNING") as logs:
            for i in range(500):
                dc.collect([[i]])
            self.assertFalse(mdc.flush(timeout=0.3))  # nobody answers: kept, not dropped
            self.assertEqual(dc._sender.buffered_rows, 500)
            restarted = CollectServer(port=int(url.rsplit(":", 1)[1]))
            self.addCleanup(restarted.close)
            for i in range(500, 1000):
                dc.collect([[i]])
            reqs = restarted.wait_for(1000, timeout=20)
            self.assertTrue(mdc.flush(timeout=10))
        self.assertEqual([r["data"][0][0] for r in reqs], list(range(1000)))
        self.assertEqual(len(logs.records), 2, logs.output)
        self.assertIn("not answering", logs.output[0])
        self.assertIn("answers again", logs.output[1])
        self.assertIn("0 rows were dropped", logs.output[1])

    def test_full_buffer_drops_counted_logged_once_and_never_blocks(self):
        with mock.patch.dict(os.environ, {"MODELDATA_BUFFER_ROWS": "5"}):
            dc = self.collector()
        self.server.hold.clear()  # a slow collector: the buffer overflows
        before = mdc.stats()["dropped_rows"]
        with self.assertLogs("modeldata_collector", "WARNING") as logs:
            for _ in range(150):
                start = time.perf_counter()
                corr = dc.collect([[1]])
                self.assertLess(time.perf_counter() - start, 0.5)
                self.assertIn(mdc.CORRELATION_ID, corr)
            self.assertLessEqual(dc._sender.buffered_rows, 5)
            self.server.hold.set()
            self.assertTrue(mdc.flush(timeout=10))
        dropped = mdc.stats()["dropped_rows"] - before
        self.assertGreaterEqual(dropped, 145)
        self.assertEqual(len(self.server.requests) + dropped, 150)
        self.assertEqual(len(logs.records), 2, logs.output)
        self.assertIn("buffer", logs.output[0])
        self.assertIn("%d rows were dropped" % dropped, logs.output[1])

    def test_storage_disabled_and_debug(self):
        with mock.patch.dict(os.environ, {"AML_MODEL_DC_STORAGE_ENABLED": "false", "AML_MODEL_DC_DEBUG": "true"}):
            dc = self.collector(feature_names=["a"])
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            corr = dc.collect([[7]])
        self.assertIn('"a": 7', out.getvalue())
        self.assertIn(corr[mdc.CORRELATION_ID], out.getvalue())
        self.assertTrue(mdc.flush(timeout=2))
        self.assertEqual(dc._sender.buffered_rows, 0)
        self.assertEqual(self.server.requests, [])

    def test_environment_and_model_config_map(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model_config_map.json")
            with open(path, "w") as f:
                json.dump({"accountContext": {"subscriptionId": "1A2B", "resourceGroupName": "rg",
                                              "accountName": "ws"},
                           "models": {"best_model": {"version": 7}}}, f)
            env = {"MODELDATA_MODEL_CONFIG_MAP": path, "SERVICE_NAME": "aks-w-collv9",
                   "MODELDATA_COLLECTOR_ENDPOINT": self.server.url, "MODELDATA_COLLECTOR_TOKEN": "s3cret"}
            with mock.patch.dict(os.environ, env):
                from_map = mdc.ModelDataCollector("best_model")
                with mock.patch.dict(os.environ, {"MODELDATA_MODEL_VERSION": "11"}):
                    from_env = mdc.ModelDataCollector("best_model")
        self.assertEqual(from_map.model_version, "7")
        self.assertEqual(from_env.model_version, "11")
        from_map.collect([[1]])
        (req,) = self.server.wait_for(1)
        self.assertEqual(req["webservice"], "aks-w-collv9")
        self.assertEqual((req["subscription_id"], req["resource_group"], req["workspace"]), ("1A2B", "rg", "ws"))
        self.assertEqual(self.server.posts[0][1]["Authorization"], "Bearer s3cret")

    def test_endpoint_forms(self):
        for endpoint, want in [("http://10.0.0.4:4320", "http://10.0.0.4:4320/v1/collect"),
                               ("10.0.0.4:4320", "http://10.0.0.4:4320/v1/collect"),
                               ("https://gw.example/custom/collect", "https://gw.example/custom/collect")]:
            self.assertEqual(mdc._collect_url(endpoint), want)
        self.assertEqual(mdc._Sender("http://h:1/v1/collect?x=1", 1, 1, 1)._batch_path, "/v1/collect/batch?x=1")

    @unittest.skipUnless(hasattr(os, "fork"), "no fork here")
    def test_forked_worker_sends_with_its_own_thread(self):
        dc = self.collector()
        dc.collect([["parent"]])
        self.server.wait_for(1)
        pid = fork_worker_that_collects(dc)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        reqs = self.server.wait_for(2)
        self.assertEqual([r["data"] for r in reqs], [[["parent"]], [["child"]]])

    @unittest.skipUnless(hasattr(os, "fork"), "no fork here")
    def test_fork_while_a_send_waits_for_its_answer(self):
        dc = self.collector()
        self.server.hold_body.clear()  # the answer's body waits: the parent's sender reads it, holding its reader's lock
        dc.collect([["parent"]])
        self.server.wait_for(1)
        conn = None
        deadline = time.monotonic() + 10
        while conn is None or getattr(conn, "_HTTPConnection__response", None) is None:  # the headers were read
            self.assertLess(time.monotonic(), deadline, "the parent's send never got its answer's headers")
            time.sleep(0.01)
            conn = mdc._senders[mdc._collect_url(self.server.url)]._conn
        pid = fork_worker_that_collects(dc)
        self.server.hold_body.set()
        deadline = time.monotonic() + 30
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                self.fail("the forked child hung (an inherited lock)")
            time.sleep(0.05)  # polling the child's exit: waitpid has no timeout
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        reqs = self.server.wait_for(2)
        self.assertCountEqual([r["data"] for r in reqs], [[["parent"]], [["child"]]])

    def test_rows_are_flushed_at_exit(self):
        script = (
            "import modeldata_collector as m\n"
            "dc = m.ModelDataCollector('best_model', model_version='3')\n"
            "for i in range(20):\n"
            "    dc.collect([[i, 'x']])\n"
        )
        env = dict(CLEAN_ENV, MODELDATA_COLLECTOR_ENDPOINT=self.server.url,
                   PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=30)
        reqs = self.server.wait_for(20, timeout=1)
        self.assertEqual(sorted(r["data"][0][0] for r in reqs), list(range(20)))


SCORING_PROCESS = """
import os, signal, sys, time
if sys.argv[1] == "server-handler":
    def shutdown(signum, frame):
        print("server handler", flush=True)
        os._exit(3)  # skips atexit: only the client's SIGTERM flush can have sent the rows
    signal.signal(signal.SIGTERM, shutdown)
import modeldata_collector as m
dc = m.ModelDataCollector("best_model", model_version="3")
for i in range(20):
    dc.collect([[i]])
print("ready", flush=True)
if sys.argv[2] == "wait":
    time.sleep(60)
"""


class ProcessExitTest(unittest.TestCase):
    """The flush on SIGTERM and at exit, in a scoring process of its own."""

    def start(self, url, *args, **env):
        env = dict(CLEAN_ENV, MODELDATA_COLLECTOR_ENDPOINT=url, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)),
                   **env)
        proc = subprocess.Popen([sys.executable, "-c", SCORING_PROCESS] + list(args), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.assertEqual(proc.stdout.readline(), "ready\n")
        return proc

    def test_sigterm_sends_the_buffer_then_chains(self):
        for handler, want_code in (("server-handler", 3), ("none", -signal.SIGTERM)):
            with self.subTest(handler):
                url = closed_port_url()  # the collector is down: the rows are buffered when SIGTERM comes
                proc = self.start(url, handler, "wait", MODELDATA_FLUSH_TIMEOUT="20")
                proc.send_signal(signal.SIGTERM)
                server = CollectServer(port=int(url.rsplit(":", 1)[1]))  # and back while the handler flushes
                self.addCleanup(server.close)
                out, _ = proc.communicate(timeout=30)
                self.assertEqual(proc.returncode, want_code)
                self.assertEqual(out, "server handler\n" if handler == "server-handler" else "")
                self.assertEqual(sorted(r["data"][0][0] for r in server.wait_for(20, timeout=1)), list(range(20)))

    def test_exit_within_the_flush_timeout_with_a_hung_collector(self):
        hung = socket.socket()
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # accepts (the kernel does) and never answers
        self.addCleanup(hung.close)
        url = "http://127.0.0.1:%d" % hung.getsockname()[1]
        for how in ("exit", "sigterm"):
            with self.subTest(how):
                proc = self.start(url, "none", "wait" if how == "sigterm" else "exit",
                                  MODELDATA_FLUSH_TIMEOUT="1", MODELDATA_TIMEOUT="30")
                start = time.monotonic()
                if how == "sigterm":
                    proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=30)
                self.assertLess(time.monotonic() - start, 1 + 1.0, err)
                self.assertIn("20 rows not sent at exit", err)


class ValidateSegmentTest(unittest.TestCase):
    def test_matches_the_contract(self):
        good = ["best_model", "10", "inputs", "aks-w-collv9", "model.v2", "ünïcode"]
        bad = ["", ".", "..", "a/b", "a\\b", "a\x00b", "a\nb", " lead", "trail ", "end.", "a\u200bb", "x" * 129]
        for s in good:
            mdc.validate_segment("x", s)
        for s in bad:
            with self.subTest(s), self.assertRaises(ValueError):
                mdc.validate_segment("x", s)


class RealLibrariesTest(unittest.TestCase):
    """The same shapes with numpy and pandas, where they happen to be installed."""

    def test_numpy_and_pandas(self):
        try:
            import numpy as np
            import pandas as pd
        except ImportError:
            self.skipTest("numpy/pandas not installed (the client never needs them)")
        self.assertEqual(mdc._rows(np.array([[1, 2.5]]), None), (None, [[1.0, 2.5]]))
        names, rows = mdc._rows(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), None)
        self.assertEqual(names, ["a", "b"])
        self.assertEqual([[mdc._cell(v) for v in r] for r in rows], [[1, "x"], [2, "y"]])
        self.assertEqual(mdc._cell(np.float32(math.inf)), "inf")
        self.assertIsNone(mdc._cell(pd.NA))


if __name__ == "__main__":
    logging.basicConfig()
    unittest.main()
