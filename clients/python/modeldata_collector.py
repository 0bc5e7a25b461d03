"""Drop-in replacement for azureml-monitoring's ModelDataCollector.

Change one import and keep the scoring code::

    # from azureml.monitoring import ModelDataCollector
    from modeldata_collector import ModelDataCollector

    inputs_dc = ModelDataCollector("best_model", designation="inputs", feature_names=["age", "income"])
    predictions_dc = ModelDataCollector("best_model", designation="predictions", feature_names=["score"])

    correlations = inputs_dc.collect(data)                 # returns at once
    result = model.predict(data)
    predictions_dc.collect(predictions_dc.add_correlations(result, correlations))

Rows go to the otelcol-modeldata collector's collect API (modeldata receiver,
``POST /v1/collect``), which writes them in the Azure ML ``modeldata`` CSV
layout. The module needs nothing but the Python standard library: numpy arrays
and pandas DataFrames are accepted when the scoring code uses them, by duck
typing, without importing those libraries.

collect() never blocks on the network and never raises: rows are queued in a
bounded in-memory buffer and sent by one background thread per process. When
the collector is down or slow, rows that do not fit are dropped, counted
(``stats()``) and logged once per outage. The buffer is flushed at exit.

Environment (read when a collector is created; constructor arguments win):

=================================  ===========================================================
``MODELDATA_COLLECTOR_ENDPOINT``   collector base URL or full collect URL
                                   (default ``http://localhost:4320``; ``/v1/collect`` is added
                                   when the URL has no path)
``MODELDATA_MODEL_VERSION``        model version when the constructor gives none; else the
                                   version in ``/var/azureml-app/model_config_map.json``
``MODELDATA_MODEL_CONFIG_MAP``     another path for that file
``MODELDATA_COLLECTOR_TOKEN``      bearer token sent as ``Authorization`` (bearertokenauth)
``MODELDATA_BUFFER_ROWS``          rows buffered at most before dropping (default 10000)
``MODELDATA_TIMEOUT``              seconds per HTTP request (default 5)
``MODELDATA_FLUSH_TIMEOUT``        seconds the exit flush may take (default 5)
``AML_MODEL_DC_STORAGE_ENABLED``   ``false`` turns sending off (default on; the original
                                   needed ``true``, which still works)
``AML_MODEL_DC_DEBUG``             ``true`` prints every collected row to stdout
``SERVICE_NAME``                   the web service name (``$aml_service_name`` and the path)
=================================  ===========================================================
"""

from __future__ import annotations

import atexit
import datetime as _dt
import http.client
import json
import logging
import math
import os
import sys
import threading
import time
import unicodedata
import urllib.parse
import uuid
from collections import deque

__all__ = [
    "ModelDataCollector",
    "CorrelatedData",
    "add_correlations",
    "set_request_id",
    "stats",
    "flush",
]

__version__ = "0.1.0"

logger = logging.getLogger("modeldata_collector")

# Correlation columns of data.csv that a caller carries from inputs to predictions.
CORRELATION_ID = "$aml_dc_correlation_id"
SCORING_TIMESTAMP = "$aml_dc_scoring_timestamp"
REQUEST_ID = "$aml_request_id"
_CORRELATION_COLUMNS = (CORRELATION_ID, SCORING_TIMESTAMP, REQUEST_ID)

DEFAULT_ENDPOINT = "http://localhost:4320"
COLLECT_PATH = "/v1/collect"
DEFAULT_MODEL_CONFIG_MAP = "/var/azureml-app/model_config_map.json"
MAX_SEGMENT_BYTES = 128  # internal/contract.MaxSegmentLen


def _env(name, default=None):
    value = os.environ.get(name, "").strip()
    return value if value else default


