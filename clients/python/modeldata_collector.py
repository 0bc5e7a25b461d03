"""Drop-in replacement for azureml-monitoring's ModelDataCollector.

Change one import and keep the scoring code::

    # from azureml.monitoring import ModelDataCollector
    from modeldata_collector import ModelDataCollector

    inputs_dc = ModelDataCollector("best_model", designation="inputs", feature_names=["age", "income"])
    predictions_dc = ModelDataCollector("best_model", designation="predictions", feature_names=["score"])

    correlations = inputs_dc.collect(data)                 # returns at once
    result = model.predict(data)
    predictions_dc.collect(predictions_dc.add_correlations(result, correlations))

Rows go to the otelcol-modeldata collector (modeldata receiver), which writes
them in the Azure ML ``modeldata`` CSV layout. The module needs nothing but
the Python standard library: numpy arrays and pandas DataFrames are accepted
when the scoring code uses them, by duck typing, without importing them.

collect() never blocks on the network and never raises: it encodes its rows
as one collect request (a JSON line) and appends it to a bounded in-memory
buffer. One background thread per process sends everything buffered as one
``POST /v1/collect/batch`` (NDJSON, one collect request per line), so
thousands of small calls cost one HTTP request. A collector that does not
answer is retried with backoff for as long as the buffer holds; only rows
that do not fit are dropped, counted (``stats()``) and reported once per
outage. The buffer is flushed at exit and on SIGTERM, both within
``MODELDATA_FLUSH_TIMEOUT``.

Environment (read when a collector is created; constructor arguments win):

=================================  ===========================================================
``MODELDATA_COLLECTOR_ENDPOINT``   collector base URL or full collect URL
                                   (default ``http://localhost:4320``; ``/v1/collect`` is added
                                   when the URL has no path; batches go to that path +
                                   ``/batch``)
``MODELDATA_MODEL_VERSION``        model version when the constructor gives none; else the
                                   version in ``/var/azureml-app/model_config_map.json``
``MODELDATA_MODEL_CONFIG_MAP``     another path for that file
``MODELDATA_COLLECTOR_TOKEN``      bearer token sent as ``Authorization`` (bearertokenauth)
``MODELDATA_BUFFER_ROWS``          rows buffered at most before dropping (default 100000)
``MODELDATA_BUFFER_BYTES``         encoded bytes buffered at most (default 67108864, 64 MiB)
``MODELDATA_TIMEOUT``              seconds per HTTP request (default 5)
``MODELDATA_FLUSH_TIMEOUT``        seconds the exit flush may take, SIGTERM and exit
                                   together (default 5)
``MODELDATA_HANDLE_SIGTERM``       ``false``: install no SIGTERM handler (default true)
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
import json.encoder
import logging
import math
import os
import random
import signal
import sys
import threading
import time
import unicodedata
import urllib.parse

__all__ = [
    "ModelDataCollector",
    "CorrelatedData",
    "add_correlations",
    "set_request_id",
    "stats",
    "flush",
]

__version__ = "0.2.0"

logger = logging.getLogger("modeldata_collector")

# Correlation columns of data.csv that a caller carries from inputs to predictions.
CORRELATION_ID = "$aml_dc_correlation_id"
SCORING_TIMESTAMP = "$aml_dc_scoring_timestamp"
REQUEST_ID = "$aml_request_id"
_CORRELATION_COLUMNS = (CORRELATION_ID, SCORING_TIMESTAMP, REQUEST_ID)

DEFAULT_ENDPOINT = "http://localhost:4320"
COLLECT_PATH = "/v1/collect"
BATCH_SUFFIX = "/batch"
DEFAULT_MODEL_CONFIG_MAP = "/var/azureml-app/model_config_map.json"
MAX_SEGMENT_BYTES = 128  # internal/contract.MaxSegmentLen

DEFAULT_BUFFER_ROWS = 100000
DEFAULT_BUFFER_BYTES = 64 << 20
DEFAULT_TIMEOUT = 5.0
DEFAULT_FLUSH_TIMEOUT = 5.0
# A batch request carries at most this many collect calls and bytes: within
# the receiver's default limits (max_rows_per_request 10,000 lines,
# max_values_per_request 200,000 values: at least 2 bytes each). A collector
# with smaller limits answers 413 and the client halves its batches.
MAX_BATCH_GROUPS = 5000
# Statuses that pass, as OTLP/HTTP defines them (0: no answer); the collector
# answers 500 for rows its pipeline refused for good, which a retry can't fix.
RETRYABLE_STATUSES = frozenset((0, 429, 502, 503, 504))
MAX_BATCH_BYTES = 256 << 10
# Backoff between retries of a batch the collector did not take.
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


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


# --- ids and timestamps (collect() runs these on every call: kept cheap) -----

_jstr = json.encoder.encode_basestring_ascii
_getrandbits = random.getrandbits  # reseeded in forked children by the random module
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_second = (None, "")  # the UTC second last formatted, and its text: replaced whole, never torn


def _now_timestamp():
    """UTC now in the reference format 2020-08-13T15:54:16.691697."""
    global _second
    now = time.time()
    sec = int(now)
    cached = _second
    if cached[0] != sec:
        cached = _second = (sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)))
    return "%s.%06d" % (cached[1], int((now - sec) * 1e6))


def _uuid4():
    """A random (version 4) UUID string, a few times cheaper than str(uuid.uuid4())."""
    h = "%032x" % _getrandbits(128)
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], _VARIANT[h[16]], h[17:20], h[20:])


def _new_correlation_id(user_correlation_id=""):
    new = _uuid4()
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
    if type(data) is list and (not data or type(data[0]) is not dict):
        return CorrelatedData(data, values)
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


_SCALARS = frozenset((int, float, str, bool, type(None)))


def _flat_rows(values, feature_names):
    """A flat sequence is one row, except a column of values for a single
    feature (a 1-D array of predictions, one per input row)."""
    if feature_names is not None and len(feature_names) == 1 and len(values) > 1:
        return [[v] for v in values]
    return [values]


def _rows(data, feature_names):
    """Return (names, rows). names is None when the data names no columns;
    then feature_names name them."""
    if type(data) is list and data:  # the common cases, with the data used as it is (never modified)
        if all(type(r) is list for r in data):
            return None, data
        if all(type(v) in _SCALARS for v in data):
            return None, _flat_rows(data, feature_names)
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
            return None, _flat_rows(records, feature_names)
    names, seen = [], set()
    for r in records:
        for k in r:
            if str(k) not in seen:
                seen.add(str(k))
                names.append(str(k))
    names = _ordered(names, feature_names)
    records = [{str(k): v for k, v in r.items()} for r in records]
    return names, [[r.get(n) for n in names] for r in records]


# --- encoding a collect request ----------------------------------------------


def _refuse(value):
    raise TypeError("not a JSON scalar")


# One C encoder for the rows of every call: no NaN (ValueError) and nothing but
# JSON types (TypeError), so anything unusual takes the careful path (_cell).
_encode_rows = (json.encoder.c_make_encoder(None, _refuse, _jstr, None, ":", ",", False, False, False)
                if json.encoder.c_make_encoder is not None else None)


def _rows_json(rows):
    """The rows as a JSON array of arrays of CSV-cell scalars."""
    if _encode_rows is not None:
        try:
            text = "".join(_encode_rows(rows, 0))
        except (TypeError, ValueError):
            pass
        else:
            # Nested lists or dicts in a cell are sent as JSON text, as _cell does.
            if text.count("[") == len(rows) + 1 and "{" not in text:
                return text
    return json.dumps([[_cell(v) for v in r] for r in rows], separators=(",", ":"), default=str)


# --- the collector ----------------------------------------------------------


def _read_model_config_map(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class ModelDataCollector:
    """Collects rows of one model and designation, as azureml-monitoring did.

    The arguments and their order are the original's:
    ModelDataCollector(model_name, designation="default", feature_names=None,
    workspace="default/default/default", webservice_name="default",
    model_version="default", collection_name="default"). "default" means "not
    given": the designation becomes "general" (as in the original), the
    workspace, service name and version come from the environment or the
    model config map. endpoint= (keyword only) overrides
    MODELDATA_COLLECTOR_ENDPOINT; identifier= (older SDKs) names the
    designation.

    model_name and designation must be valid path segments; a bad one raises
    ValueError here, at start, never in collect().
    """

    def __init__(
        self,
        model_name,
        designation="default",
        feature_names=None,
        workspace="default/default/default",
        webservice_name="default",
        model_version="default",
        collection_name="default",
        *,
        identifier=None,
        endpoint=None,
        **_ignored,
    ):
        if identifier and identifier != "default" and designation in (None, "", "default"):
            designation = identifier
        if designation in (None, "", "default"):
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

        # What every request of this collector says, encoded once.
        head = {"model_name": self.model_name, "designation": self.designation}
        if self.model_version is not None:
            head["model_version"] = self.model_version
        if self.webservice_name is not None:
            head["webservice"] = self.webservice_name
        head.update(self.workspace)
        self._head = json.dumps(head, separators=(",", ":"))[:-1]
        self._head_named = None
        if self.feature_names is not None:
            self._head_named = self._head + ',"feature_names":' + json.dumps(self.feature_names, separators=(",", ":"))
        self._names_carry_correlations = self.feature_names is not None and any(
            c in self.feature_names for c in _CORRELATION_COLUMNS)

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
                    REQUEST_ID: _current_request_id() or _uuid4()}

    def _collect(self, input_data, user_correlation_id):
        given = None
        if type(input_data) is CorrelatedData:
            given = input_data.correlations
            input_data = input_data.data
        names, rows = _rows(input_data, self.feature_names)
        from_data = names is not None
        if not from_data:
            names = self.feature_names

        # Correlation columns carried in the data (add_correlations on a
        # DataFrame or dicts) become per-row ids instead of features.
        per_row_ids = None
        if names is not None and (from_data or self._names_carry_correlations) and any(
                c in names for c in _CORRELATION_COLUMNS):
            given = dict(given or ())
            from_data = True
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

        if given:
            correlations = {
                CORRELATION_ID: given.get(CORRELATION_ID) or _new_correlation_id(user_correlation_id),
                SCORING_TIMESTAMP: given.get(SCORING_TIMESTAMP) or _now_timestamp(),
                REQUEST_ID: given.get(REQUEST_ID) or _current_request_id() or _uuid4(),
            }
        else:
            correlations = {
                CORRELATION_ID: _new_correlation_id(user_correlation_id),
                SCORING_TIMESTAMP: _now_timestamp(),
                REQUEST_ID: _current_request_id() or _uuid4(),
            }
        if not rows:
            return correlations
        if names is not None and set(map(len, rows)) != {len(names)}:
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

        if not from_data:
            head = self._head_named or self._head
        elif names is not None:
            head = self._head + ',"feature_names":' + json.dumps(names, separators=(",", ":"))
        else:
            head = self._head
        if per_row_ids is not None:
            head += ',"correlation_ids":' + json.dumps(per_row_ids, separators=(",", ":"))
        line = '%s,"correlation_id":%s,"scoring_timestamp":%s,"request_id":%s,"data":%s}' % (
            head, _jstr(correlations[CORRELATION_ID]), _jstr(correlations[SCORING_TIMESTAMP]),
            _jstr(correlations[REQUEST_ID]), _rows_json(rows))
        self._sender.enqueue(line.encode("ascii"), len(rows))
        return correlations

    def _print_rows(self, names, rows, correlations, per_row_ids):
        out = []
        for i, r in enumerate(rows):
            r = [_cell(v) for v in r]
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

# Re-entrant locks throughout: the SIGTERM handler runs in the main thread
# between any two bytecodes, possibly while that thread holds one of them.


class _Stats:
    def __init__(self):
        self._lock = threading.RLock()
        self._counts = {"collected_rows": 0, "sent_rows": 0, "dropped_rows": 0, "sent_requests": 0,
                        "failed_requests": 0}

    def count(self, key, n=1):
        with self._lock:
            self._counts[key] += n

    def snapshot(self):
        with self._lock:
            return dict(self._counts)


_stats = _Stats()
_logged = set()
_logged_lock = threading.RLock()


def _log_once(key, msg, *args, level=logging.WARNING):
    with _logged_lock:
        if key in _logged:
            return
        _logged.add(key)
    logger.log(level, msg, *args)


def stats():
    """Counters of this process: collected, sent, dropped and buffered rows, requests."""
    senders = list(_senders.values())
    snapshot = _stats.snapshot()
    for sender in senders:
        for key, value in sender.counts().items():
            snapshot[key] += value
    snapshot["buffered_rows"] = sum(s.buffered_rows for s in senders)
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
    """One thread per process and endpoint that posts the buffered collect requests.

    The buffer (self._lines: one encoded collect request per collect() call)
    is bounded in rows and bytes; what does not fit is dropped and counted.
    The thread takes everything buffered (up to MAX_BATCH_GROUPS and
    MAX_BATCH_BYTES) and posts it as one batch. A batch the collector does not
    take for a reason that passes (no answer, 429, 502, 503, 504) is retried with
    backoff until it is taken, every send with the batch's Idempotency-Key: rows are lost only when the buffer overflows,
    or at exit when MODELDATA_FLUSH_TIMEOUT runs out. A group the collector
    refuses (any other status: 4xx, or 500 for rows the pipeline refused for
    good) is dropped at once and its message logged once.
    """

    def __init__(self, url, max_rows, max_bytes, timeout):
        self.url = url
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        query = "?" + parts.query if parts.query else ""
        self._single_path = parts.path + query
        self._batch_path = parts.path.rstrip("/") + BATCH_SUFFIX + query
        self._batching = True
        self._batch_retry_at = 0.0
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_batch_bytes = MAX_BATCH_BYTES
        self.timeout = timeout
        self.token = _env("MODELDATA_COLLECTOR_TOKEN")
        self._cond = threading.Condition(threading.RLock())
        self._lines = []
        self._line_rows = []
        self.buffered_rows = 0  # queued and in flight
        self.buffered_bytes = 0
        self._in_flight = 0
        self._idle = False  # the thread waits for lines (only then does enqueue notify)
        self._deadline = None  # while draining for exit: no request or retry outlives it
        self._closed = False
        self._thread = None
        self._conn = None
        self._trouble = False  # an outage or overflow was reported and has not ended
        self._outage_drops = 0
        self._counts = {"collected_rows": 0, "sent_rows": 0, "dropped_rows": 0, "sent_requests": 0,
                        "failed_requests": 0}

    def counts(self):
        with self._cond:
            return dict(self._counts)

    # --- the scoring threads' side ---

    def enqueue(self, line, nrows):
        with self._cond:
            self._counts["collected_rows"] += nrows
            if self._closed:
                self._drop(nrows, "the process is exiting; rows collected now are not sent")
                return
            if self.buffered_rows + nrows > self.max_rows or self.buffered_bytes + len(line) > self.max_bytes:
                self._drop(nrows, "the buffer (MODELDATA_BUFFER_ROWS=%d, MODELDATA_BUFFER_BYTES=%d) is full: "
                                  "rows are collected faster than the collector at %s takes them"
                           % (self.max_rows, self.max_bytes, self.url))
                return
            self._lines.append(line)
            self._line_rows.append(nrows)
            self.buffered_rows += nrows
            self.buffered_bytes += len(line)
            if self._thread is None:
                self._start_thread()
            elif self._idle:
                self._cond.notify_all()

    def _drop(self, nrows, why):
        """Count dropped rows; the first drop of an outage is logged (called with _cond held)."""
        self._counts["dropped_rows"] += nrows
        self._outage_drops += nrows
        if not self._trouble:
            self._trouble = True
            logger.warning("modeldata_collector: dropping rows: %s; counted in modeldata_collector.stats()", why)

    def _start_thread(self):
        self._thread = threading.Thread(target=self._run, name="modeldata-collector", daemon=True)
        self._thread.start()

    # --- the sender thread ---

    def _run(self):
        while True:
            with self._cond:
                while not self._lines and not self._closed:
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                if self._closed:
                    return
                lines, rows = self._take()
                caught_up = not self._lines
                self._in_flight = sum(rows)
            sent = False
            try:
                sent = self._deliver(lines, rows, caught_up)
            except Exception as exc:  # a bug here must not kill the sender
                sent = True
                with self._cond:
                    self._counts["dropped_rows"] += sum(rows)
                _log_once("sender-error", "modeldata_collector: could not send rows: %r", exc)
            finally:
                with self._cond:
                    if self._closed:
                        pass  # _close counted what was left
                    elif sent:
                        self.buffered_rows -= self._in_flight
                        self.buffered_bytes -= sum(map(len, lines))
                    else:  # back to the front of the buffer, for the next batch
                        self._lines[:0] = lines
                        self._line_rows[:0] = rows
                    self._in_flight = 0
                    self._cond.notify_all()

    def _take(self):
        """The next batch: as many buffered groups as fit in one request."""
        n = min(len(self._lines), MAX_BATCH_GROUPS if self._batching else 1)
        while n > 1 and sum(map(len, self._lines[:n])) > self.max_batch_bytes:
            n //= 2
        lines, rows = self._lines[:n], self._line_rows[:n]
        del self._lines[:n]
        del self._line_rows[:n]
        return lines, rows

    def _deliver(self, lines, rows, caught_up):
        """Send one batch until the collector takes or refuses it. Returns
        False when the batch goes back to the buffer (the collector asked for
        smaller batches, or it is not a batch collector)."""
        if self._batching:
            body, content_type, path = b"\n".join(lines), "application/x-ndjson", self._batch_path
        else:
            body, content_type, path = lines[0], "application/json", self._single_path
        # Every send of this body carries the same key: when the collector
        # took a send whose answer was lost, it answers the resend without
        # writing the rows again.
        idempotency_key = _uuid4()
        delay = BACKOFF_FIRST
        while not self._closed:
            status, text, retry_after = self._post(path, body, content_type, idempotency_key)
            if 200 <= status < 300:
                self._taken(lines, rows, text, caught_up)
                return True
            if status in (404, 405) and self._batching:
                # An older collector without the batch route: one request per
                # collect() call, and a new try of the batch route later.
                self._batching = False
                self._batch_retry_at = time.monotonic() + 60
                _log_once("no-batch", "modeldata_collector: the collector at %s has no %s route (HTTP %d); "
                          "sending one request per collect() call", self.url, BATCH_SUFFIX, status)
                return False
            if status == 413 and len(lines) > 1:
                self.max_batch_bytes = max(1024, len(body) // 2)
                return False
            if status not in RETRYABLE_STATUSES:
                self._refused(lines, rows, status, text, caught_up)
                return True
            with self._cond:
                self._counts["failed_requests"] += 1
                if self._closed:
                    return True
                if not self._trouble:
                    self._trouble = True
                    logger.warning(
                        "modeldata_collector: the collector at %s is not answering (%s); keeping up to %d rows in "
                        "memory and retrying, rows beyond are dropped (counted in modeldata_collector.stats())",
                        self.url, text.strip()[:200] or "HTTP %d" % status, self.max_rows)
                wait = retry_after if retry_after is not None else delay
                delay = min(delay * 2, BACKOFF_MAX)
                if self._deadline is not None:
                    if time.monotonic() >= self._deadline:
                        # The exit budget is spent: wait until the drain ends
                        # (the process exits, or goes on and so do we).
                        while self._deadline is not None and not self._closed:
                            self._cond.wait()
                        continue
                    wait = min(wait, 0.05, self._deadline - time.monotonic())
                self._cond.wait(min(wait, BACKOFF_MAX))
        return True

    def _taken(self, lines, rows, text, caught_up):
        nrows = sum(rows)
        refused = 0
        if '"rejected"' in text:
            try:
                for group in json.loads(text).get("rejected") or ():
                    i = group["group"]
                    refused += rows[i]
                    self._log_refusal(lines, i, group.get("status"), group.get("error", ""))
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                pass
        with self._cond:
            self._counts["sent_requests"] += 1
            self._counts["sent_rows"] += nrows - refused
            self._counts["dropped_rows"] += refused
            if not self._batching and time.monotonic() >= self._batch_retry_at:
                self._batching = True
            self._answered(caught_up)

    def _refused(self, lines, rows, status, text, caught_up):
        try:
            answer = json.loads(text)
            groups = answer.get("rejected") or [{"group": 0, "status": status, "error": answer.get("error", text)}]
        except (ValueError, AttributeError):
            groups = [{"group": 0, "status": status, "error": text}]
        for group in groups:
            self._log_refusal(lines, group.get("group", 0), group.get("status", status), group.get("error", ""))
        with self._cond:
            self._counts["failed_requests"] += 1
            self._counts["dropped_rows"] += sum(rows)
            self._answered(caught_up)

    def _log_refusal(self, lines, i, status, message):
        try:
            group = json.loads(lines[i])
            what = "%s/%s" % (group.get("model_name"), group.get("designation"))
        except (ValueError, TypeError, IndexError):
            what = "?"
        _log_once("refused-%s-%s" % (status, what),
                  "modeldata_collector: the collector refused rows of %s (HTTP %s: %s); dropped",
                  what, status, str(message).strip()[:500])

    def _answered(self, caught_up):
        """The collector answered: an outage ends once the backlog is sent (called with _cond held)."""
        if self._trouble and caught_up:
            self._trouble, dropped, self._outage_drops = False, self._outage_drops, 0
            logger.warning("modeldata_collector: the collector at %s answers again and the buffer is sent; "
                           "%d rows were dropped meanwhile", self.url, dropped)

    def _post(self, path, body, content_type, idempotency_key):
        """POST body; returns (status, message, retry_after). Status 0: no answer."""
        timeout = self.timeout
        deadline = self._deadline
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                return 0, "the exit flush timeout (MODELDATA_FLUSH_TIMEOUT) passed", None
        headers = {"Content-Type": content_type, "User-Agent": "modeldata-collector-python/" + __version__,
                   "Idempotency-Key": idempotency_key}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for reuse in (True, False):
            try:
                if self._conn is None:
                    cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                    self._conn = cls(self._host, self._port, timeout=timeout)
                else:
                    self._conn.timeout = timeout
                    if self._conn.sock is not None:
                        self._conn.sock.settimeout(timeout)
                self._conn.request("POST", path, body=body, headers=headers)
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

    def _abandon_conn(self):
        """Drop the connection a forked child inherited without closing its
        reader: a parent thread waiting for an answer at fork time held the
        reader's lock, which nothing in the child will ever release, so closing
        it (or letting the garbage collector close it) would wait forever. The
        child's copy of the socket is closed by its file descriptor instead."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        _inherited_connections.append(conn)  # never finalized
        if conn.sock is not None:
            try:
                os.close(conn.sock.detach())
            except OSError:
                pass

    # --- flush and exit ---

    def drain(self, deadline, closing):
        """Send what is buffered until deadline (a time.monotonic() value);
        True when everything was taken. Requests and retries are bounded by the
        deadline meanwhile. closing: the process exits, rows left are dropped
        and counted, and the sender stops."""
        with self._cond:
            self._deadline = deadline
            self._cond.notify_all()  # cut a backoff wait short
            try:
                while self._lines or self._in_flight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._thread is None:
                        break
                    self._cond.wait(remaining)
                done = not self._lines and not self._in_flight
            finally:
                if closing:
                    self._close(done)
                else:
                    self._deadline = None
                self._cond.notify_all()
        return done

    def _close(self, done):
        self._closed = True
        left = self.buffered_rows
        if not done and left:
            self._counts["dropped_rows"] += left
            logger.warning("modeldata_collector: %d rows not sent at exit: the collector at %s did not take them "
                           "within MODELDATA_FLUSH_TIMEOUT", left, self.url)
        self._lines.clear()
        self._line_rows.clear()
        self.buffered_rows = self.buffered_bytes = 0


