"""The deployment files (Dockerfile, compose variants, NATS cluster) agree with the repository.

No Docker engine is needed: the files are parsed and checked against the real layout,
the real configuration loader and store-URL parser, and (where the binaries exist)
`nats-server -t` and `docker compose config`.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import whoosh_shared.runtime.store as store_module
import yaml
from harness import free_port, nats_server_binary
from whoosh_shared.contract.config import ENV_SHORTCUTS, load_config
from whoosh_shared.runtime.store import store_env

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
CLUSTER = REPO / "docker-compose.yml"
SINGLE = DEPLOY / "compose.single.yml"
COMPOSE_FILES = [CLUSTER, SINGLE]
IMAGE_PREFIX = "/app/"  # where the Dockerfile puts what it copies from deploy/
HEALTHCHECK_IN_IMAGE = "/app/healthcheck.py"
# Environment variables the third-party images document, by image name.
ACCOUNTS = DEPLOY / "nats" / "accounts.conf"
NATS_PASSWORD_VARIABLES = set(re.findall(r"\$(WHOOSH_NATS_\w+_PASSWORD)", ACCOUNTS.read_text()))
IMAGE_ENV = {
    "postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "PGDATA"},
    "nats": NATS_PASSWORD_VARIABLES,  # read by accounts.conf
    "prom/prometheus": set(),
    "grafana/grafana": {"GF_SECURITY_ADMIN_PASSWORD", "GF_USERS_ALLOW_SIGN_UP"},
}
IMAGES_WITH_WGET = ("prom/prometheus", "grafana/grafana")  # busybox / alpine based
MONITOR_URL_KEY = "WHOOSH__GATEWAY__MONITOR_METRICS_URL"

compose_files = pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)


# -- helpers ---------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def services(path: Path) -> dict[str, dict[str, Any]]:
    return load(path)["services"]


def is_whoosh(service: dict[str, Any]) -> bool:
    return "build" in service


VARIABLE = re.compile(r"\$\{(\w+)(?:(:?-)([^}]*)|(:?\?)([^}]*))?\}")
REQUIRED = "required-secret"  # what a `${VAR:?message}` (a secret that must be set) stands for


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with the environment empty: every variable needs a default,
    or is a secret the operator must set (`${VAR:?message}`, which names the variable)."""

    def default(match: re.Match[str]) -> str:
        if match.group(4) is not None:
            assert match.group(1) in match.group(5), f"{match.group(0)}: say which to set"
            return REQUIRED
        assert match.group(2) is not None, f"{match.group(0)} has no default"
        return match.group(3)

    return VARIABLE.sub(default, str(value))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def module_of(service: dict[str, Any]) -> tuple[str, list[str]]:
    cmd = command(service)
    assert cmd[:2] == ["python", "-m"], f"command {cmd} is not `python -m MODULE ...`"
    return cmd[2], cmd[3:]


def mounts(path: Path, service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, source, target) for each volume entry: kind is "volume" or "bind"."""
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            kind, source, target = entry["type"], entry.get("source", ""), entry["target"]
        else:
            source, target = entry.split(":")[:2]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        if kind == "bind":
            source = str((path.parent / source).resolve())
        found.append((kind, source, target))
    return found


def running(path: Path, module: str) -> dict[str, dict[str, Any]]:
    """The WHOOSH services of a compose file that run `python -m module`, by name."""
    return {
        name: service
        for name, service in services(path).items()
        if is_whoosh(service) and module_of(service)[0] == module
    }


def check_gateway_is_published(gateway: dict[str, Any]) -> None:
    """Listens on every interface of its container, on the port that is published."""
    env = environment(gateway)
    assert env["WHOOSH__GATEWAY__HOST"] == "0.0.0.0"
    container_ports = {interpolate(port).split(":")[-1] for port in gateway["ports"]}
    assert container_ports == {env["WHOOSH__GATEWAY__PORT"]}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def workspace_members() -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return pyproject["tool"]["uv"]["workspace"]["members"]


def dockerfile_instructions() -> list[tuple[str, list[str]]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            rest = rest.strip()
            args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
            instructions.append((word.upper(), args))
    return instructions


def dockerfile_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context (not --from a stage)."""
    copies = []
    for word, args in dockerfile_instructions():
        if word == "COPY" and not any(a.startswith("--from") for a in args):
            paths = [a for a in args if not a.startswith("--")]
            copies.append((paths[:-1], paths[-1]))
    return copies


