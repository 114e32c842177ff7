"""Offline checks of the operator recipes in ``deploy/`` and of ``docs/deploying.md``.

No container engine, Kubernetes or network here, so the recipes are checked for what
can be checked without them: the YAML parses; every ``taskflow ...`` and ``dask
scheduler/worker ...`` command in them parses against the real click commands (an option
the CLI lacks fails); ports, addresses, image names and database settings agree between
services; ``DASK_...__...`` variables name real config keys; the image recipe builds the
package of this repository with extras it has, on the Python the tests run on; the
cluster-class examples name real import paths and real keyword arguments.

Keyword names of third-party cluster classes and Helm chart keys are recorded below from
their sources (dask/dask-kubernetes, dask/dask-cloudprovider, dask/helm-chart), and read
from the installed class instead when it is importable.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import json
import py_compile
import re
import shlex
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import click
import dask
import distributed
import pytest
import yaml
from dask.utils import parse_timedelta
from distributed.cli import dask_scheduler, dask_worker
from packaging.specifiers import SpecifierSet
from sqlalchemy.engine import make_url

from taskflow.cli import cli, parse_parameters
from taskflow.exceptions import TaskflowError
from taskflow.executors import DaskExecutor

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
HELM_SERVE = DEPLOY / "helm" / "taskflow-serve.yaml"
KUBE_CONFIG = DEPLOY / "kubernetes" / "taskflow.yaml"
DOCS = ROOT / "docs" / "deploying.md"

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
TASKFLOW_DEFAULTS = yaml.safe_load((ROOT / "taskflow" / "taskflow.yaml").read_text())
DISTRIBUTED_DEFAULTS = yaml.safe_load(
    (Path(distributed.__file__).parent / "distributed.yaml").read_text())
THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
TASKFLOW_SERVICES = ("scheduler", "worker", "serve")

# KubeCluster.__init__ keywords (dask_kubernetes/operator/kubecluster/kubecluster.py).
KUBECLUSTER_KWARGS = {
    "name", "namespace", "image", "n_workers", "resources", "env", "worker_command",
    "port_forward_cluster_ip", "create_mode", "shutdown_on_close", "idle_timeout",
    "resource_timeout", "scheduler_service_type", "custom_cluster_spec",
    "scheduler_forward_port", "jupyter", "loop", "asynchronous",
}
KUBECLUSTER_ADAPT = {"minimum", "maximum"}  # KubeCluster.adapt(minimum=None, maximum=None)
# ECSCluster.__init__ keywords, which FargateCluster takes (dask_cloudprovider/aws/ecs.py).
FARGATE_KWARGS = {
    "fargate_scheduler", "fargate_workers", "fargate_spot", "image", "cpu_architecture",
    "scheduler_cpu", "scheduler_mem", "scheduler_port", "scheduler_timeout",
    "scheduler_extra_args", "scheduler_task_definition_arn", "scheduler_task_kwargs",
    "scheduler_address", "worker_cpu", "worker_nthreads", "worker_mem", "worker_gpu",
    "worker_extra_args", "worker_task_definition_arn", "worker_task_kwargs", "n_workers",
    "workers_name_start", "workers_name_step", "cluster_arn", "cluster_name_template",
    "execution_role_arn", "task_role_arn", "task_role_policies", "cloudwatch_logs_group",
    "cloudwatch_logs_stream_prefix", "cloudwatch_logs_default_retention", "vpc", "subnets",
    "security_groups", "environment", "tags", "skip_cleanup", "aws_access_key_id",
    "aws_secret_access_key", "region_name", "platform_version", "fargate_use_private_ip",
    "mount_points", "volumes", "mount_volumes_on_scheduler",
}
# FargateCluster.adapt is distributed's Cluster.adapt: keywords of Adaptive.
SPEC_CLUSTER_ADAPT = set(inspect.signature(distributed.deploy.Adaptive).parameters) - {"cluster"}

CLUSTER_SCRIPTS = {
    # script: (cluster class, what to pip install, its keywords, its adapt keywords)
    "kubernetes/kubecluster.py": ("dask_kubernetes.operator.KubeCluster", "dask-kubernetes",
                                  KUBECLUSTER_KWARGS, KUBECLUSTER_ADAPT),
    "aws/fargate.py": ("dask_cloudprovider.aws.FargateCluster", "dask-cloudprovider[aws]",
                       FARGATE_KWARGS, SPEC_CLUSTER_ADAPT),
}

# Keys of Dask's Helm chart (dask/values.yaml and the templates that read them).
HELM_TOP_KEYS = {"nameOverride", "fullnameOverride", "scheduler", "webUI", "worker",
                 "additional_worker_groups", "jupyter", "label"}
HELM_IMAGE_KEYS = {"repository", "tag", "pullPolicy", "pullSecrets"}
HELM_SCHEDULER_KEYS = {
    "name", "enabled", "image", "replicas", "serviceType", "loadBalancerIP", "servicePort",
    "serviceAnnotations", "extraArgs", "resources", "tolerations", "affinity", "nodeSelector",
    "securityContext", "serviceAccountName", "metrics", "livenessProbe", "readinessProbe", "env",
}
HELM_WORKER_KEYS = {
    "name", "image", "replicas", "strategy", "custom_scheduler_url", "default_resources", "env",
    "extraArgs", "resources", "mounts", "annotations", "tolerations", "affinity",
    "nodeSelector", "securityContext", "serviceAccountName", "port", "portDashboard",
    "threads_per_worker", "metrics", "livenessProbe", "readinessProbe",
}
HELM_JUPYTER_KEYS = {"name", "enabled", "rbac", "image", "serviceType", "servicePort",
                     "password", "passwordHint", "env", "command", "args", "extraConfig",
                     "resources", "mounts", "tolerations", "affinity", "nodeSelector",
                     "securityContext", "serviceAccountName", "ingress", "livenessProbe",
                     "readinessProbe"}


# -- helpers: YAML, compose -------------------------------------------------------------
def deploy_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in suffixes
                  and "__pycache__" not in p.parts)


_COMPOSE_VAR = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's ``${VAR:-default}`` with an empty environment: the defaults."""
    if isinstance(value, str):
        return _COMPOSE_VAR.sub(lambda m: m["arg"] if m["op"] in (":-", "-") else "", value)
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    return value