_senders = {}
_inherited_connections = []  # a forked child's copies of the parent's connections, see _abandon_conn
_senders_lock = threading.RLock()


def _after_fork_in_child():
    """A forked child (gunicorn worker) starts clean: the parent's locks may
    have been held at fork time and its sender thread does not exist here."""
    global _senders_lock, _logged_lock
    _senders_lock = threading.RLock()
    _logged_lock = threading.RLock()
    _stats._lock = threading.RLock()
    for sender in _senders.values():
        sender._cond = threading.Condition(threading.RLock())
        sender._lines.clear()
        sender._line_rows.clear()
        sender.buffered_rows = sender.buffered_bytes = 0
        sender._in_flight = 0
        sender._idle = False
        sender._thread = None
        sender._abandon_conn()  # the child's copy of the parent's connection


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _sender_for(endpoint):
    url = _collect_url(endpoint)
    with _senders_lock:
        sender = _senders.get(url)
        if sender is None or sender._closed:
            sender = _Sender(
                url,
                max_rows=_env_number("MODELDATA_BUFFER_ROWS", DEFAULT_BUFFER_ROWS, int),
                max_bytes=_env_number("MODELDATA_BUFFER_BYTES", DEFAULT_BUFFER_BYTES, int),
                timeout=_env_number("MODELDATA_TIMEOUT", DEFAULT_TIMEOUT),
            )
            _senders[url] = sender
        _install_sigterm_handler()
        return sender