def dockerignored(relpath: str) -> bool:
    """Whether .dockerignore keeps `relpath` out of the build context (last match wins)."""
    ignored = False
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        variants = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
        parts = PurePosixPath(relpath).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, v) for p in prefixes for v in variants):
            ignored = not negate
    return ignored


def parse_nats_conf(path: Path) -> dict[str, Any]:
    text = re.sub(r"#.*", "", path.read_text())
    conf: dict[str, Any] = {
        "server_name": re.search(r"^\s*server_name:\s*(\S+)", text, re.M).group(1),
        "port": int(re.search(r"^\s*port:\s*(\d+)", text, re.M).group(1)),
        "jetstream_store": re.search(r"jetstream\s*\{[^}]*store_dir:\s*(\S+)", text).group(1),
    }
    cluster = re.search(r"cluster\s*\{(.*)\}", text, re.S)
    if cluster:
        block = cluster.group(1)
        conf["cluster_name"] = re.search(r"^\s*name:\s*(\S+)", block, re.M).group(1)
        conf["listen_port"] = int(re.search(r"listen:\s*\S+:(\d+)", block).group(1))
        conf["routes"] = re.findall(r"nats-route://([\w.-]+):(\d+)", block)
    return conf


def nats_nodes(path: Path) -> dict[str, tuple[dict[str, Any], Path]]:
    """Each NATS service of a compose file with its parsed config and the config's path."""
    nodes = {}
    for name, service in services(path).items():
        if service.get("image", "").startswith("nats:"):
            cmd = command(service)
            target = cmd[cmd.index("--config") + 1]
            binds = {t: Path(s) for kind, s, t in mounts(path, service) if kind == "bind"}
            assert target in binds, f"{name}: --config {target} is not a mounted file"
            nodes[name] = (parse_nats_conf(binds[target]), binds[target])
    return nodes


# -- image -----------------------------------------------------------------------------


def test_dockerfile_copies_paths_that_exist_and_are_in_the_context() -> None:
    copies = dockerfile_copies()
    assert copies
    for sources, _ in copies:
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile COPYs {source}, missing in the repo"
            assert not dockerignored(source), f"{source} is excluded by .dockerignore"


def test_dockerfile_installs_every_workspace_member_from_the_lock() -> None:
    copied = {source.rstrip("/") for sources, _ in dockerfile_copies() for source in sources}
    assert {"pyproject.toml", "uv.lock"} <= copied
    for member in workspace_members():
        assert f"{member}/pyproject.toml" in copied, f"{member}/pyproject.toml not copied"
        assert f"{member}/src" in copied, f"{member}/src not copied"
    # --frozen needs the lock to know every member
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    names = {
        tomllib.loads((REPO / m / "pyproject.toml").read_text())["project"]["name"]
        for m in workspace_members()
    }
    assert names <= set(lock["manifest"]["members"])


