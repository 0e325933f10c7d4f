"""What an operator deploys beside the code: the alert rules and the dashboard in deploy/ (checked by
promtool, and naming only metrics the bridge exposes), the image's lock file, the compose file, and
the command's name wherever a command is written down."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client.metrics import MetricWrapperBase

from bridge.metrics import Metrics
from tests.proc import ROOT

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "channel-bridge.json"
SELECTOR = re.compile(r"\b(bridge_\w+)(?:\{([^}]*)\})?")
BY = re.compile(r"\bby \(([^)]*)\)")


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.geteuid() != 0:
            pytest.skip(
                "promtool is not installed (Debian: apt-get install prometheus; `make test` as root does)"
            )
        raise AssertionError(
            "promtool is missing: `make system-deps` (as root) installs the prometheus package"
        )
    return promtool


def test_promtool_accepts_the_rules_and_their_tests_pass():
    promtool = _promtool()
    for command in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        result = subprocess.run([promtool, *command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def _exposed() -> dict[str, set[str]]:
    """Every series the bridge exposes (as bridge/metrics.py defines them), with its label names."""
    metrics = Metrics()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))  # a child, so that its samples show
    exposed: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            exposed.setdefault(sample.name, set()).update(sample.labels)
    return exposed


def _expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every rule and every dashboard query."""
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"alert {rule['alert']}", rule["expr"]
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            yield f"panel {panel['title']!r}", target["expr"]


def test_rules_and_dashboard_use_only_metrics_and_labels_the_bridge_exposes():
    exposed = _exposed()
    assert "bridge_http_requests_total" in exposed and "bridge_bot_latency_seconds_bucket" in exposed
    expressions = list(_expressions())
    assert len(expressions) >= 12
    for where, expr in expressions:
        used = SELECTOR.findall(expr)
        assert used, f"{where}: no bridge metric in {expr}"
        known: set[str] = set()
        for name, matchers in used:
            assert name in exposed, f"{where}: {name} is not a metric of bridge/metrics.py"
            known |= exposed[name]
            for label in re.findall(r"(\w+)\s*=~?", matchers):
                assert label in exposed[name], f"{where}: {name} has no label {label!r}"
        for group in BY.findall(expr):
            for label in (part.strip() for part in group.split(",")):
                assert label in known, f"{where}: no metric in {expr} has the label {label!r}"


def test_the_dashboard_can_be_imported():
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and "id" not in dashboard  # Grafana assigns the id
    [source] = dashboard["templating"]["list"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_lock_file_pins_every_runtime_dependency_within_pyproject_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned to one version"
            pinned[canonicalize_name(name)] = version
    for dependency in map(Requirement, project["dependencies"]):
        name = canonicalize_name(dependency.name)
        assert name in pinned, f"{dependency.name} is missing from requirements.lock (run `make lock`)"
        assert dependency.specifier.contains(pinned[name]), f"{name}=={pinned[name]}: run `make lock`"


def test_compose_builds_the_image_once_shares_data_and_lets_the_env_file_set_the_database():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    bridge = {name: s for name, s in services.items() if s.get("image") == "channel-bridge"}
    assert sorted(bridge) == ["migrate", "web", "worker"]
    assert [name for name, s in services.items() if "build" in s] == ["migrate"]
    for name, service in bridge.items():
        assert service["command"][0] == "chatbridge", name
        assert service["environment"]["DATABASE_URL"].startswith("${DATABASE_URL:-"), name
        assert "build" in service or service["pull_policy"] == "never", name  # never pulled from a registry
    # the workers store what the web serves (people's files, voice answers) and remove it (retention)
    assert services["worker"]["volumes"] == services["web"]["volumes"] == ["data:/data"]
    # a worker's metrics can be scraped, and its health is checked on that port
    port = services["worker"]["command"][services["worker"]["command"].index("--metrics-port") + 1]
    assert port in " ".join(services["worker"]["healthcheck"]["test"])


@pytest.mark.parametrize(
    "path",
    ["README.md", "Makefile", "Procfile", "Dockerfile", "docker-compose.yml", "deploy/prometheus/alerts.yml"],
)
def test_commands_are_written_as_chatbridge(path):
    """`bridge` is iproute2's command on Linux: a `bridge check` in a document runs that one."""
    old = re.compile(
        r"(?<![\w./-])bridge (serve|worker|migrate|check|telegram|dead-letters|send|participants)\b"
    )
    text = (ROOT / path).read_text()
    assert not old.findall(text), [m.group(0) for m in old.finditer(text)]
    assert '"bridge"' not in text and "bin/bridge " not in text
