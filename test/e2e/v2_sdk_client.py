"""Send model data exactly as azureml-ai-monitoring's Collector does.

The SDK (azureml.ai.monitoring) cannot be installed here, so this script
rebuilds its requests with the standard library: the same URL
(http://$AZUREML_MDC_HOST:$AZUREML_MDC_PORT/modeldata/log), the same
headers (the correlation context's headers with a "ce-" prefix, then the
SDK's own), and the body pandas' DataFrame.to_json(orient="records")
writes (compact, ASCII-only, "/" escaped, NaN as null).

Prints one JSON object: the HTTP status and body of each request.
"""

import json
import os
import urllib.error
import urllib.request
import uuid

HOST = os.environ.get("AZUREML_MDC_HOST", "127.0.0.1")
PORT = int(os.environ.get("AZUREML_MDC_PORT", "50011"))
URL = "http://%s:%d/modeldata/log" % (HOST, PORT)
AGENT = "azureml-ai-monitoring/1.0.0"
CE_TIME = 1597333456  # BasicCorrelationContext().timestamp: int(time.time())


def to_json_records(rows):
    """DataFrame.to_json(orient="records") for rows of plain values."""
    return json.dumps(rows, ensure_ascii=True, separators=(",", ":"), allow_nan=False).replace("/", "\\/")


def send(collection, body, correlation_id, context_headers, content_type="application/json"):
    headers = {}
    for key, value in context_headers.items():  # payload.headers(), prefixed
        headers["ce-%s" % key] = str(value)
    headers.update({
        "Accept": "*/*",
        "Content-Type": content_type,
        "trace-id": str(uuid.uuid4()),
        "ce-time": str(CE_TIME),
        "ce-type": "azureml.inference.%s" % collection,
        "ce-collect-data-type": "pandas.core.frame.DataFrame",
        "ce-agent": AGENT,
        "ce-x-request-id": correlation_id,
        "ce-model-version": "10",
    })
    data = body.encode("utf-8") if isinstance(body, str) else body
    req = urllib.request.Request(URL, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return {"status": resp.status, "body": resp.read().decode("utf-8")}
    except urllib.error.HTTPError as err:
        return {"status": err.code, "body": err.read().decode("utf-8")}


def main():
    correlation_id = "7f0c7c4e-4d1b-4b8a-a0a5-3a0bd0b9d6de"
    context = {"model-name": "best_model"}
    inputs = [
        {"age": 31, "income": 5000.5, "city": "Z\u00fcrich", "url": "http://x", "flag": True, "score": None},
        {"age": 45, "income": 1200.25, "city": "Redmond, WA", "url": "", "flag": False, "score": 0.25},
    ]
    outputs = [{"prediction": 0.93}, {"prediction": 0.12}]
    result = {
        "correlation_id": correlation_id,
        "inputs": send("model_inputs", to_json_records(inputs), correlation_id, context),
        "outputs": send("model_outputs", to_json_records(outputs), correlation_id, context),
        # AZUREML_MDC_FORMAT_COMPACT=true: DataFrame.to_string() as bytes.
        "compact": send("model_inputs", "   age\n0   31\n".encode("utf-8"), correlation_id, context,
                        content_type="application/octet-stream"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