def test_dockerfile_base_uv_and_user() -> None:
    instructions = dockerfile_instructions()
    args = dict(a[0].split("=", 1) for w, a in instructions if w == "ARG" and "=" in a[0])
    bases = [VARIABLE.sub(lambda m: args[m.group(1)], a[0]) for w, a in instructions if w == "FROM"]
    assert len(bases) >= 2 and set(bases) == {"python:3.11-slim"}  # multi-stage, one base
    runs = " ".join(" ".join(a) for w, a in instructions if w == "RUN")
    assert re.search(r"pip install .*uv==", runs)
    assert "uv sync --frozen --no-dev" in runs
    users = [a[0] for w, a in instructions if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    cmd = [a for w, a in instructions if w == "CMD"][-1]
    assert cmd[:3] == ["python", "-m", "whoosh_coordinator"]


# -- compose ---------------------------------------------------------------------------


@compose_files
def test_every_service_has_a_build_or_a_pinned_image(path: Path) -> None:
    for name, service in services(path).items():
        assert "build" in service or "image" in service, name
        if "build" in service:
            build = service["build"]
            context = (path.parent / build["context"]).resolve()
            assert context == REPO, f"{name}: build context {context} is not the repo root"
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE
        image = service["image"]
        repo, _, tag = image.partition(":")
        assert tag and tag != "latest", f"{name}: image {image} is not pinned"
        if repo == "nats":
            assert tuple(map(int, tag.split("-")[0].split(".")[:2])) >= (2, 10)
        if repo == "postgres":
            assert tag.split(".")[0].split("-")[0] == "16"
        healthcheck = " ".join(service.get("healthcheck", {}).get("test", []))
        if "wget" in healthcheck:  # the scratch nats image has no shell tools
            assert "alpine" in tag or repo in IMAGES_WITH_WGET, (
                f"{name}: wget healthcheck needs an image with wget"
            )


@compose_files
def test_whoosh_services_share_one_image(path: Path) -> None:
    whoosh = [s for s in services(path).values() if is_whoosh(s)]
    assert whoosh
    assert len({(s["image"], repr(s["build"])) for s in whoosh}) == 1


@compose_files
def test_commands_run_workspace_modules_with_valid_arguments(path: Path) -> None:
    src_dirs = [REPO / member / "src" for member in workspace_members()]
    for name, service in services(path).items():
        if not is_whoosh(service):
            continue
        module, args = module_of(service)
        mains = [d / module / "__main__.py" for d in src_dirs if (d / module).is_dir()]
        assert mains, f"{name}: no workspace member has src/{module}"
        assert mains[0].is_file(), f"{name}: python -m {module}: {mains[0]} does not exist"
        main = importlib.import_module(f"{module}.__main__")
        if hasattr(main, "parse_args"):  # argparse: unknown modes or options exit
            main.parse_args(args)


@compose_files
def test_environment_keys_are_known(path: Path) -> None:
    sources = "\n".join(
        p.read_text() for m in workspace_members() for p in (REPO / m).rglob("*.py")
    )
    for name, service in services(path).items():
        env = environment(service)
        if not is_whoosh(service):
            known = IMAGE_ENV[service["image"].split(":")[0]]
            assert set(env) <= known, f"{name}: unknown {set(env) - known}"
            continue
        for key in env:
            assert key.startswith("WHOOSH_"), f"{name}: {key} is not a WHOOSH_ variable"
            assert key in ENV_SHORTCUTS or key.startswith("WHOOSH__") or f'"{key}"' in sources, (
                f"{name}: {key} is read by no WHOOSH code"
            )
        # the whole environment is a valid configuration (WHOOSH__X__Y keys included)
        load_config(environ={k: v for k, v in env.items() if k != "WHOOSH_CONFIG"})


@compose_files
def test_only_coordinators_get_the_store(path: Path) -> None:
    for name, service in services(path).items():
        if is_whoosh(service):
            module, _ = module_of(service)
            has_store = "WHOOSH_STORE_URL" in environment(service)
            assert has_store == (module == "whoosh_coordinator"), name


@compose_files
def test_store_urls_parse_and_point_at_the_store(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoMkdirPath(PurePosixPath):  # store_env creates the SQLite folder: not here
        def mkdir(self, *args: object, **kwargs: object) -> None:
            pass

    monkeypatch.setattr(store_module, "Path", NoMkdirPath)
    all_services = services(path)
    urls = 0
    for name, service in all_services.items():
        url = environment(service).get("WHOOSH_STORE_URL")
        if url is None:
            continue
        urls += 1
        env = store_env(url)
        if env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
            db = all_services[env["POSTGRES_HOST"]]
            assert env["POSTGRES_HOST"] in depends_on(service) or any(
                env["POSTGRES_HOST"] in depends_on(all_services[d]) for d in depends_on(service)
            ), f"{name} does not wait for {env['POSTGRES_HOST']}"
            db_env = environment(db)
            assert env["POSTGRES_DBNAME"] == db_env["POSTGRES_DB"]
            assert env["POSTGRES_USER"] == db_env["POSTGRES_USER"]
            assert env["POSTGRES_PASSWORD"] == db_env["POSTGRES_PASSWORD"]
            assert env["POSTGRES_PORT"] == "5432"
        else:
            # sqlite:////abs/path gives "//abs/path": the same file to POSIX
            folder = "/" + str(PurePosixPath(env["SQLITE_DBNAME"]).parent).lstrip("/")
            volumes = {t for kind, _, t in mounts(path, service) if kind == "volume"}
            assert folder in volumes, f"{name}: the SQLite file is not on a named volume"
    assert urls


@compose_files
def test_volumes_are_declared_and_used(path: Path) -> None:
    declared = set(load(path).get("volumes") or {})
    used = set()
    for name, service in services(path).items():
        for kind, source, _ in mounts(path, service):
            if kind == "volume":
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
            else:
                assert Path(source).exists(), f"{name}: bind source {source} does not exist"
    assert used == declared, f"declared but unused: {declared - used}"


@compose_files
def test_depends_on_names_services_that_can_satisfy_it(path: Path) -> None:
    all_services = services(path)
    for name, service in all_services.items():
        for dep, condition in depends_on(service).items():
            assert dep in all_services and dep != name, f"{name} depends on unknown {dep}"
            assert condition in ("service_started", "service_healthy")
            if condition == "service_healthy":
                assert "healthcheck" in all_services[dep], f"{dep} has no healthcheck"


@compose_files
def test_every_service_has_a_healthcheck_that_exists_in_its_image(path: Path) -> None:
    image_paths = {dest for _, dest in dockerfile_copies() if dest.startswith(IMAGE_PREFIX)}
    modes = _healthcheck_modes()
    for name, service in services(path).items():
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        if is_whoosh(service):
            assert test[1:3] == ["python", HEALTHCHECK_IN_IMAGE], name
            assert HEALTHCHECK_IN_IMAGE in image_paths
            assert test[3] in modes, f"{name}: unknown healthcheck mode {test[3]}"


def test_cluster_variant_shape() -> None:
    all_services = services(CLUSTER)
    assert len(nats_nodes(CLUSTER)) == 3
    modules = [module_of(s) for s in all_services.values() if is_whoosh(s)]
    coordinators = [args for module, args in modules if module == "whoosh_coordinator"]
    assert {args[0] for args in coordinators} <= {"serve", "relay"}
    assert any(args[0] == "serve" for args in coordinators)
    # exactly one relay: `serve` relays unless --no-relay, `relay` is a relay
    relays = [a for a in coordinators if a[0] == "relay" or "--no-relay" not in a]
    assert len(relays) == 1
    executor = all_services["executor-cli"]
    assert executor["deploy"]["replicas"] == 2
    assert "container_name" not in executor  # would forbid replicas
    assert module_of(all_services["executor-ollama"])[0] == "whoosh_executor_ollama"
    assert module_of(all_services["monitor"])[0] == "whoosh_monitor"
    gateways = running(CLUSTER, "whoosh_gateway")
    assert len(gateways) == 2  # several behave as one: the cluster variant shows it
    for gateway in gateways.values():
        check_gateway_is_published(gateway)
        assert environment(gateway)["WHOOSH__GATEWAY__PORT"] == "4312"


def test_single_variant_shape() -> None:
    all_services = services(SINGLE)
    assert len(nats_nodes(SINGLE)) == 1
    conf, _ = next(iter(nats_nodes(SINGLE).values()))
    assert "cluster_name" not in conf
    modules = [module_of(s)[0] for s in all_services.values() if is_whoosh(s)]
    assert sorted(modules) == [
        "whoosh_coordinator",
        "whoosh_executor_cli",
        "whoosh_executor_ollama",
        "whoosh_gateway",
        "whoosh_monitor",
    ]
    for service in all_services.values():
        assert service.get("deploy", {}).get("replicas", 1) == 1
    (gateway,) = running(SINGLE, "whoosh_gateway").values()
    check_gateway_is_published(gateway)
    assert environment(gateway)["WHOOSH__GATEWAY__PORT"] == "4312"
    assert MONITOR_URL_KEY in environment(gateway), "the gateway should proxy the monitor"


@compose_files
def test_a_gateways_monitor_url_names_a_monitor_of_the_same_file(path: Path) -> None:
    """Where a gateway proxies /metrics, the URL reaches a monitor service: its name as
    host, the port it listens on, on every interface of its container."""
    all_services = services(path)
    for name, gateway in running(path, "whoosh_gateway").items():
        url = environment(gateway).get(MONITOR_URL_KEY)
        if url is None:
            continue
        parts = urlsplit(url)
        monitor = all_services.get(parts.hostname or "")
        assert monitor is not None and is_whoosh(monitor), f"{name}: {url} names no service"
        assert module_of(monitor)[0] == "whoosh_monitor", f"{name}: {url} is not a monitor"
        settings = load_config(environ=environment(monitor)).monitoring
        assert settings.metrics_host == "0.0.0.0", f"{parts.hostname} listens on loopback only"
        assert (parts.scheme, parts.port, parts.path) == ("http", settings.metrics_port, "/metrics")


# -- NATS ------------------------------------------------------------------------------


def test_nats_cluster_routes_name_the_three_nodes_consistently() -> None:
    nodes = nats_nodes(CLUSTER)
    node_services = services(CLUSTER)
    names = set(nodes)
    assert len({c["cluster_name"] for c, _ in nodes.values()}) == 1
    assert len({str(p) for _, p in nodes.values()}) == 3  # one file per node
    for name, (conf, conf_path) in nodes.items():
        assert conf["server_name"] == name, f"{conf_path.name}: server_name != service {name}"
        assert {host for host, _ in conf["routes"]} == names, conf_path.name
        assert {int(port) for _, port in conf["routes"]} == {conf["listen_port"]}
        volumes = {t for kind, _, t in mounts(CLUSTER, node_services[name]) if kind == "volume"}
        assert conf["jetstream_store"] in volumes, f"{name}: JetStream store not on a volume"
    # clients reach the cluster through an alias every node carries
    urls = {environment(s)["WHOOSH_NATS_URL"] for s in node_services.values() if is_whoosh(s)}
    hosts = {u.split("//")[1].split(":")[0] for u in urls}
    for name in names:
        aliases = node_services[name]["networks"]["default"]["aliases"]
        assert hosts <= set(aliases), f"{name} does not answer to {hosts}"
    ports = {int(u.rsplit(":", 1)[1]) for u in urls}
    assert ports == {conf["port"] for conf, _ in nodes.values()}


def test_single_nats_url_names_the_nats_service() -> None:
    all_services = services(SINGLE)
    ((name, (conf, _)),) = nats_nodes(SINGLE).items()
    for service in all_services.values():
        if is_whoosh(service):
            assert environment(service)["WHOOSH_NATS_URL"] == f"nats://{name}:{conf['port']}"


@pytest.mark.parametrize("conf", sorted((DEPLOY / "nats").glob("*.conf")), ids=lambda p: p.name)
def test_nats_configs_are_accepted_by_nats_server(conf: Path) -> None:
    try:
        binary = nats_server_binary()
    except RuntimeError:
        pytest.skip("no nats-server binary")
    env = {name: "test-password" for name in NATS_PASSWORD_VARIABLES}
    result = subprocess.run(
        [binary, "-t", "-c", str(conf)], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr


ROLE_OF_MODULE = {
    "whoosh_coordinator": "coordinator",
    "whoosh_executor_cli": "executor",
    "whoosh_executor_ollama": "executor",
    "whoosh_gateway": "gateway",
    "whoosh_monitor": "monitor",
}


def published(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(host address or None for every interface, container port) of each published port."""
    found = []
    for entry in service.get("ports", []):
        parts = interpolate(entry).split(":")
        found.append((parts[0] if len(parts) == 3 else None, parts[-1]))
    return found


@compose_files
def test_no_nats_port_and_no_unauthenticated_tool_on_the_hosts_interfaces(path: Path) -> None:
    for name, service in services(path).items():
        image = service.get("image", "")
        for host, port in published(service):
            if image.startswith(("nats:", "prom/prometheus", "grafana/grafana")):
                assert host == "127.0.0.1", f"{name}: port {port} published on every interface"
    for name, (_, conf_path) in nats_nodes(path).items():
        assert "include ./accounts.conf" in conf_path.read_text(), f"{name}: no users"
        mounted = {t for _, _, t in mounts(path, services(path)[name])}
        assert "/etc/nats/accounts.conf" in mounted, f"{name}: accounts.conf not mounted"


@compose_files
def test_every_service_has_its_roles_own_nats_user(path: Path) -> None:
    for name, service in services(path).items():
        if not is_whoosh(service):
            continue
        role = ROLE_OF_MODULE[module_of(service)[0]]
        raw = service["environment"]
        assert raw["WHOOSH__NATS__USER"] == role, name
        variable = f"WHOOSH_NATS_{role.upper()}_PASSWORD"
        assert raw["WHOOSH__NATS__PASSWORD"].startswith(f"${{{variable}:?"), name
        assert load_config(environ=environment(service)).nats.user == role


def test_grafana_and_postgres_have_no_default_password() -> None:
    cluster = services(CLUSTER)
    grafana = cluster["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    postgres = cluster["postgres"]["environment"]["POSTGRES_PASSWORD"]
    for value in (grafana, postgres):
        assert ":?" in value and ":-" not in value, value


def test_nats_users_get_only_their_roles_subjects(tmp_path: Path) -> None:
    """The real nats-server with the shipped users: no credential, no entry; an executor
    cannot mint API keys or register agents; the admin user can publish anything."""
    import asyncio

    import nats
    import nats.errors

    port, monitor_port = free_port(), free_port()
    env = {name: f"pw-{name.lower()}" for name in NATS_PASSWORD_VARIABLES}
    conf = tmp_path / "single.conf"  # the shipped file, its store moved off /data
    conf.write_text((DEPLOY / "nats" / "single.conf").read_text().replace("/data", str(tmp_path)))
    shutil.copy(ACCOUNTS, tmp_path / "accounts.conf")
    server = subprocess.Popen(
        [nats_server_binary(), "-c", str(conf), "-a", "127.0.0.1",
         "-p", str(port), "-m", str(monitor_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"nats://127.0.0.1:{port}"

    def password(role: str) -> str:
        return env[f"WHOOSH_NATS_{role.upper()}_PASSWORD"]

    async def check() -> None:
        async def connect(**options):
            return await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0,
                                      connect_timeout=2, **options)  # fmt: skip

        with pytest.raises(nats.errors.Error, match=r"(?i)authorization"):
            await connect()
        errors: list[Exception] = []

        async def keep(exc: Exception) -> None:
            errors.append(exc)

        executor = await connect(user="executor", password=password("executor"), error_cb=keep)
        await executor.publish("whoosh.cmd.apikey.create", b"{}")
        await executor.publish("whoosh.cmd.agent.register", b"{}")
        await executor.flush()
        await asyncio.sleep(0.3)
        denied = " ".join(str(e) for e in errors)
        assert "whoosh.cmd.apikey.create" in denied and "whoosh.cmd.agent.register" in denied
        errors.clear()
        await executor.publish("whoosh.heartbeat.x", b"{}")
        await executor.flush()
        await asyncio.sleep(0.3)
        assert not errors
        await executor.close()
        admin = await connect(user="admin", password=password("admin"), error_cb=keep)
        await admin.publish("whoosh.cmd.apikey.create", b"{}")
        await admin.flush()
        await asyncio.sleep(0.3)
        assert not errors
        await admin.close()

    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)
        asyncio.run(check())
    finally:
        server.terminate()
        server.wait(10)


# -- healthcheck script, against a real NATS and coordinator -------------------------------


def _healthcheck_modes() -> tuple[str, ...]:
    text = (DEPLOY / "healthcheck.py").read_text()
    return tuple(re.findall(r'"(\w+)"', re.search(r"^MODES = \((.*)\)", text, re.M).group(1)))


def run_healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py"), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_healthcheck_script(nats_url: str, sqlite_url: str, spawn) -> None:
    assert run_healthcheck("bus", nats_url).returncode == 0
    assert run_healthcheck("bus", "nats://127.0.0.1:1").returncode == 1
    missing = run_healthcheck("coordinator", nats_url)
    assert missing.returncode == 1 and "no coordinator answers" in missing.stderr
    coordinator = spawn("whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url)
    deadline = time.monotonic() + 20
    while (result := run_healthcheck("coordinator", nats_url)).returncode != 0:
        assert time.monotonic() < deadline, result.stderr + coordinator.output()
        time.sleep(0.2)
    assert run_healthcheck("nonsense").returncode == 2
    closed = run_healthcheck("gateway", f"http://127.0.0.1:{free_port()}/readyz")
    assert closed.returncode == 1 and "unhealthy (gateway)" in closed.stderr


# -- docker compose, where the CLI plugin exists ----------------------------------------


@compose_files
def test_docker_compose_accepts_the_file(path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker CLI without the compose plugin")
    result = subprocess.run(
        [docker, "compose", "-f", str(path), "config", "-q"], capture_output=True, text=True
    )
    if result.returncode != 0 and "Cannot connect to the Docker daemon" in result.stderr:
        pytest.skip("docker compose config needs the engine here")
    assert result.returncode == 0, result.stderr
