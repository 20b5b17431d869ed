"""Kubernetes manifests: valid against the Kubernetes schemas, buildable by kustomize, and consistent.

Schema validity (kubernetes-validate's strict schemas, offline) is necessary but says nothing about whether
the pieces fit: the tests below also hold the selectors, ports, names and the shutdown timing together, and
load the ConfigMap and the Secret template into the real ``Settings``.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from eligibility_svc.settings import Settings
from tests.support.deploy_schemas import VERSIONS, schema_errors
from tests.support.deploy_tools import K8S, ROOT, Manifest, key, kustomize, load_documents, manifest_files

BUILDS = ("base", "redis", "overlays/example")
WORKLOADS = {"Deployment", "StatefulSet", "CronJob"}
OUR_IMAGE = re.compile(r"(^|/)eligibility-svc(:|@|$)")
PRESTOP_MARGIN_SECONDS = (1, 15)  # what terminationGracePeriodSeconds may add past preStop + shutdown grace


@pytest.fixture(scope="module")
def example() -> list[Manifest]:
    return kustomize(K8S / "overlays" / "example")


def by_key(docs: list[Manifest]) -> dict[str, Manifest]:
    return {key(doc): doc for doc in docs}


def pod_spec(doc: Manifest) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    result: dict[str, Any] = spec["template"]["spec"]
    return result


def pod_labels(doc: Manifest) -> dict[str, str]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    labels: dict[str, str] = spec["template"]["metadata"]["labels"]
    return labels


def workloads(docs: list[Manifest]) -> Iterator[Manifest]:
    return (doc for doc in docs if doc["kind"] in WORKLOADS)


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels and In/NotIn/Exists matchExpressions) against ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        ok = {
            "In": value in expression.get("values", []),
            "NotIn": value not in expression.get("values", []),
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[operator]
        if not ok:
            return False
    return True


# --- schemas --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_files_are_valid(path: Path, version: str) -> None:
    docs = load_documents(path)
    assert docs, path
    for doc in docs:
        assert schema_errors(doc, version) == [], f"{path.name} {key(doc)}"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("directory", BUILDS)
def test_kustomize_output_is_valid(directory: str, version: str) -> None:
    docs = kustomize(K8S / directory)
    assert docs
    keys = [key(doc) for doc in docs]
    assert len(keys) == len(set(keys)), "kustomize rendered an object twice"
    for doc in docs:
        assert schema_errors(doc, version) == [], key(doc)


def test_the_validators_reject_unknown_fields_and_wrong_types(example: list[Manifest]) -> None:
    docs = by_key(example)
    deployment = json.loads(json.dumps(docs["Deployment/eligibility-svc-api"]))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    assert schema_errors(deployment, VERSIONS[0])
    deployment = json.loads(json.dumps(docs["Deployment/eligibility-svc-api"]))
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "35"
    assert schema_errors(deployment, VERSIONS[0])
    monitor = json.loads(json.dumps(docs["ServiceMonitor/eligibility-svc"]))
    monitor["spec"]["endpoints"][0]["scrapeInterval"] = "30s"
    assert schema_errors(monitor, VERSIONS[0])
    pods = json.loads(json.dumps(docs["PodMonitor/eligibility-svc-worker"]))
    assert schema_errors(pods, VERSIONS[0]) == []
    pods["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["action"] = "rename"
    assert schema_errors(pods, VERSIONS[0])
    pods = json.loads(json.dumps(docs["PodMonitor/eligibility-svc-worker"]))
    pods["spec"]["endpoints"] = pods["spec"].pop("podMetricsEndpoints")  # a ServiceMonitor's field name
    assert schema_errors(pods, VERSIONS[0])
    rule = json.loads(json.dumps(docs["PrometheusRule/eligibility-svc"]))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert schema_errors(rule, VERSIONS[0])
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert schema_errors(unknown, VERSIONS[0])


# --- the pieces fit -----------------------------------------------------------------------------------------------


def test_everything_lands_in_the_overlays_namespace(example: list[Manifest]) -> None:
    for doc in example:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "eligibility", key(doc)


def test_pods_run_non_root_read_only_without_capabilities(example: list[Manifest]) -> None:
    for doc in workloads(example):
        spec = pod_spec(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True, key(doc)
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, key(doc)
        assert spec["automountServiceAccountToken"] is False, key(doc)
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, key(doc)
            assert context["allowPrivilegeEscalation"] is False, key(doc)
            assert context["capabilities"]["drop"] == ["ALL"], key(doc)
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), key(doc)
            assert "memory" in resources["limits"], key(doc)


def test_our_containers_run_the_image_user_with_a_writable_tmp(example: list[Manifest]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid, gid = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)[-1]
    images = set()
    for doc in workloads(example):
        spec = pod_spec(doc)
        ours = [c for c in spec["containers"] if OUR_IMAGE.search(c["image"])]
        if not ours:
            continue
        assert spec["securityContext"]["runAsUser"] == int(uid), key(doc)
        assert spec["securityContext"]["runAsGroup"] == int(gid), key(doc)
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in ours:
            images.add(container["image"])
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, key(doc)
    assert images == {"registry.example.com/eligibility-svc:0.1.0"}


def test_api_probes_use_the_service_endpoints(example: list[Manifest]) -> None:
    container = pod_spec(by_key(example)["Deployment/eligibility-svc-api"])["containers"][0]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names == {"http": 8080}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["args"][:1] == ["serve"]
    assert container["args"][container["args"].index("--host") + 1] == "0.0.0.0"


def test_worker_serves_metrics_and_health_on_its_metrics_port(example: list[Manifest]) -> None:
    container = pod_spec(by_key(example)["Deployment/eligibility-svc-worker"])["containers"][0]
    assert container["args"][:1] == ["worker"]
    port = int(container["args"][container["args"].index("--metrics-port") + 1])
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # The kubelet gives up later than the worker itself calls its loop stalled, never on one slow step.
    probe = container["livenessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 60


def test_pod_monitor_scrapes_the_workers_metrics_port(example: list[Manifest]) -> None:
    docs = by_key(example)
    monitor = docs["PodMonitor/eligibility-svc-worker"]["spec"]
    worker = docs["Deployment/eligibility-svc-worker"]
    assert selects(monitor["selector"], pod_labels(worker))
    assert not selects(monitor["selector"], pod_labels(docs["Deployment/eligibility-svc-api"]))
    ports = {p["name"] for p in pod_spec(worker)["containers"][0]["ports"]}
    (endpoint,) = monitor["podMetricsEndpoints"]
    assert endpoint["port"] in ports
    assert endpoint["path"] == "/metrics"
    assert {"targetLabel": "job", "replacement": "eligibility-svc-worker", "action": "replace"} in endpoint[
        "relabelings"
    ]
    assert docs["PodMonitor/eligibility-svc-worker"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_termination_grace_covers_the_prestop_sleep_and_the_shutdown_grace(example: list[Manifest]) -> None:
    docs = by_key(example)
    shutdown_grace = float(docs["ConfigMap/eligibility-svc-config"]["data"]["ELIG_SHUTDOWN_GRACE_SECONDS"])
    spec = pod_spec(docs["Deployment/eligibility-svc-api"])
    command = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    needed = int(command[1]) + shutdown_grace
    low, high = PRESTOP_MARGIN_SECONDS
    assert needed + low <= spec["terminationGracePeriodSeconds"] <= needed + high
    # The sleep outlasts the readiness probe's failure detection, so endpoints go before the service stops.
    assert int(command[1]) >= 5


def test_service_hpa_and_pdbs_point_at_real_pods(example: list[Manifest]) -> None:
    docs = by_key(example)
    api_labels = pod_labels(docs["Deployment/eligibility-svc-api"])
    service = docs["Service/eligibility-svc"]["spec"]
    assert selects({"matchLabels": service["selector"]}, api_labels)
    container = pod_spec(docs["Deployment/eligibility-svc-api"])["containers"][0]
    assert {p["targetPort"] for p in service["ports"]} <= {p["name"] for p in container["ports"]}
    target = docs["HorizontalPodAutoscaler/eligibility-svc-api"]["spec"]["scaleTargetRef"]
    assert f"{target['kind']}/{target['name']}" in docs
    assert "replicas" not in docs["Deployment/eligibility-svc-api"]["spec"], "the HPA owns the API's replicas"
    all_pods = [pod_labels(doc) for doc in workloads(example)]
    for doc in example:
        if doc["kind"] in {"PodDisruptionBudget", "NetworkPolicy", "StatefulSet", "Deployment"}:
            selector = doc["spec"]["podSelector" if doc["kind"] == "NetworkPolicy" else "selector"]
            assert any(selects(selector, labels) for labels in all_pods), f"{key(doc)} selects no pod"


def test_referenced_configmaps_and_secrets_exist(example: list[Manifest]) -> None:
    docs = by_key(example)
    templates = [doc for path in K8S.rglob("*.template.yaml") for doc in load_documents(path)]
    secrets = {doc["metadata"]["name"] for doc in templates}
    for doc in workloads(example):
        spec = pod_spec(doc)
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, key(doc)
            if "configMap" in volume:
                assert f"ConfigMap/{volume['configMap']['name']}" in docs, key(doc)
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert f"ConfigMap/{source['configMapRef']['name']}" in docs, key(doc)
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    template = next(t for t in templates if t["metadata"]["name"] == ref["name"])
                    assert ref["key"] in template["stringData"], key(doc)


PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": "kube-prometheus-stack"}


def test_network_policies_let_in_only_the_api_port_and_out_only_dns_redis_https(example: list[Manifest]) -> None:
    docs = by_key(example)
    policies = [doc for doc in example if doc["kind"] == "NetworkPolicy"]
    api = pod_labels(docs["Deployment/eligibility-svc-api"])
    worker = pod_labels(docs["Deployment/eligibility-svc-worker"])
    batch = pod_labels(docs["CronJob/eligibility-svc-previsit-batch"])
    worker_ports = [{"port": "metrics", "protocol": "TCP"}]
    for labels, ingress_ports in ((api, [{"port": "http", "protocol": "TCP"}]), (worker, worker_ports), (batch, [])):
        applying = [p["spec"] for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert any("Ingress" in p["policyTypes"] for p in applying)
        assert any("Egress" in p["policyTypes"] for p in applying)
        allowed_in = [port for p in applying for rule in p.get("ingress", []) for port in rule.get("ports", [])]
        assert allowed_in == ingress_ports
        allowed_out = {
            (port["port"], port["protocol"]) for p in applying for rule in p.get("egress", []) for port in rule["ports"]
        }
        assert allowed_out == {(53, "UDP"), (53, "TCP"), (6379, "TCP"), (443, "TCP")}
    # The workers' metrics port: from Prometheus pods only, not from the API or anything else.
    worker_rules = [
        rule for p in policies if selects(p["spec"]["podSelector"], worker) for rule in p["spec"].get("ingress", [])
    ]
    (peer,) = [peer for rule in worker_rules for peer in rule["from"]]
    assert peer["namespaceSelector"] == {}
    assert selects(peer["podSelector"], PROMETHEUS_POD)
    assert not selects(peer["podSelector"], api)
    redis = pod_labels(docs["StatefulSet/eligibility-redis"])
    redis_policy = next(p["spec"] for p in policies if selects(p["spec"]["podSelector"], redis))
    assert redis_policy["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in redis_policy, "Redis reaches nothing"
    (rule,) = redis_policy["ingress"]
    assert all(selects(rule["from"][0]["podSelector"], labels) for labels in (api, worker, batch))


def test_cronjob_enqueues_tomorrows_batch_in_the_evening(example: list[Manifest]) -> None:
    cronjob = by_key(example)["CronJob/eligibility-svc-previsit-batch"]["spec"]
    ZoneInfo(cronjob["timeZone"])
    assert cronjob["concurrencyPolicy"] == "Forbid"
    _minute, hour, *_ = cronjob["schedule"].split()
    assert 15 <= int(hour) <= 21, "the evening before the visits, after the schedule settles"
    container = cronjob["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["batch", "run", "--tomorrow", "--no-wait"]  # enqueue only: workers verify


def test_redis_keeps_the_outbox_across_restarts(example: list[Manifest]) -> None:
    docs = by_key(example)
    conf = docs["ConfigMap/eligibility-redis-config"]["data"]["redis.conf"]
    settings = dict(line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#"))
    assert settings["appendonly"] == "yes"
    assert settings["maxmemory-policy"].startswith("volatile-"), "only keys with a TTL may be evicted"
    statefulset = docs["StatefulSet/eligibility-redis"]["spec"]
    assert statefulset["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    mounts = {m["mountPath"] for m in statefulset["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert settings["dir"] in mounts


# --- configuration reaches Settings -------------------------------------------------------------------------------

# A value for each Secret key, and where it must land in Settings.
SECRET_SAMPLES: dict[str, tuple[str, str, str]] = {
    "ELIG_REDIS_URL": (
        "redis://:s3cret@eligibility-redis:6379/0",
        "redis_url",
        "redis://:s3cret@eligibility-redis:6379/0",
    ),
    "ELIG_API_KEYS": (
        json.dumps([{"id": "intake01", "secret_hash": "sha256:" + "ab" * 32, "scopes": ["eligibility:check"]}]),
        "api_keys.0.id",
        "intake01",
    ),
    "ELIG_CACHE": (
        json.dumps({"key_secret": "k" * 32, "encryption_key": base64.b64encode(b"\x01" * 32).decode()}),
        "cache.key_secret",
        "k" * 32,
    ),
    "ELIG_CLEARINGHOUSE": (json.dumps({"username": "practice", "password": "pw"}), "clearinghouse.password", "pw"),
    "ELIG_ATHENA": (json.dumps({"client_id": "0oa123", "client_secret": "cs"}), "athena.client_secret", "cs"),
}
NOT_SETTINGS = {"ELIG_SECRETS_DIR"}  # read by settings.py itself, before Settings exists


def field_exists(model: type[BaseModel], path: list[str]) -> bool:
    """``path`` (lower-case names, as ``ELIG_A__B`` splits) names a field of ``model`` or of a nested model."""
    name, *rest = path
    field = model.model_fields.get(name)
    if field is None:
        return False
    annotation = field.annotation
    if not rest:
        return True
    nested = next((a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)), None)
    return isinstance(nested, type) and issubclass(nested, BaseModel) and field_exists(nested, rest)


def lookup(settings: Settings, dotted: str) -> object:
    value: object = settings
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else getattr(value, part)
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def test_every_configmap_key_is_a_setting(example: list[Manifest]) -> None:
    data = by_key(example)["ConfigMap/eligibility-svc-config"]["data"]
    unknown = [
        name for name in data if name not in NOT_SETTINGS and not field_exists(Settings, name[5:].lower().split("__"))
    ]
    assert unknown == [], "ELIG_ variables Settings would silently ignore"


def test_configmap_and_filled_secret_make_valid_settings(
    example: list[Manifest], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overlay's ConfigMap as the environment, the Secret's keys as files: the production Settings."""
    (template,) = load_documents(K8S / "base" / "secret.template.yaml")
    assert set(template["stringData"]) == set(SECRET_SAMPLES), "a Secret key without a sample here (or the reverse)"
    for name in template["stringData"]:
        (tmp_path / name).write_text(SECRET_SAMPLES[name][0])
    for name in list(os.environ):
        if name.startswith("ELIG_"):
            monkeypatch.delenv(name)
    for name, value in by_key(example)["ConfigMap/eligibility-svc-config"]["data"].items():
        monkeypatch.setenv(name, value)
    settings = Settings(_secrets_dir=tmp_path)  # type: ignore[call-arg]
    for _, (_, path, expected) in SECRET_SAMPLES.items():
        assert lookup(settings, path) == expected, path
    # The Secret's JSON and the ConfigMap's nested variables merge, neither hides the other.
    assert settings.clearinghouse.url == "https://core.clearinghouse.example.com/eligibility/realtime"
    assert settings.clearinghouse.username == "practice"
    assert settings.cache.timezone == "America/New_York"
    assert settings.shutdown_grace_seconds == 25
    assert not settings.embedded


def test_secret_templates_hold_keys_and_no_values() -> None:
    templates = list(K8S.rglob("*.template.yaml"))
    assert len(templates) == 2
    for path in templates:
        (doc,) = load_documents(path)
        assert doc["kind"] == "Secret"
        assert "data" not in doc
        assert doc["stringData"], path
        assert all(value == "" for value in doc["stringData"].values()), path
    listed = {
        (kustomization.parent / entry).resolve()
        for kustomization in K8S.rglob("kustomization.yaml")
        for entry in load_documents(kustomization)[0].get("resources", [])
    }
    assert listed.isdisjoint(path.resolve() for path in templates), "a Secret template must never be applied"
