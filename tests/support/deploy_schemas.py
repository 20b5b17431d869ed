"""Schema validation of our manifests, offline.

Built-in kinds: the Kubernetes OpenAPI schemas that the ``kubernetes-validate`` wheel bundles for every
minor release, in their *strict* form (unknown fields are errors, so a misspelt ``readinesProbe`` fails).
We check against the oldest release we support and the newest the wheel knows.

Prometheus Operator kinds (``monitoring.coreos.com/v1``) have no schema there.  Their metadata is checked
with the same Kubernetes ObjectMeta schema (as a ConfigMap's); their ``spec`` against the strict subset
below: the CRDs' field names, each object closed, types for the fields we use.  The rules' content is
checked by ``promtool`` (tests/test_deploy_monitoring.py).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import latest_version

from tests.support.deploy_tools import Manifest

OLDEST_SUPPORTED = "1.29.0"  # CronJob timeZone, autoscaling/v2, policy/v1 and PSA labels are all GA by then
VERSIONS = (OLDEST_SUPPORTED, latest_version())

_STR: dict[str, Any] = {"type": "string"}
_STR_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _STR}
_ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _closed(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _names(*names: str) -> dict[str, Any]:
    """Fields the CRD has that we do not use: allowed (so the schema stays a subset), not typed."""
    return {name: {} for name in names}


# Scrape settings a ServiceMonitor and a PodMonitor share (accepted, not checked further).
_SCRAPE_SETTINGS = (
    "attachMetadata",
    "bodySizeLimit",
    "convertClassicHistogramsToNHCB",
    "fallbackScrapeProtocol",
    "keepDroppedTargets",
    "labelLimit",
    "labelNameLengthLimit",
    "labelValueLengthLimit",
    "nativeHistogramBucketLimit",
    "nativeHistogramMinBucketFactor",
    "scrapeClass",
    "scrapeClassicHistograms",
    "scrapeNativeHistograms",
    "scrapeProtocols",
    "selectorMechanism",
    "targetLimit",
)


_LABEL_SELECTOR = _closed({"matchLabels": _STR_MAP, "matchExpressions": {"type": "array"}})

_ENDPOINT = _closed(
    {
        "port": _STR,
        "targetPort": {"type": ["string", "integer"]},
        "path": {"type": "string", "pattern": "^/"},
        "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
        "interval": {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h))+)$"},
        "scrapeTimeout": {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h))+)$"},
        "honorLabels": {"type": "boolean"},
        "honorTimestamps": {"type": "boolean"},
        "params": _ANY_OBJECT,
        "relabelings": {"type": "array"},
        "metricRelabelings": {"type": "array"},
        **_names(
            "authorization",
            "basicAuth",
            "bearerTokenFile",
            "bearerTokenSecret",
            "enableHttp2",
            "filterRunning",
            "followRedirects",
            "noProxy",
            "oauth2",
            "proxyConnectHeader",
            "proxyFromEnvironment",
            "proxyUrl",
            "tlsConfig",
            "trackTimestampsStaleness",
        ),
    }
)

SERVICE_MONITOR_SPEC = _closed(
    {
        "selector": _LABEL_SELECTOR,
        "endpoints": {"type": "array", "minItems": 1, "items": _ENDPOINT},
        "namespaceSelector": _closed({"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": _STR}}),
        "jobLabel": _STR,
        "targetLabels": {"type": "array", "items": _STR},
        "podTargetLabels": {"type": "array", "items": _STR},
        "sampleLimit": {"type": "integer", "minimum": 0},
        **_names(*_SCRAPE_SETTINGS, "serviceDiscoveryRole"),
    },
    required=("selector", "endpoints"),
)

_RELABEL_ACTIONS = [
    "replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase",
    "keepequal", "dropequal",
]  # fmt: skip
_RELABELING = _closed(
    {
        "action": {"enum": _RELABEL_ACTIONS + [a.capitalize() for a in _RELABEL_ACTIONS]},
        "sourceLabels": {"type": "array", "items": _STR},
        "separator": _STR,
        "targetLabel": _STR,
        "regex": _STR,
        "modulus": {"type": "integer", "minimum": 0},
        "replacement": _STR,
    }
)

# PodMonitor endpoints: the ServiceMonitor's fields, the port by name or number, relabelings typed.
_POD_ENDPOINT = _closed(
    {
        **{name: schema for name, schema in _ENDPOINT["properties"].items() if name != "bearerTokenFile"},
        "portNumber": {"type": "integer", "minimum": 1, "maximum": 65535},
        "relabelings": {"type": "array", "items": _RELABELING},
        "metricRelabelings": {"type": "array", "items": _RELABELING},
    }
)

POD_MONITOR_SPEC = _closed(
    {
        "selector": _LABEL_SELECTOR,
        "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": _POD_ENDPOINT},
        "namespaceSelector": SERVICE_MONITOR_SPEC["properties"]["namespaceSelector"],
        "jobLabel": _STR,
        "podTargetLabels": {"type": "array", "items": _STR},
        "sampleLimit": {"type": "integer", "minimum": 0},
        **_names(*_SCRAPE_SETTINGS),
    },
    required=("selector", "podMetricsEndpoints"),
)

_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$",
}

_RULE = {
    "oneOf": [
        _closed(
            {
                "alert": _STR,
                "expr": _STR,
                "for": _DURATION,
                "keep_firing_for": _DURATION,
                "labels": _STR_MAP,
                "annotations": _STR_MAP,
            },
            required=("alert", "expr"),
        ),
        _closed({"record": _STR, "expr": _STR, "labels": _STR_MAP}, required=("record", "expr")),
    ]
}

PROMETHEUS_RULE_SPEC = _closed(
    {
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": _closed(
                {
                    "name": {"type": "string", "minLength": 1},
                    "rules": {"type": "array", "minItems": 1, "items": _RULE},
                    "interval": _DURATION,
                    "labels": _STR_MAP,
                    "limit": {"type": "integer"},
                    "partial_response_strategy": _STR,
                    "query_offset": _DURATION,
                },
                required=("name", "rules"),
            ),
        }
    },
    required=("groups",),
)

CUSTOM_SPECS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SPEC,
    ("monitoring.coreos.com/v1", "PodMonitor"): POD_MONITOR_SPEC,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE_SPEC,
}

_TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec"}


def schema_errors(doc: Manifest, version: str) -> list[str]:
    """What is wrong with ``doc`` against Kubernetes ``version``'s strict schema (empty when it is valid)."""
    custom = CUSTOM_SPECS.get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if custom is not None:
        return _custom_errors(doc, custom, version)
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top)"
        return [f"{where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [str(exc.message)]
    return []


def _custom_errors(doc: Manifest, spec_schema: dict[str, Any], version: str) -> list[str]:
    errors = [f"unknown top-level field {name!r}" for name in sorted(set(doc) - _TOP_LEVEL)]
    as_configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})}
    errors += [f"metadata: {e}" for e in schema_errors(as_configmap, version)]
    validator = jsonschema.Draft202012Validator(spec_schema)
    for error in sorted(validator.iter_errors(doc.get("spec")), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path)
        errors.append(f"spec.{where}: {error.message}")
    return errors
