"""The deployment files in docs/: Kubernetes manifests against Kubernetes' schemas (kubernetes-validate, its
schemas bundled), the KEDA objects and the Compose file by what they must hold, and the Prometheus rules and
Grafana dashboard by naming only metrics that a real scrape of /metrics has. No cluster runs here."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from rq import Queue

from tests.support import ROOT

DEPLOY = ROOT / "docs" / "deploy"
K8S_VERSION = "1.37.0"
# Names a deployment may set besides Easel's own settings (webapp/config.py): libraries' and services' own.
OTHER_NAMES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "HF_HUB_OFFLINE", "HF_HOME",
               "TRANSFORMERS_OFFLINE", "PROMETHEUS_MULTIPROC_DIR", "REDIS_PASSWORD", "WEB_CONCURRENCY",
               "OTEL_EXPORTER_OTLP_ENDPOINT", "LOG_FORMAT"}


def easel_settings() -> set[str]:
    """Every environment variable webapp/config.py reads."""
    source = (ROOT / "webapp" / "config.py").read_text()
    readers = r"(?:environ\.get|_int|_bool|_networks|_positive|_rate|_intervals)\(\s*(?:os\.environ\.get\()?"
    return set(re.findall(readers + r'"([A-Z][A-Z0-9_]+)"', source))


def manifests() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def test_kubernetes_manifests_pass_the_schema_check():
    import kubernetes_validate

    docs = manifests()
    kinds = {doc["kind"] for _, doc in docs}
    assert {"Deployment", "Service", "ConfigMap", "Secret", "Job", "ScaledObject"} <= kinds
    for name, doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked below
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_kubernetes_manifests_fit_together_and_name_real_settings():
    docs = manifests()
    by_kind: dict[str, dict[str, dict]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
        assert doc["metadata"].get("namespace", "easel") == "easel"
    config, secret = by_kind["ConfigMap"]["easel"], by_kind["Secret"]["easel"]
    known = easel_settings() | OTHER_NAMES
    assert set(config["data"]) | set(secret["stringData"]) <= known, (set(config["data"]) | set(secret["stringData"])) - known
    workloads = [*by_kind["Deployment"].values(), *by_kind["Job"].values()]
    for workload in workloads:
        spec = workload["spec"]["template"]["spec"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        if "selector" in workload["spec"]:
            assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef")
                assert ref["name"] in by_kind["ConfigMap" if "configMapRef" in source else "Secret"]
            assert {env["name"] for env in container.get("env", [])} <= known
            command = container.get("command", [])
            if command[:3] == ["python", "-m", "jobs.worker"]:
                assert (ROOT / "jobs" / "worker.py").exists()
                assert command[command.index("--queues") + 1] in {"generate", "default"}
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in by_kind["PersistentVolumeClaim"]
    worker = by_kind["Deployment"]["easel-worker"]["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] >= 300  # a stopping worker finishes its batch first
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    web = by_kind["Deployment"]["easel-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/healthz"  # a web pod's readiness is not the workers'
    for service in by_kind["Service"].values():
        assert any(service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
                   for d in by_kind["Deployment"].values())


def test_keda_scales_the_generation_workers_on_rq_queue_lengths():
    from models.catalog import DEFAULT_MODEL

    docs = manifests()
    scaled = [doc for _, doc in docs if doc["kind"] == "ScaledObject"]
    auths = {doc["metadata"]["name"]: doc for _, doc in docs if doc["kind"] == "TriggerAuthentication"}
    deployments = {doc["metadata"]["name"] for _, doc in docs if doc["kind"] == "Deployment"}
    secret = next(doc for _, doc in docs if doc["kind"] == "Secret")
    assert len(scaled) == 1
    spec = scaled[0]["spec"]
    assert scaled[0]["apiVersion"] == "keda.sh/v1alpha1"
    assert spec["scaleTargetRef"]["name"] == "easel-worker" and "easel-worker" in deployments
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]  # a warm worker: no cold model load to wait on
    # RQ's own key for each queue the workers serve: the bundled model's and the plain one
    from redis import Redis

    offline = Redis(host="127.0.0.1", port=1)  # never connected: a Queue's key is computed, not read
    expected = {Queue(name, connection=offline).key for name in ("generate", f"generate:{DEFAULT_MODEL}")}
    lists = set()
    for trigger in spec["triggers"]:
        assert trigger["type"] == "redis"
        metadata = trigger["metadata"]
        assert int(metadata["listLength"]) >= 1 and re.fullmatch(r"[\w.-]+:\d+", metadata["address"])
        lists.add(metadata["listName"])
        auth = auths[trigger["authenticationRef"]["name"]]
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    assert expected <= lists, lists


def test_compose_runs_every_process_on_redis_postgresql_and_s3():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # merge keys (<<) resolved as Compose does
    services = compose["services"]
    assert {"web", "worker", "worker-gpu", "chores", "cron", "migrate", "postgres", "redis", "minio"} <= set(services)
    known = easel_settings() | OTHER_NAMES
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in compose["volumes"], (name, source)
        if service.get("image", "").startswith("${EASEL"):
            assert set(service["environment"]) <= known, set(service["environment"]) - known
            assert service["environment"]["STORAGE"] == "s3"
            assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert services["worker"]["command"][:3] == ["python", "-m", "jobs.worker"]
    assert services["worker"]["stop_grace_period"] == "10m"
    assert services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert services["cron"]["command"] == ["rq", "cron", "jobs.cron"]
    assert "migrate" not in services["migrate"].get("depends_on", {})
    # one tmpfs volume for the counts of the host's processes
    assert services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/run/easel-metrics"
    assert compose["volumes"]["metrics"]["driver_opts"]["type"] == "tmpfs"


def test_containerfile_installs_the_pinned_requirements():
    lines = [line.strip() for line in (DEPLOY / "Containerfile").read_text().splitlines()]
    instructions = [line.split()[0] for line in lines if line and not line.startswith("#") and not line.startswith("&&")
                    and line.split()[0].isupper()]
    assert instructions[0] == "FROM" and "USER" in instructions and "CMD" in instructions
    text = (DEPLOY / "Containerfile").read_text()
    assert "pip install -r requirements.txt" in text and "grep '^torch==' requirements.txt" in text
    assert "spandrel==0.4.2 einops==0.8.2" in text and "spandrel==0.4.2 einops==0.8.2" in (ROOT / "Makefile").read_text()
    assert "postgresql-client" in text  # pg_dump for `flask backup`
    assert "HF_HUB_OFFLINE=1" in text


def metric_names(app, client) -> set[str]:
    """The metric families a real scrape of /metrics describes."""
    app.config["METRICS_TOKEN"] = "t"
    client.get("/healthz")  # one timed request
    text = client.get("/metrics", headers={"Authorization": "Bearer t"}).get_data(as_text=True)
    return set(re.findall(r"^# TYPE (\w+) \w+$", text, flags=re.M))


def named_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\b(easel_[a-z_]+)", expr))


def family(name: str, families: set[str]) -> bool:
    """A sample name belongs to a family: counters end in _total, histograms add _bucket, _count and _sum."""
    return any(name == f or name in {f + "_total", f + "_bucket", f + "_count", f + "_sum"} for f in families)


def balanced(expr: str) -> bool:
    depth = 0
    for char in re.sub(r'"[^"]*"', "", expr):
        depth += {"(": 1, ")": -1, "[": 1, "]": -1, "{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_alert_rules_and_dashboard_name_metrics_that_exist(app, client):
    families = metric_names(app, client)
    for wanted in ("easel_generations_total", "easel_images_total", "easel_generation_seconds", "easel_queue_jobs",
                   "easel_workers", "easel_http_request_duration_seconds", "easel_emails_total", "easel_batch_size"):
        assert family(wanted, families), wanted
    rules = yaml.safe_load((DEPLOY / "monitoring" / "alerts.yaml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in alerts}
    assert {"EaselQueueBackingUp", "EaselNoLiveGenerationWorker", "EaselGenerationsFailing", "EaselHttpErrors"} <= names
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] in {"warning", "critical"} and rule["annotations"]["summary"]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"])
        assert balanced(rule["expr"]), rule["alert"]
        used = named_metrics(rule["expr"])
        assert used and all(family(name, families) for name in used), (rule["alert"], used - families)
    dashboard = json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    for expr in exprs:
        assert balanced(expr) and named_metrics(expr), expr
        assert all(family(name, families) for name in named_metrics(expr)), expr
    covered = set().union(*map(named_metrics, exprs))
    for wanted in ("easel_generations_total", "easel_images_total", "easel_queue_jobs", "easel_workers",
                   "easel_emails_total"):
        assert wanted in covered


def test_procfile_processes_are_in_the_deployments():
    """What `make run` runs is what the Compose file and the manifests run."""
    procfile = (ROOT / "Procfile").read_text()
    for module in ("webapp.serve", "jobs.worker --queues generate", "jobs.worker --queues default", "jobs.cron"):
        assert module in procfile
        assert module.replace(" ", '", "') in (DEPLOY / "compose.yaml").read_text()
    assert '"webapp.serve"' in (DEPLOY / "Containerfile").read_text()
    assert '"webapp.serve"' in (DEPLOY / "k8s" / "40-web.yaml").read_text()
    assert Path(DEPLOY / "README.md").exists()