def flush(timeout=5.0):
    """Wait until every buffered row is taken by the collector (or refused);
    True when all are. Requests are bounded by the timeout meanwhile."""
    deadline = time.monotonic() + timeout
    return all([s.drain(deadline, closing=False) for s in list(_senders.values())])


# --- exit: atexit and SIGTERM -------------------------------------------------

# MODELDATA_FLUSH_TIMEOUT is one budget for the whole exit: a flush on SIGTERM
# spends from it and the flush at exit gets what is left.
_exit_budget = None
_sigterm_installed = False
_previous_sigterm = None


def _flush_for_exit(closing):
    global _exit_budget
    with _senders_lock:
        if _exit_budget is None:
            try:
                _exit_budget = _env_number("MODELDATA_FLUSH_TIMEOUT", DEFAULT_FLUSH_TIMEOUT)
            except ValueError:
                _exit_budget = DEFAULT_FLUSH_TIMEOUT
        start = time.monotonic()
        deadline = start + _exit_budget
        try:
            for sender in list(_senders.values()):
                sender.drain(deadline, closing)
        finally:
            _exit_budget = max(0.0, _exit_budget - (time.monotonic() - start))


@atexit.register
def _close_at_exit():
    _flush_for_exit(closing=True)


def _on_sigterm(signum, frame):
    previous = _previous_sigterm
    if previous == signal.SIG_IGN:
        return
    dying = not callable(previous)  # SIG_DFL: the process ends once the rows are sent
    _flush_for_exit(closing=dying)
    if not dying:
        previous(signum, frame)  # the scoring server's own shutdown
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_sigterm_handler():
    """Flush on SIGTERM (what Kubernetes sends, and Python skips atexit on),
    then hand the signal to the handler that was there before."""
    global _sigterm_installed, _previous_sigterm
    if _sigterm_installed or not hasattr(signal, "SIGTERM") or not _env_bool("MODELDATA_HANDLE_SIGTERM", True):
        return
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; the next collector made there will
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is None:
            return  # a handler set outside Python, which could not be chained to: the exit flush stays
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        return
    _previous_sigterm = previous
    _sigterm_installed = True