@functools.cache
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load(COMPOSE.read_text()))


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def env_of(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def command_of(svc: dict[str, Any]) -> list[str]:
    cmd = svc["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]


def container_port(spec: Any) -> int:
    """``"127.0.0.1:8786:8786"``, ``"8786:8786/tcp"``, ``8786`` or ``{target: 8786}``."""
    if isinstance(spec, dict):
        return int(spec["target"])
    return int(str(spec).split(":")[-1].split("/")[0])


def config_key(env_name: str) -> str:
    """``DASK_TASKFLOW__EXECUTOR__CLUSTER_CLASS`` -> ``taskflow.executor.cluster_class``, as Dask reads it."""
    return env_name[len("DASK_"):].lower().replace("__", ".")


def config_key_exists(key: str) -> bool:
    defaults = {"taskflow": TASKFLOW_DEFAULTS["taskflow"],
                "distributed": DISTRIBUTED_DEFAULTS["distributed"]}
    try:
        dask.config.get(key, config=defaults)
    except KeyError:
        return False
    return True


def unknown_keys(given: dict[str, Any], defaults: dict[str, Any], path: str = "") -> Iterator[str]:
    """Keys of a config snippet that the defaults do not have.

    Free-form values (a default of ``{}`` or ``null``, like ``cluster-kwargs``) are not
    descended into.
    """
    for key, value in given.items():
        found = next((k for k in (key, key.replace("_", "-"), key.replace("-", "_"))
                      if k in defaults), None)
        if found is None:
            yield path + key
            continue
        default = defaults[found]
        if isinstance(value, dict) and isinstance(default, dict) and default:
            yield from unknown_keys(value, default, f"{path}{key}.")


# -- helpers: command lines -------------------------------------------------------------
def parse_taskflow(args: list[str]) -> tuple[str | None, click.Context | None]:
    """Parse ``taskflow ARGS`` as the real CLI does, without running anything.

    Returns the subcommand's name and context; ``(None, None)`` for ``--version``/``--help``.
    """
    try:
        group = cli.make_context("taskflow", list(args))
    except click.exceptions.Exit as e:  # --version, --help
        assert e.exit_code == 0
        return None, None
    protected = group.__dict__.get("_protected_args")
    if protected is None:  # click < 8.2
        protected = group.protected_args
    name, cmd, rest = cli.resolve_command(group, [*protected, *group.args])
    assert cmd is not None, f"taskflow has no command {name!r}"
    return name, cmd.make_context(name, rest, parent=group)


def parse_dask(command: str, args: list[str]) -> click.Context:
    """Parse ``dask scheduler ARGS`` / ``dask worker ARGS`` with distributed's click commands."""
    main = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}[command]
    ctx = main.make_context(f"dask {command}", list(args))
    # Both commands pass unknown arguments on to preload modules: none must be left over.
    assert not ctx.params.get("preload_argv"), f"unknown arguments: {ctx.params['preload_argv']}"
    return ctx


def dask_command(tokens: list[str]) -> tuple[str, list[str]] | None:
    """``[..., "dask", "worker", *args]`` or ``["dask-worker", *args]`` -> ("worker", args)."""
    for i, tok in enumerate(tokens):
        if tok == "dask" and i + 1 < len(tokens) and tokens[i + 1] in ("scheduler", "worker"):
            return tokens[i + 1], tokens[i + 2:]
        if tok in ("dask-scheduler", "dask-worker"):
            return tok.split("-")[1], tokens[i + 1:]
    return None


def flow_file(target: str, mounts: dict[str, Path] | None = None) -> Path | None:
    """The file of ``path/file.py:flow`` on this machine (through ``mounts``), if it is one."""
    path = target.rpartition(":")[0] if ":" in target else target
    if not path.endswith(".py"):
        return None
    for inside, outside in (mounts or {}).items():
        if path.startswith(inside.rstrip("/") + "/"):
            return outside / path[len(inside.rstrip("/")) + 1:]
    return ROOT / path


@functools.cache
def _load_flow(path: str, name: str) -> Any:
    from taskflow.loading import load_flow

    saved, dont_write = list(sys.path), sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        return load_flow(f"{path}:{name}")
    finally:
        sys.path[:] = saved
        sys.dont_write_bytecode = dont_write


def check_taskflow_command(args: list[str], mounts: dict[str, Path] | None = None,
                           must_exist: bool = True) -> tuple[str | None, click.Context | None]:
    """Parse a taskflow command and check the values click cannot: JSON, parameters, flows."""
    name, ctx = parse_taskflow(args)
    if ctx is None:
        return name, ctx
    params = ctx.params
    values = parse_parameters(params.get("params") or ())
    for option in ("cluster_kwargs", "adapt"):
        if isinstance(params.get(option), str):
            assert isinstance(json.loads(params[option]), dict), f"--{option} must be a JSON object"
    if params.get("cron") is not None or params.get("every") is not None:
        try:
            from taskflow.deploy.schedules import parse_schedule
        except ImportError:  # croniter missing: the schedule is checked by the serve tests
            pass
        else:
            parse_schedule(cron=params.get("cron"), every=params.get("every"),
                           timezone=params.get("timezone"))
    targets = params.get("targets") or params.get("target") or ()
    for target in [targets] if isinstance(targets, str) else targets:
        file = flow_file(target, mounts)
        if file is None:
            continue  # a bare flow name (an ad hoc run through serve) or a module
        if not file.exists():
            assert not must_exist, f"{target}: no file {file}"
            continue
        flow = _load_flow(str(file), target.rpartition(":")[2])
        flow.bind_parameters(values)  # unknown or missing parameters fail here
    return name, ctx


def assert_grace_covers_stop_timeout(ctx: click.Context, grace: float) -> None:
    """With --on-stop wait, the process manager must wait longer than serve does."""
    if ctx.params.get("on_stop", "wait") != "wait":
        return
    timeout = ctx.params.get("stop_timeout") or dask.config.get(
        "taskflow.serve.stop-timeout", default="30s", config=TASKFLOW_DEFAULTS)
    assert grace > parse_timedelta(timeout), "SIGKILL would come before --stop-timeout"


def load_script(relpath: str) -> ModuleType:
    path = DEPLOY / relpath
    spec = importlib.util.spec_from_file_location("deploy_" + path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in deploy/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = dont_write
    return module


def keywords_of(cluster_class: str, recorded: set[str]) -> set[str]:
    """The keyword names of a cluster class: from the installed class, else ``recorded``."""
    module, _, name = cluster_class.rpartition(".")
    if importlib.util.find_spec(module.split(".")[0]) is None:
        return recorded
    cls = getattr(importlib.import_module(module), name)
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p.name for p in inspect.signature(init).parameters.values()
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names - {"self"}


# -- every YAML -------------------------------------------------------------------------
@pytest.mark.parametrize("path", deploy_files(".yaml", ".yml"), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"
    assert all(isinstance(d, dict) for d in docs)


def test_recipes_present() -> None:
    for path in (DOCKERFILE, DOCKERIGNORE, COMPOSE, HELM_VALUES, HELM_SERVE, KUBE_CONFIG,
                 DEPLOY / "kubernetes" / "kubecluster.py", DEPLOY / "aws" / "fargate.py", DOCS):
        assert path.is_file(), path


# -- the image --------------------------------------------------------------------------
@functools.cache
def dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        op, _, rest = buf.partition(" ")
        out.append((op.upper(), rest.strip()))
        buf = ""
    assert not buf, "the Dockerfile ends inside a continued line"
    return out


def dockerfile_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for op, rest in dockerfile():
        if op == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args.setdefault(name.strip(), value.strip().strip('"'))
    return args


def test_dockerfile_uses_the_tests_python() -> None:
    version = dockerfile_args()["PYTHON_VERSION"]
    assert version == THIS_PYTHON, "clients and workers must run the same Python major.minor"
    assert SpecifierSet(PROJECT["requires-python"]).contains(f"{version}.0")
    froms = [rest.split()[0] for op, rest in dockerfile() if op == "FROM"]
    assert froms and all(f == "python:${PYTHON_VERSION}-slim" for f in froms), froms


def test_dockerfile_builds_this_package_with_real_extras() -> None:
    instructions = dockerfile()
    copied = [s for op, rest in instructions if op == "COPY" and "--from" not in rest
              for s in rest.split()[:-1]]
    # Everything `pip wheel .` reads, from the build context (= the repository root).
    wanted = {"pyproject.toml", PROJECT["readme"]}
    wanted |= {inc.rstrip("*") for inc in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {c.rstrip("/") for c in copied} >= wanted
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: not in the repository root"
    runs = [rest for op, rest in instructions if op == "RUN"]
    assert any("pip wheel" in r and r.rstrip().endswith(" .") for r in runs)
    wheel = re.sub(r"[-_.]+", "_", PROJECT["name"]).lower()
    install = [r for r in runs if "pip install" in r and f"{wheel}-*.whl" in r]
    assert install and "[${EXTRAS}]" in install[0], "installs the wheel with ${EXTRAS}"
    extras = set(dockerfile_args()["EXTRAS"].split(","))
    assert extras >= {"s3", "postgres"}
    assert extras <= set(PROJECT["optional-dependencies"]), "extras pyproject.toml has"
    assert dockerfile_args()["TASKFLOW_VERSION"] == PROJECT["version"]
    # The recipes pin the image tag to the version the package has.
    assert compose_image()[1] == PROJECT["version"]


def test_dockerfile_runtime() -> None:
    instructions = dockerfile()
    user = [rest for op, rest in instructions if op == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert user.split(":")[0].isdigit(), "numeric, for Kubernetes runAsNonRoot"
    entrypoint = json.loads([rest for op, rest in instructions if op == "ENTRYPOINT"][-1])
    assert entrypoint[0].endswith("tini") and entrypoint[-1] == "--"
    apt = [r for op, r in instructions if op == "RUN" and "apt-get install" in r]
    packages = {t for r in apt for t in r.split("apt-get install", 1)[1].split("&&")[0].split()
                if not t.startswith("-")}
    assert "tini" in packages
    assert packages <= {"tini", "tzdata", "ca-certificates"}, "no build tools in the image"
    labels = " ".join(rest for op, rest in instructions if op == "LABEL")
    assert "org.opencontainers.image.version" in labels
    # The Helm chart, dask-kubernetes and dask-cloudprovider run dask-scheduler/dask-worker.
    text = DOCKERFILE.read_text()
    assert "for cmd in scheduler worker" in text and "exec dask %s" in text
    assert {"8786", "8787"} <= {p for op, r in instructions if op == "EXPOSE" for p in r.split()}


def test_installed_package_is_the_one_the_image_builds() -> None:
    import importlib.metadata

    dist = importlib.metadata.distribution(PROJECT["name"])
    assert dist.version == PROJECT["version"]
    assert set(dist.metadata.get_all("Provides-Extra") or ()) >= {"s3", "postgres"}


# -- .dockerignore ----------------------------------------------------------------------
def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """A Docker ignore pattern (Go's filepath.Match plus ``**``) as a regex."""
    rx, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                rx, i = rx + "(?:.*/)?", i + 1
            else:
                rx += ".*"
            continue
        c = pattern[i]
        if c == "*":
            rx += "[^/]*"
        elif c == "?":
            rx += "[^/]"
        elif c == "[":
            j = pattern.index("]", i)
            rx += "[" + pattern[i + 1:j].replace("\\", "\\\\") + "]"
            i = j
        else:
            rx += re.escape(c)
        i += 1
    return re.compile(rx + r"\Z")


@functools.cache
def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        rules.append((negate, _ignore_regex(pattern.strip("/"))))
    return rules


def ignored(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    out = False
    for negate, rx in dockerignore():
        if any(rx.match(p) for p in prefixes):
            out = not negate
    return out


@pytest.mark.parametrize("path", [
    ".git", ".git/config", ".pytest_cache/v/x", "taskflow/.pytest_cache/x", ".mypy_cache/x",
    ".ruff_cache/x", "taskflow/__pycache__/cli.cpython-311.pyc", "dask_taskflow.egg-info/PKG-INFO",
    ".benchmarks/x.json", "benchmarks/results/run.json", "history.db", "taskflow/history.db",
    "tests/test_cli.py", "build/lib/taskflow/cli.py", "dist/x.whl", "dask-worker-space/w",
    ".env", "certs/dask-key.pem", "certs/ca.pem",
])
def test_dockerignore_excludes(path: str) -> None:
    assert ignored(path)


def test_dockerignore_keeps_what_the_build_reads() -> None:
    for op, rest in dockerfile():
        if op == "COPY" and "--from" not in rest:
            for src in rest.split()[:-1]:
                assert not ignored(src.rstrip("/")), src
    package_files = [p.relative_to(ROOT).as_posix() for p in (ROOT / "taskflow").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts]
    assert "taskflow/taskflow.yaml" in package_files
    for path in package_files:
        assert not ignored(path), path


# -- compose ----------------------------------------------------------------------------
def compose_image() -> tuple[str, str]:
    repository, _, tag = service("scheduler")["image"].rpartition(":")
    return repository, tag


def test_compose_services() -> None:
    services = compose()["services"]
    assert set(services) == {"scheduler", "worker", "postgres", "serve"}
    assert services["worker"]["deploy"]["replicas"] == 2
    images = {services[s]["image"] for s in TASKFLOW_SERVICES}
    assert len(images) == 1, "one image for scheduler, workers and serve"
    for name in TASKFLOW_SERVICES:
        build = services[name]["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, "the image builds from the repository root"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert services["postgres"]["image"].split(":")[0] == "postgres"
    assert "healthcheck" in services["postgres"] and services["postgres"]["volumes"]


def test_compose_ports_agree() -> None:
    sched = service("scheduler")
    kind, args = dask_command(command_of(sched))
    assert kind == "scheduler"
    ctx = parse_dask(kind, args)
    port = int(ctx.params["port"])
    dashboard = int(ctx.params["dashboard_address"].rpartition(":")[2])
    assert "taskflow.dashboard" in ctx.params["preload"]
    published = {container_port(p) for p in sched["ports"]}
    assert {port, dashboard} <= published
    for spec in sched["ports"]:
        assert str(spec).startswith("127.0.0.1:"), "no TLS here: publish on localhost only"
    health = " ".join(sched["healthcheck"]["test"])
    assert f"localhost:{dashboard}/health" in health
    scheme = ctx.params.get("protocol") or "tcp"
    addresses = {}
    kind, args = dask_command(command_of(service("worker")))
    assert kind == "worker"
    addresses["worker"] = parse_dask(kind, args).params["scheduler"]
    addresses["serve"] = env_of(service("serve"))["DASK_TASKFLOW__EXECUTOR__ADDRESS"]
    for who, address in addresses.items():
        parts = urlsplit(address)
        assert (parts.scheme, parts.hostname, parts.port) == (scheme, "scheduler", port), who


def test_compose_serve_command_parses() -> None:
    serve = service("serve")
    tokens = command_of(serve)
    assert tokens[:2] == ["taskflow", "serve"]
    mounts = {}
    for volume in serve["volumes"]:
        outside, inside = volume.split(":")[:2]
        mounts[inside] = (COMPOSE.parent / outside).resolve()
        assert mounts[inside].is_dir(), volume
    name, ctx = check_taskflow_command(tokens[1:], mounts)
    assert name == "serve"
    assert ctx.params.get("on_stop") == "wait"
    assert_grace_covers_stop_timeout(ctx, parse_timedelta(serve["stop_grace_period"]))
    deps = serve["depends_on"]
    assert deps["postgres"]["condition"] == "service_healthy"
    assert "scheduler" in deps


def test_compose_env_vars_are_config_keys() -> None:
    for name, svc in compose()["services"].items():
        for var in env_of(svc):
            if var.startswith("DASK_"):
                assert config_key_exists(config_key(var)), f"{name}: {var}"


def test_compose_history_url_matches_postgres() -> None:
    url = make_url(env_of(service("serve"))["DASK_TASKFLOW__HISTORY__URL"])
    pg = env_of(service("postgres"))
    assert url.get_backend_name() == "postgresql"
    assert url.host == "postgres"
    assert url.port == 5432 and 5432 in {container_port(p) for p in service("postgres")["ports"]}
    assert (url.username, url.password, url.database) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    health = service("postgres")["healthcheck"]["test"]
    health = health if isinstance(health, str) else " ".join(health)
    assert f"-U {pg['POSTGRES_USER']}" in health and f"-d {pg['POSTGRES_DB']}" in health


# -- Helm -------------------------------------------------------------------------------
@functools.cache
def helm_values() -> dict[str, Any]:
    return yaml.safe_load(HELM_VALUES.read_text())


def test_helm_values_use_real_chart_keys() -> None:
    values = helm_values()
    assert set(values) <= HELM_TOP_KEYS
    assert set(values["scheduler"]) <= HELM_SCHEDULER_KEYS
    assert set(values["worker"]) <= HELM_WORKER_KEYS
    assert set(values["jupyter"]) <= HELM_JUPYTER_KEYS
    assert set(values["scheduler"]["image"]) <= HELM_IMAGE_KEYS
    assert set(values["worker"]["image"]) <= HELM_IMAGE_KEYS | {"dask_worker"}
    assert values["jupyter"]["enabled"] is False
    assert isinstance(values["worker"]["replicas"], int) and values["worker"]["replicas"] >= 1


def test_helm_image_matches_compose() -> None:
    values = helm_values()
    for role in ("scheduler", "worker"):
        image = values[role]["image"]
        assert (image["repository"], str(image["tag"])) == compose_image(), role


def test_helm_commands_parse() -> None:
    values = helm_values()
    sched = values["scheduler"]
    # What the chart's scheduler Deployment runs.
    ctx = parse_dask("scheduler", [f"--port={sched['servicePort']}", "--dashboard-address=:8787",
                                   *sched["extraArgs"]])
    assert "taskflow.dashboard" in ctx.params["preload"]
    worker = values["worker"]
    limits = worker["resources"]["limits"]
    args = [f"{values['fullnameOverride']}-scheduler:{sched['servicePort']}",
            "--nthreads", str(limits["cpu"]), "--memory-limit", str(limits["memory"]),
            "--no-dashboard", *worker.get("extraArgs", [])]
    parse_dask("worker", args)
    dask.utils.parse_bytes(limits["memory"])
    assert worker["image"]["dask_worker"] in ("dask-worker", "dask worker")


def test_helm_serve_manifest() -> None:
    values = helm_values()
    deployment = yaml.safe_load(HELM_SERVE.read_text())
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    repository, tag = compose_image()
    assert container["image"] == f"{repository}:{tag}"
    uid = [rest for op, rest in dockerfile() if op == "USER"][-1].split(":")[0]
    assert str(pod["securityContext"]["runAsUser"]) == uid
    tokens = container["args"]
    assert tokens[:2] == ["taskflow", "serve"]
    mounts = {m["mountPath"]: ROOT / "examples" for m in container["volumeMounts"]}
    name, ctx = check_taskflow_command(tokens[1:], mounts)
    assert name == "serve"
    assert_grace_covers_stop_timeout(ctx, pod["terminationGracePeriodSeconds"])
    env = {e["name"]: e for e in container["env"]}
    for var in env:
        assert config_key_exists(config_key(var)), var
    address = urlsplit(env["DASK_TASKFLOW__EXECUTOR__ADDRESS"]["value"])
    assert address.hostname == f"{values['fullnameOverride']}-scheduler"
    assert address.port == values["scheduler"]["servicePort"]
    assert "secretKeyRef" in env["DASK_TASKFLOW__HISTORY__URL"]["valueFrom"]


# -- cluster classes --------------------------------------------------------------------
@pytest.mark.parametrize("path", deploy_files(".py"), ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_compile(path: Path, tmp_path: Path) -> None:
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)
    assert ast.get_docstring(ast.parse(path.read_text())), "says what it needs"


@pytest.mark.parametrize("script", sorted(CLUSTER_SCRIPTS))
def test_cluster_scripts_use_real_paths_and_keywords(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster_class, _, recorded, adapt = CLUSTER_SCRIPTS[script]
    module = load_script(script)
    assert module.CLUSTER_CLASS == cluster_class
    keywords = keywords_of(cluster_class, recorded)
    repository, tag = compose_image()
    monkeypatch.setenv("TASKFLOW_IMAGE", f"{repository}:{tag}")
    monkeypatch.delenv("DASK_TASKFLOW__RESULTS__STORE", raising=False)
    for store in (None, "s3://bucket/prefix"):
        if store:
            monkeypatch.setenv("DASK_TASKFLOW__RESULTS__STORE", store)
        kwargs = module.cluster_kwargs()
        assert set(kwargs) <= keywords, set(kwargs) - keywords
        assert kwargs["image"] == f"{repository}:{tag}"
        for value in (kwargs.get("environment") or {}, kwargs.get("env") or {}):
            for var in value:
                assert config_key_exists(config_key(var)), var
    assert set(module.ADAPT) <= adapt
    if "scheduler_extra_args" in kwargs:
        parse_dask("scheduler", ["--idle-timeout", "15 minutes", *kwargs["scheduler_extra_args"]])


@pytest.mark.parametrize("script", sorted(CLUSTER_SCRIPTS))
def test_missing_cluster_package_names_what_to_install(script: str) -> None:
    cluster_class, pip_name, _, _ = CLUSTER_SCRIPTS[script]
    if importlib.util.find_spec(cluster_class.split(".")[0]) is not None:
        pytest.skip(f"{pip_name} is installed; a real cluster would start")
    executor = DaskExecutor(cluster_class=cluster_class)
    with pytest.raises(TaskflowError, match=rf"pip install {re.escape(pip_name)}"):
        executor.client  # noqa: B018
    executor.close()


def test_kubernetes_config_snippet() -> None:
    snippet = yaml.safe_load(KUBE_CONFIG.read_text())
    assert not list(unknown_keys(snippet, TASKFLOW_DEFAULTS))
    executor = snippet["taskflow"]["executor"]
    cluster_class, pip_name, recorded, adapt = CLUSTER_SCRIPTS["kubernetes/kubecluster.py"]
    assert executor["cluster-class"] == cluster_class == load_script(
        "kubernetes/kubecluster.py").CLUSTER_CLASS
    assert set(executor["cluster-kwargs"]) <= keywords_of(cluster_class, recorded)
    assert set(executor["adapt"]) <= adapt
    assert executor["cluster-kwargs"]["image"] == ":".join(compose_image())
    if importlib.util.find_spec(cluster_class.split(".")[0]) is not None:
        return
    # `taskflow run` / `serve` / DaskExecutor() follow this config.
    with dask.config.set({f"taskflow.executor.{k}": v for k, v in executor.items()}):
        ex = DaskExecutor()
        with pytest.raises(TaskflowError, match=rf"pip install {re.escape(pip_name)}"):
            ex.client  # noqa: B018
        ex.close()


# -- the docs page ----------------------------------------------------------------------
@functools.cache
def docs_text() -> str:
    return DOCS.read_text()


def code_blocks(lang: str) -> list[str]:
    pattern = re.compile(rf"^(?P<indent>[ ]*)```{lang}\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
    return [textwrap.dedent(m["body"]) for m in pattern.finditer(docs_text())]


def shell_commands() -> Iterator[list[str]]:
    """Each simple command of the docs' bash blocks, env assignments stripped."""
    for block in code_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            command: list[str] = []
            for token in [*shlex.split(line, comments=True), ";"]:
                if token in ("&&", "||", "|", ";", "&"):
                    while command and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", command[0]):
                        command.pop(0)
                    if command:
                        yield command
                    command = []
                else:
                    command.append(token)


def test_docs_name_every_recipe() -> None:
    text = docs_text()
    for path in [*deploy_files(".yaml", ".py"), DOCKERFILE, DOCKERIGNORE]:
        assert path.relative_to(ROOT).as_posix() in text, f"docs/deploying.md: {path}"
    for mention in re.findall(r"(?<![\w/])((?:deploy|examples|tests)/[\w/-]*\.\w+)", text):
        assert (ROOT / mention).exists(), f"docs/deploying.md names {mention}, which is missing"


def test_docs_taskflow_commands_parse() -> None:
    seen = set()
    for tokens in shell_commands():
        if tokens[0] == "taskflow":
            args = tokens[1:]
        elif tokens[0] in ("docker", "kubectl") and "taskflow" in tokens:
            args = tokens[tokens.index("taskflow") + 1:]
        else:
            continue
        name, _ = check_taskflow_command(args, must_exist=False)
        seen.add(name)
    assert {"run", "runs", "show", "logs", "serve"} <= seen


def test_docs_dask_commands_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the TLS options want existing files: empty ones here
    seen = set()
    for tokens in shell_commands():
        found = dask_command(tokens)
        if found:
            args = found[1]
            for option, value in zip(args, args[1:]):
                if option.startswith("--tls-"):
                    (tmp_path / value).parent.mkdir(parents=True, exist_ok=True)
                    (tmp_path / value).touch()
            parse_dask(*found)
            seen.add(found[0])
    assert seen == {"scheduler", "worker"}


def test_docs_python_blocks_compile() -> None:
    blocks = code_blocks("python")
    assert blocks
    for block in blocks:
        compile(block, str(DOCS), "exec")


def test_docs_yaml_blocks_use_real_keys() -> None:
    defaults = {**TASKFLOW_DEFAULTS, **DISTRIBUTED_DEFAULTS}
    blocks = code_blocks("yaml")
    assert blocks
    for block in blocks:
        snippet = yaml.safe_load(block)
        assert set(snippet) <= {"taskflow", "distributed"}
        assert not list(unknown_keys(snippet, defaults)), block


def test_env_vars_everywhere_are_config_keys() -> None:
    """Every ``DASK_X__Y`` variable in the recipes and the docs is a real config key."""
    pattern = re.compile(r"\bDASK_[A-Z0-9]+(?:__[A-Z0-9_]+)+")
    files = [*deploy_files(".yaml", ".py"), DOCKERFILE, DOCS]
    found = {(p.name, var) for p in files for var in pattern.findall(p.read_text())}
    assert any(var == "DASK_TASKFLOW__HISTORY__URL" for _, var in found)
    for name, var in sorted(found):
        assert config_key_exists(config_key(var)), f"{name}: {var}"