def _env_bool(name, default):
    value = _env(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def _env_number(name, default, cast=float):
    value = _env(name)
    if value is None:
        return default
    try:
        number = cast(value)
    except ValueError:
        raise ValueError("%s=%r is not a number" % (name, value)) from None
    if number <= 0:
        raise ValueError("%s=%r must be positive" % (name, value))
    return number


def validate_segment(what, value):
    """Raise ValueError unless value can be one blob path segment.

    The same rules as the collector's contract.ValidateSegment, so a bad model
    name or designation fails when the collector object is created, not later
    as rejected rows.
    """
    if not isinstance(value, str):
        raise ValueError("%s must be a string, got %r" % (what, value))
    if value == "":
        raise ValueError("%s is empty" % what)
    if len(value.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        raise ValueError("%s %r is longer than %d bytes" % (what, value, MAX_SEGMENT_BYTES))
    if value in (".", ".."):
        raise ValueError("%s %r is a relative path" % (what, value))
    if value.endswith("."):
        raise ValueError("%s %r ends with a dot" % (what, value))
    if value.strip() != value:
        raise ValueError("%s %r has leading or trailing space" % (what, value))
    for ch in value:
        if ch in "/\\" or unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            raise ValueError("%s %r contains %r" % (what, value, ch))


def _now_timestamp():
    """UTC now in the reference format 2020-08-13T15:54:16.691697."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _new_correlation_id(user_correlation_id=""):
    new = str(uuid.uuid4())
    return "%s-%s" % (user_correlation_id, new) if user_correlation_id else new


# --- request id -------------------------------------------------------------

_request_local = threading.local()


def set_request_id(request_id):
    """Set the scoring request's id for the current thread.

    collect() puts it in $aml_request_id, the join key between inputs,
    predictions and labels. Call it at the start of a request (for example
    with the x-request-id header); without it each collect() of inputs gets a
    new id. Pass None to clear it.
    """
    _request_local.request_id = request_id or None


def _current_request_id():
    return getattr(_request_local, "request_id", None)


# --- correlations -----------------------------------------------------------


class CorrelatedData:
    """Data together with the correlation values of the rows it belongs to.

    add_correlations() returns it for data that has no columns of its own to
    carry them (lists, numpy arrays); collect() unwraps it.
    """

    __slots__ = ("data", "correlations")

    def __init__(self, data, correlations):
        self.data = data
        self.correlations = dict(correlations)

    def __repr__(self):
        return "CorrelatedData(%r, %r)" % (self.data, self.correlations)


def add_correlations(data, correlations):
    """Attach the values returned by an inputs collect() to other data.

    A pandas DataFrame gets the correlation columns appended (a copy, as the
    original did); a list of dicts gets the keys added to each row; any other
    data is wrapped in CorrelatedData. collect() of the result writes the same
    $aml_dc_correlation_id, $aml_dc_scoring_timestamp and $aml_request_id as
    the inputs, so the prediction lands beside its input and joins with it.
    """
    if not isinstance(correlations, dict):
        raise TypeError("correlations must be the dict returned by collect(), got %r" % type(correlations).__name__)
    values = {k: correlations[k] for k in _CORRELATION_COLUMNS if correlations.get(k)}
    if _is_dataframe(data):
        return data.assign(**values)
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return [dict(r, **values) for r in data]
    if isinstance(data, dict) and not _is_columnar(data):
        return dict(data, **values)
    return CorrelatedData(data, values)


# --- turning input data into rows -------------------------------------------


def _is_dataframe(data):
    return hasattr(data, "columns") and hasattr(data, "assign") and hasattr(data, "to_numpy")


def _is_ndarray(data):
    return hasattr(data, "tolist") and hasattr(data, "ndim") and hasattr(data, "shape")


def _is_series(data):
    return hasattr(data, "to_list") and hasattr(data, "index") and not hasattr(data, "columns")


def _is_columnar(d):
    values = list(d.values())
    return bool(values) and all(isinstance(v, (list, tuple)) for v in values) and len({len(v) for v in values}) == 1


def _is_sequence(value):
    return isinstance(value, (list, tuple)) or _is_ndarray(value) or _is_series(value)


def _cell(value):
    """A JSON-safe scalar for one CSV cell."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        try:
            return _cell(value.item())
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _to_list(value):
    if _is_ndarray(value):
        return value.tolist()
    if _is_series(value):
        return value.to_list()
    return list(value)


def _ordered(names, feature_names):
    """Data-named columns, those in feature_names first and in its order."""
    if not feature_names:
        return names
    first = [n for n in feature_names if n in names]
    return first + [n for n in names if n not in first]


def _rows(data, feature_names):
    """Return (names, rows). names is None when the data names no columns;
    then feature_names name them."""
    if _is_dataframe(data):
        names = [str(c) for c in data.columns]
        return names, [list(r) for r in data.to_numpy(dtype=object).tolist()]
    if isinstance(data, dict):
        records = [dict(zip(data, r)) for r in zip(*data.values())] if _is_columnar(data) else [data]
    elif isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        return None, [[data]]
    else:
        records = _to_list(data)
        if not records:
            return None, []
        if not all(isinstance(r, dict) for r in records):
            if any(_is_sequence(r) for r in records):
                return None, [_to_list(r) if _is_sequence(r) else [r] for r in records]
            # A flat sequence is one row, except a column of values for a single
            # feature (a 1-D array of predictions, one per input row).
            if feature_names is not None and len(feature_names) == 1 and len(records) > 1:
                return None, [[v] for v in records]
            return None, [records]
    names, seen = [], set()
    for r in records:
        for k in r:
            if str(k) not in seen:
                seen.add(str(k))
                names.append(str(k))
    names = _ordered(names, feature_names)
    records = [{str(k): v for k, v in r.items()} for r in records]
    return names, [[r.get(n) for n in names] for r in records]


# --- the collector ----------------------------------------------------------


def _read_model_config_map(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class ModelDataCollector:
    """Collects rows of one model and designation, as azureml-monitoring did.

    model_name and designation must be valid path segments; a bad one raises
    ValueError here, at start, never in collect(). Arguments of the original
    that the collector now owns (workspace, storage) are accepted and, where
    they still mean something, sent along.
    """

    def __init__(
        self,
        model_name,
        designation="inputs",
        feature_names=None,
        workspace=None,
        webservice_name=None,
        model_version=None,
        identifier=None,
        collection_name=None,
        endpoint=None,
        **_ignored,
    ):
        # Older SDKs named the designation "identifier"; "default" meant "general".
        if identifier and identifier != "default" and designation == "inputs":
            designation = identifier
        if designation == "default":
            designation = "general"
        validate_segment("model_name", model_name)
        validate_segment("designation", designation)
        self.model_name = model_name
        self.designation = designation
        self.feature_names = [str(n) for n in feature_names] if feature_names is not None else None
        self.collection_name = collection_name

        config_map = _read_model_config_map(_env("MODELDATA_MODEL_CONFIG_MAP", DEFAULT_MODEL_CONFIG_MAP))
        if model_version in (None, "", "default"):
            model_version = _env("MODELDATA_MODEL_VERSION") or _config_map_version(config_map, model_name)
        self.model_version = str(model_version) if model_version not in (None, "") else None
        if self.model_version is not None:
            validate_segment("model_version", self.model_version)
        else:
            logger.warning(
                "modeldata_collector: no model version for %r (set MODELDATA_MODEL_VERSION or pass model_version=); "
                "the collector puts its rows under its quarantine path",
                model_name,
            )

        self.webservice_name = webservice_name if webservice_name not in (None, "", "default") else _env("SERVICE_NAME")
        if self.webservice_name is not None:
            validate_segment("webservice_name", self.webservice_name)
        self.workspace = _workspace_parts(workspace, config_map)

        self.enabled = _env_bool("AML_MODEL_DC_STORAGE_ENABLED", True)
        self.debug = _env_bool("AML_MODEL_DC_DEBUG", False)
        self._sender = _sender_for(endpoint or _env("MODELDATA_COLLECTOR_ENDPOINT", DEFAULT_ENDPOINT))

    def __repr__(self):
        return "ModelDataCollector(%r, designation=%r, model_version=%r)" % (
            self.model_name, self.designation, self.model_version)

    @property
    def endpoint(self):
        return self._sender.url

    def add_correlations(self, input_data, correlations):
        """See the module function add_correlations."""
        return add_correlations(input_data, correlations)

    def collect(self, input_data, user_correlation_id=""):
        """Queue the rows of input_data and return their correlation values.

        Returns a dict with $aml_dc_correlation_id, $aml_dc_scoring_timestamp
        and $aml_request_id, to pass to add_correlations() for the
        predictions. Never raises and never waits for the network.
        """
        try:
            return self._collect(input_data, user_correlation_id)
        except Exception as exc:  # never break scoring
            _log_once("collect-error", "modeldata_collector: collect() dropped data it could not read: %r", exc)
            return {CORRELATION_ID: _new_correlation_id(user_correlation_id), SCORING_TIMESTAMP: _now_timestamp(),
                    REQUEST_ID: _current_request_id() or str(uuid.uuid4())}

    def _collect(self, input_data, user_correlation_id):
        given = {}
        if isinstance(input_data, CorrelatedData):
            given = input_data.correlations
            input_data = input_data.data
        names, rows = _rows(input_data, self.feature_names)
        if names is None:
            names = self.feature_names

        # Correlation columns carried in the data (add_correlations on a
        # DataFrame or dicts) become per-row ids instead of features.
        per_row_ids = None
        if names is not None and any(c in names for c in _CORRELATION_COLUMNS):
            positions = {c: names.index(c) for c in _CORRELATION_COLUMNS if c in names}
            keep = [i for i, n in enumerate(names) if n not in positions]
            if rows:
                first = rows[0]
                for col, i in positions.items():
                    if col not in given and i < len(first) and first[i] not in (None, ""):
                        given[col] = str(first[i])
                if CORRELATION_ID in positions:
                    i = positions[CORRELATION_ID]
                    per_row_ids = [str(r[i]) if i < len(r) else "" for r in rows]
            names = [names[i] for i in keep]
            rows = [[r[i] for i in keep if i < len(r)] for r in rows]

        correlations = {
            CORRELATION_ID: given.get(CORRELATION_ID) or _new_correlation_id(user_correlation_id),
            SCORING_TIMESTAMP: given.get(SCORING_TIMESTAMP) or _now_timestamp(),
            REQUEST_ID: given.get(REQUEST_ID) or _current_request_id() or str(uuid.uuid4()),
        }
        if not rows:
            return correlations
        rows = [[_cell(v) for v in r] for r in rows]
        if names is not None and any(len(r) != len(names) for r in rows):
            _stats.count("dropped_rows", len(rows))
            _log_once(
                "width-%s-%s" % (self.model_name, self.designation),
                "modeldata_collector: %s/%s: rows of %d values do not match %d feature names; dropped",
                self.model_name, self.designation, len(rows[0]), len(names),
            )
            return correlations
        if per_row_ids is not None and len(set(per_row_ids)) == 1:
            per_row_ids = None

        if self.debug:
            self._print_rows(names, rows, correlations, per_row_ids)
        if not self.enabled:
            return correlations

        request = {
            "model_name": self.model_name,
            "designation": self.designation,
            "data": rows,
            "correlation_id": correlations[CORRELATION_ID],
            "scoring_timestamp": correlations[SCORING_TIMESTAMP],
            "request_id": correlations[REQUEST_ID],
        }
        if self.model_version is not None:
            request["model_version"] = self.model_version
        if names is not None:
            request["feature_names"] = names
        if per_row_ids is not None:
            request["correlation_ids"] = per_row_ids
        if self.webservice_name is not None:
            request["webservice"] = self.webservice_name
        request.update(self.workspace)
        self._sender.enqueue(request, len(rows))
        return correlations

    def _print_rows(self, names, rows, correlations, per_row_ids):
        out = []
        for i, r in enumerate(rows):
            row = dict(zip(names, r)) if names is not None else {str(j): v for j, v in enumerate(r)}
            row.update(correlations)
            if per_row_ids is not None:
                row[CORRELATION_ID] = per_row_ids[i]
            out.append("modeldata_collector %s/%s/%s: %s" % (
                self.model_name, self.model_version or "-", self.designation, json.dumps(row, default=str)))
        print("\n".join(out), file=sys.stdout, flush=True)


def _config_map_version(config_map, model_name):
    models = config_map.get("models") if isinstance(config_map, dict) else None
    if isinstance(models, dict):
        model = models.get(model_name)
        if isinstance(model, dict) and model.get("version") not in (None, ""):
            return str(model["version"])
    return None


def _workspace_parts(workspace, config_map):
    """Subscription, resource group and workspace: "sub/rg/ws" or the config map."""
    parts = {}
    if workspace and workspace != "default/default/default":
        pieces = workspace.split("/")
        if len(pieces) == 3 and all(pieces):
            parts = {"subscription_id": pieces[0], "resource_group": pieces[1], "workspace": pieces[2]}
    elif isinstance(config_map, dict) and isinstance(config_map.get("accountContext"), dict):
        ctx = config_map["accountContext"]
        for key, src in (("subscription_id", "subscriptionId"), ("resource_group", "resourceGroupName"),
                         ("workspace", "accountName")):
            if ctx.get(src):
                parts[key] = str(ctx[src])
    for key, value in parts.items():
        validate_segment(key, value)
    return parts


# --- statistics and one-time logging ----------------------------------------


class _Stats:
    def __init__(self):
        self._lock = threading.Lock()
        self._counts = {"collected_rows": 0, "sent_rows": 0, "dropped_rows": 0, "sent_requests": 0,
                        "failed_requests": 0}

    def count(self, key, n=1):
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def snapshot(self):
        with self._lock:
            return dict(self._counts)


_stats = _Stats()
_logged = set()
_logged_lock = threading.Lock()


def _log_once(key, msg, *args, level=logging.WARNING):
    with _logged_lock:
        if key in _logged:
            return
        _logged.add(key)
    logger.log(level, msg, *args)


def stats():
    """Counters of this process: collected, sent and dropped rows, requests."""
    snapshot = _stats.snapshot()
    snapshot["buffered_rows"] = sum(s.buffered_rows for s in list(_senders.values()))
    return snapshot


# --- the background sender --------------------------------------------------


def _collect_url(endpoint):
    if "://" not in endpoint:
        endpoint = "http://" + endpoint
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("collector endpoint %r is not an http(s) URL" % endpoint)
    path = parts.path if parts.path not in ("", "/") else COLLECT_PATH
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class _Sender:
    """One thread per process and endpoint that posts queued requests.

    The buffer is bounded in rows; what does not fit is dropped and counted.
    A request that fails for a reason that may pass (connection refused, 5xx,
    429) is retried with backoff a few times and then dropped; a request the
    collector refuses (4xx) is dropped at once and its message logged once.
    """

    def __init__(self, url, max_rows, timeout, retries=3, backoff=0.25):
        self.url = url
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path + ("?" + parts.query if parts.query else "")
        self.max_rows = max_rows
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.token = _env("MODELDATA_COLLECTOR_TOKEN")
        self._cond = threading.Condition()
        self._queue = deque()
        self.buffered_rows = 0
        self._in_flight = 0
        self._closed = False
        self._thread = None
        self._pid = None
        self._conn = None
        self._outage_drops = 0  # rows dropped since the collector went away
        self._down = False

    def enqueue(self, request, nrows):
        _stats.count("collected_rows", nrows)
        with self._cond:
            if self._closed:
                self._drop(nrows, "the collector client is closed (the process is exiting)")
                return
            if self.buffered_rows + nrows > self.max_rows:
                self._drop(nrows, "the buffer of %d rows is full (is the collector at %s up?)" % (self.max_rows, self.url))
                return
            self._queue.append((request, nrows))
            self.buffered_rows += nrows
            self._ensure_thread()
            self._cond.notify()

    def _drop(self, nrows, why):
        _stats.count("dropped_rows", nrows)
        self._outage_drops += nrows
        if not self._down:
            self._down = True
            logger.warning("modeldata_collector: dropping rows: %s; counted in modeldata_collector.stats()", why)

    def _ensure_thread(self):
        # A forked worker (gunicorn) inherits the queue but not the thread.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            if self._pid is not None and self._pid != os.getpid():
                self._queue.clear()
                self.buffered_rows = 0
                self._in_flight = 0
                self._conn = None
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="modeldata-collector", daemon=True)
            self._thread.start()

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                request, nrows = self._queue.popleft()
                self._in_flight = nrows
            try:
                self._deliver(request, nrows)
            except Exception as exc:  # a bug here must not kill the sender
                _stats.count("dropped_rows", nrows)
                _log_once("sender-error", "modeldata_collector: could not send rows: %r", exc)
            finally:
                with self._cond:
                    self.buffered_rows -= nrows
                    self._in_flight = 0
                    self._cond.notify_all()

    def _deliver(self, request, nrows):
        body = json.dumps(request, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
        message = ""
        for attempt in range(self.retries + 1):
            status, message, retry_after = self._post(body)
            if status != 0:
                self._reachable()
            if 200 <= status < 300:
                _stats.count("sent_rows", nrows)
                _stats.count("sent_requests")
                return
            _stats.count("failed_requests")
            if status != 0 and status != 429 and status < 500:
                # The collector is up and refuses this request: retrying cannot help.
                _stats.count("dropped_rows", nrows)
                _log_once("refused-%d-%s-%s" % (status, request.get("model_name"), request.get("designation")),
                          "modeldata_collector: the collector refused rows of %s/%s (HTTP %d: %s); dropped",
                          request.get("model_name"), request.get("designation"), status, message.strip()[:500])
                return
            if attempt == self.retries:
                break
            delay = retry_after if retry_after is not None else self.backoff * (2 ** attempt)
            with self._cond:
                if self._closed:  # exiting: do not sleep through the exit deadline
                    break
                self._cond.wait(min(delay, 5.0))
        with self._cond:
            self._drop(nrows, "the collector at %s did not take them (%s)" % (self.url, message or "no answer"))

    def _reachable(self):
        with self._cond:
            if not self._down:
                return
            self._down, dropped, self._outage_drops = False, self._outage_drops, 0
        logger.warning("modeldata_collector: collector at %s answers again; %d rows were dropped meanwhile",
                       self.url, dropped)

    def _post(self, body):
        """POST body; returns (status, message, retry_after). Status 0: no answer."""
        headers = {"Content-Type": "application/json", "User-Agent": "modeldata-collector-python/" + __version__}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for reuse in (True, False):
            try:
                if self._conn is None:
                    cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                    self._conn = cls(self._host, self._port, timeout=self.timeout)
                self._conn.request("POST", self._path, body=body, headers=headers)
                resp = self._conn.getresponse()
                data = resp.read()
                retry_after = resp.getheader("Retry-After")
                if resp.getheader("Connection", "").lower() == "close":
                    self._close_conn()
                try:
                    retry_after = float(retry_after) if retry_after else None
                except ValueError:
                    retry_after = None
                return resp.status, data.decode("utf-8", "replace"), retry_after
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                # A kept-alive connection the server closed: retry once on a fresh one.
                self._close_conn()
                if not reuse:
                    return 0, repr(exc), None
            except (OSError, http.client.HTTPException) as exc:
                self._close_conn()
                return 0, repr(exc), None
        return 0, "unreachable", None

    def _close_conn(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def flush(self, timeout):
        """Wait until the buffer is empty or timeout seconds passed; True when empty."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def close(self, timeout):
        """Flush for up to timeout seconds, then stop; rows still queued are dropped."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closed = True
            left = sum(n for _, n in self._queue)
            self._queue.clear()
            self.buffered_rows -= left
            self._cond.notify_all()
        if left:
            _stats.count("dropped_rows", left)
            logger.warning("modeldata_collector: %d rows not sent at exit (collector at %s)", left, self.url)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(self.timeout, 1.0))
        self._close_conn()
        return flushed and not left


_senders = {}
_senders_lock = threading.Lock()


def _after_fork_in_child():
    """A forked child (gunicorn worker) starts clean: the parent's locks may
    have been held at fork time and its sender thread does not exist here."""
    global _senders_lock, _logged_lock
    _senders_lock = threading.Lock()
    _logged_lock = threading.Lock()
    _stats._lock = threading.Lock()
    for sender in _senders.values():
        sender._cond = threading.Condition()
        sender._queue.clear()
        sender.buffered_rows = 0
        sender._in_flight = 0
        sender._thread = None
        sender._pid = None
        sender._conn = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _sender_for(endpoint):
    url = _collect_url(endpoint)
    with _senders_lock:
        sender = _senders.get(url)
        if sender is None or sender._closed:
            sender = _Sender(
                url,
                max_rows=_env_number("MODELDATA_BUFFER_ROWS", 10000, int),
                timeout=_env_number("MODELDATA_TIMEOUT", 5.0),
            )
            _senders[url] = sender
        return sender


def flush(timeout=5.0):
    """Wait until every queued row is sent (or dropped); True when all are."""
    deadline = time.monotonic() + timeout
    return all(s.flush(max(0.0, deadline - time.monotonic())) for s in list(_senders.values()))


@atexit.register
def _close_at_exit():
    try:
        timeout = _env_number("MODELDATA_FLUSH_TIMEOUT", 5.0)
    except ValueError:
        timeout = 5.0
    deadline = time.monotonic() + timeout
    for sender in list(_senders.values()):
        sender.close(max(0.0, deadline - time.monotonic()))
