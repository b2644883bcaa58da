"""The deployment files (docker-compose.yml, Procfile, deploy/Dockerfile,
deploy/k8s/) agree with the code: every ``lgdist`` command they run exists,
every ``LGDIST_*`` variable they name is a setting, Flower always runs behind
basic auth, and no credential is written down except ``change-me``
placeholders. Pure: parses files, starts no service."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from lgdist import cli
from lgdist.server.auth import API_KEYS_ENV
from lgdist.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROCFILE = ROOT / "Procfile"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DEPLOY_README = ROOT / "deploy" / "README.md"
K8S = ROOT / "deploy" / "k8s"
AUTOSCALERS = {"worker-keda.yaml", "worker-hpa.yaml"}

# Subcommands that hand their remaining arguments to celery.
CELERY_PASSTHROUGH = {"worker", "flower", "beat"}
# Variables that carry credentials: they must come from a Secret / the environment.
CREDENTIAL_VARS = {
    "LGDIST_BROKER_URL", "LGDIST_RESULT_BACKEND", "LGDIST_DATABASE_URL", "LGDIST_FLOWER_AUTH", "LGDIST_API_KEYS",
}  # fmt: skip
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH")
PLACEHOLDER = "change-me"
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]*:(?P<password>[^@\s/]+)@")


# --- loading -----------------------------------------------------------------


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@cache
def k8s_files() -> dict[str, list[dict]]:
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        for path in sorted(K8S.glob("*.yaml"))
    }


def k8s_objects() -> list[tuple[str, dict]]:
    return [
        (name, doc)
        for name, docs in k8s_files().items()
        if name != "kustomization.yaml"
        for doc in docs
    ]


def k8s_kind(kind: str) -> list[dict]:
    return [doc for _, doc in k8s_objects() if doc["kind"] == kind]


def k8s_named(kind: str, name: str) -> dict:
    found = [doc for doc in k8s_kind(kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name!r} in deploy/k8s, found {len(found)}"
    return found[0]


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


@cache
def procfile() -> dict[str, str]:
    processes: dict[str, str] = {}
    for number, line in enumerate(PROCFILE.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(\S.*)", line)
        assert match, f"Procfile line {number} is not `name: command`: {line!r}"
        assert match[1] not in processes, f"Procfile names {match[1]!r} twice"
        processes[match[1]] = match[2]
    return processes


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose-style ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``."""
    env = env or {}

    def resolve(match: re.Match) -> str:
        if match["name"] in env:
            return env[match["name"]]
        if match["op"] in (":-", "-"):
            return match["arg"]
        if match["op"] in (":?", "?"):
            raise KeyError(f"{match['name']} is required: {match['arg']}")
        return ""

    return INTERPOLATION.sub(resolve, text)


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


# --- commands ----------------------------------------------------------------


def command_strings() -> list[tuple[str, str | list[str]]]:
    """(where, command) for every command the files run; lists are exec form."""
    found: list[tuple[str, str | list[str]]] = []
    for name, service in compose()["services"].items():
        for key in ("command", "entrypoint"):
            if key in service:
                found.append((f"compose:{name}.{key}", service[key]))
        test = (service.get("healthcheck") or {}).get("test")
        if isinstance(test, list) and test[0] == "CMD-SHELL":
            found.append((f"compose:{name}.healthcheck", test[1]))
        elif isinstance(test, list):
            found.append((f"compose:{name}.healthcheck", test[1:]))
    for name, command in procfile().items():
        found.append((f"Procfile:{name}", command))
    for instruction, argument in dockerfile_instructions():
        if instruction in ("CMD", "ENTRYPOINT"):
            found.append((f"Dockerfile:{instruction}", json.loads(argument)))
    for file, doc in k8s_objects():
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            for container in containers(doc):
                command = [*container.get("command", []), *container.get("args", [])]
                if command:
                    found.append((f"k8s:{file}:{container['name']}", command))
                probe = (container.get("livenessProbe") or {}).get("exec", {}).get("command")
                if probe:
                    found.append((f"k8s:{file}:{container['name']}.liveness", probe[2] if probe[:2] == ["sh", "-c"] else probe))
    return found


def invocations(program: str) -> list[tuple[str, list[str]]]:
    """(where, argv after the program) for each run of ``program``."""
    found = []
    for where, command in command_strings():
        if isinstance(command, list):
            segments = [command]
        else:
            segments = [shlex.split(part) for part in re.split(r"&&|\|\||;", command)]
            named = len(re.findall(rf"(?:^|[\s;&|]){re.escape(program)}\s", command))
            runs = sum(1 for words in segments if _strip_exec(words)[:1] == [program])
            assert named == runs, f"{where}: cannot tell how {command!r} runs {program}"
        for words in segments:
            words = _strip_exec(words)
            if words[:1] == [program]:
                found.append((where, words[1:]))
    return found


def _strip_exec(words: list[str]) -> list[str]:
    return words[1:] if words[:1] == ["exec"] else words


@cache
def lgdist_subcommands() -> frozenset[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    match = re.search(r"\{([\w,-]+)\}", out.getvalue())
    assert match, "cannot find the subcommands in `lgdist --help`"
    return frozenset(match[1].split(","))


def celery_option_names(subcommand: str) -> set[str]:
    if subcommand == "flower":
        from flower.options import options

        return {f"--{name}" for name in options._options}  # tornado keeps names dash-normalized
    import celery.bin.beat
    import celery.bin.control
    import celery.bin.worker

    command = {
        "worker": celery.bin.worker.worker,
        "beat": celery.bin.beat.beat,
        "inspect": celery.bin.control.inspect,
    }[subcommand]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def check_options(subcommand: str, args: list[str], where: str) -> None:
    known = celery_option_names(subcommand)
    for arg in args:
        if arg.startswith("-"):
            name = arg.split("=", 1)[0].replace("_", "-")
            assert name in known, f"{where}: `{subcommand}` has no option {name}"


LGDIST_RUNS = invocations("lgdist")
CELERY_RUNS = invocations("celery")


def test_the_files_run_lgdist_worker_flower_beat_and_serve() -> None:
    subcommands = {argv[0] for _, argv in LGDIST_RUNS if argv}
    assert {"worker", "flower", "beat", "serve"} <= subcommands


@pytest.mark.parametrize("where,argv", LGDIST_RUNS, ids=[where for where, _ in LGDIST_RUNS])
def test_every_lgdist_command_is_a_real_subcommand(where: str, argv: list[str], monkeypatch, capsys) -> None:
    assert argv, f"{where}: bare `lgdist` with no subcommand"
    assert argv[0] in lgdist_subcommands(), f"{where}: `lgdist {argv[0]}` is not a subcommand"
    if argv[0] not in CELERY_PASSTHROUGH:
        with pytest.raises(SystemExit) as exit_:
            cli.main([argv[0], "--help"])
        assert exit_.value.code == 0
        return
    # Run the real argument handling up to the point where celery would start.
    calls: list[list[str]] = []
    monkeypatch.setattr(cli, "_exec_celery", lambda args: calls.append(args) or 0)
    # Every deployment file gives Flower its credentials (lgdist flower
    # refuses to start without them).
    monkeypatch.setenv("LGDIST_FLOWER_AUTH", "user:secret")
    # A worker needs graphs to run (compose and k8s name them in their
    # environment, the Procfile takes them from the operator's).
    monkeypatch.setenv("LGDIST_GRAPHS", "support-agent=lgdist.examples.support_agent:graph")
    get_settings.cache_clear()
    try:
        assert cli.main(argv) == 0
    finally:
        get_settings.cache_clear()
    assert calls and calls[0][0] == argv[0]
    check_options(argv[0], argv[1:], where)


@pytest.mark.parametrize("where,argv", CELERY_RUNS, ids=[where for where, _ in CELERY_RUNS])
def test_celery_commands_use_lgdists_app(where: str, argv: list[str]) -> None:
    args = list(argv)
    assert args[:1] == ["-A"], f"{where}: celery without -A {cli.APP}"
    assert args[1] == cli.APP, f"{where}: celery -A {args[1]}, but lgdist's app is {cli.APP}"
    subcommand, rest = args[2], args[3:]
    if subcommand == "inspect":
        rest = rest[1:]  # the inspect method, e.g. ping
    check_options(subcommand, rest, where)


# --- settings ----------------------------------------------------------------


def deploy_texts() -> dict[str, str]:
    texts = {
        "docker-compose.yml": COMPOSE.read_text(),
        "Procfile": PROCFILE.read_text(),
        "deploy/Dockerfile": DOCKERFILE.read_text(),
        "deploy/README.md": DEPLOY_README.read_text(),
    }
    texts.update({f"deploy/k8s/{p.name}": p.read_text() for p in sorted(K8S.glob("*.yaml"))})
    return texts


def test_every_lgdist_variable_named_is_a_setting() -> None:
    known = {f"LGDIST_{name.upper()}" for name in Settings.model_fields} | {
        "LGDIST_FLOWER_AUTH", "LGDIST_HOME", API_KEYS_ENV,
    }  # fmt: skip
    for file, text in deploy_texts().items():
        unknown = set(re.findall(r"\bLGDIST_[A-Z0-9_]+\b", text)) - known
        assert not unknown, f"{file} names {sorted(unknown)}, which lgdist.settings.Settings does not read"


def settings_from(env: dict[str, str], monkeypatch) -> Settings:
    for key in list(os.environ):
        if key.startswith("LGDIST_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("LGDIST_"):
            monkeypatch.setenv(key, value)
    return Settings()


def test_compose_worker_environment_is_valid_settings(monkeypatch) -> None:
    env = {key: interpolate(value) for key, value in service_env(compose()["services"]["worker"]).items()}
    settings = settings_from(env, monkeypatch)
    assert settings.resolved_broker_url() == "redis://redis:6379/0"
    assert settings.resolved_database_url().startswith("postgresql://")
    assert settings.resolved_database_url().endswith("@postgres:5432/lgdist")
    assert "support-agent=" in settings.graphs


def test_k8s_configmap_and_secret_are_valid_settings(monkeypatch) -> None:
    env = dict(k8s_named("ConfigMap", "lgdist-config")["data"])
    for secret in k8s_kind("Secret"):
        env.update(secret.get("stringData", {}))
    settings = settings_from(env, monkeypatch)
    assert settings.resolved_broker_url().startswith(("redis://", "rediss://"))
    assert settings.resolved_database_url().startswith("postgresql://")


# --- docker compose ----------------------------------------------------------


def test_compose_has_the_services_of_the_real_deployment() -> None:
    services = compose()["services"]
    assert {"redis", "postgres", "worker", "beat", "flower"} <= set(services)
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "lgdist"
    worker = services["worker"]
    assert worker["command"] == ["lgdist", "worker", "-c", "2"]
    assert worker["deploy"]["replicas"] == 2
    assert {"LGDIST_BROKER_URL", "LGDIST_DATABASE_URL", "LGDIST_GRAPHS"} <= set(service_env(worker))


def test_compose_builds_lgdist_services_from_deploy_dockerfile() -> None:
    for name in ("worker", "beat", "flower"):
        build = compose()["services"][name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_compose_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    assert {"redis", "postgres"} <= set(services["worker"]["depends_on"])
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency], f"{name} waits on {dependency}, which has no healthcheck"
    for name in ("redis", "postgres", "worker", "flower"):
        assert "healthcheck" in services[name], f"compose service {name} has no healthcheck"


def test_compose_flower_requires_basic_auth() -> None:
    flower = compose()["services"]["flower"]
    assert flower["command"][:2] == ["lgdist", "flower"]
    match = INTERPOLATION.fullmatch(service_env(flower)["LGDIST_FLOWER_AUTH"])
    # `:?` makes `docker compose up` fail when the variable is unset or empty.
    assert match and match["name"] == "LGDIST_FLOWER_AUTH" and match["op"] == ":?"
    for port in flower.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"Flower published beyond localhost: {port}"


def test_compose_secrets_come_from_the_environment() -> None:
    for name, service in compose()["services"].items():
        for key, value in service_env(service).items():
            if not SECRET_NAME.search(key):
                continue
            match = INTERPOLATION.fullmatch(value)
            assert match, f"compose {name}: {key} is written down; take it from ${{{key}}}"
            if match["op"] in (":-", "-"):
                assert PLACEHOLDER in match["arg"], f"compose {name}: {key} defaults to a real-looking value"


# --- secrets everywhere ------------------------------------------------------


def non_secret_strings() -> Iterator[tuple[str, str]]:
    for text in strings(compose()):
        yield "docker-compose.yml", text
    yield "Procfile", PROCFILE.read_text()
    yield "deploy/Dockerfile", DOCKERFILE.read_text()
    for file, doc in k8s_objects():
        if doc["kind"] != "Secret":
            for text in strings(doc):
                yield f"deploy/k8s/{file}", text


def test_no_credentials_are_written_down_outside_secrets() -> None:
    for where, text in non_secret_strings():
        # Passwords in URLs come from the environment; a default is a placeholder.
        for match in URL_CREDENTIALS.finditer(INTERPOLATION.sub("ENV", text)):
            assert match["password"] == "ENV", f"{where}: a password is written into {text!r}"
        for match in URL_CREDENTIALS.finditer(interpolate(text, {"LGDIST_FLOWER_AUTH": "x", API_KEYS_ENV: "x"})):
            assert PLACEHOLDER in match["password"], f"{where}: a default password in {text!r}"
        assert "--basic-auth" not in text, f"{where}: Flower credentials belong in LGDIST_FLOWER_AUTH"
        assert "FLOWER_UNAUTHENTICATED_API" not in text, f"{where}: Flower must not run unauthenticated"


def test_k8s_secrets_hold_only_placeholders() -> None:
    secrets = k8s_kind("Secret")
    assert secrets
    for secret in secrets:
        name = secret["metadata"]["name"]
        assert "data" not in secret, f"Secret {name}: use stringData with {PLACEHOLDER} placeholders"
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER in str(value), f"Secret {name}: {key} is not a {PLACEHOLDER} placeholder"


def test_k8s_credentials_come_only_from_secrets() -> None:
    for configmap in k8s_kind("ConfigMap"):
        for key in configmap.get("data", {}):
            assert key not in CREDENTIAL_VARS and not SECRET_NAME.search(key), f"ConfigMap holds {key}"
    for file, doc in k8s_objects():
        if doc["kind"] != "Deployment":
            continue
        for container in containers(doc):
            for var in container.get("env", []):
                if var["name"] in CREDENTIAL_VARS or SECRET_NAME.search(var["name"]):
                    assert "secretKeyRef" in var.get("valueFrom", {}), f"{file}: {var['name']} not from a Secret"


def test_k8s_references_point_at_defined_keys() -> None:
    defined = {
        ("Secret", doc["metadata"]["name"]): set(doc.get("stringData", {})) for doc in k8s_kind("Secret")
    } | {("ConfigMap", doc["metadata"]["name"]): set(doc.get("data", {})) for doc in k8s_kind("ConfigMap")}
    for file, doc in k8s_objects():
        if doc["kind"] == "Deployment":
            for container in containers(doc):
                for source in container.get("envFrom", []):
                    for kind, ref in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                        if ref in source:
                            assert (kind, source[ref]["name"]) in defined, f"{file}: no {kind} {source[ref]['name']}"
                for var in container.get("env", []):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        assert ref["key"] in defined.get(("Secret", ref["name"]), set()), f"{file}: {ref}"
        if doc["kind"] == "TriggerAuthentication":
            for ref in doc["spec"]["secretTargetRef"]:
                assert ref["key"] in defined.get(("Secret", ref["name"]), set()), f"{file}: {ref}"


# --- flower ------------------------------------------------------------------


def test_k8s_flower_takes_basic_auth_from_a_secret() -> None:
    flower = k8s_named("Deployment", "lgdist-flower")
    (container,) = containers(flower)
    assert container["command"][:2] == ["lgdist", "flower"]
    auth = {var["name"]: var for var in container["env"]}["LGDIST_FLOWER_AUTH"]
    ref = auth["valueFrom"]["secretKeyRef"]
    assert ref["key"] in k8s_named("Secret", ref["name"])["stringData"]
    assert ref.get("optional") is not True, "Flower must not start without its credentials"


def test_k8s_flower_service_selects_the_flower_pods() -> None:
    flower = k8s_named("Deployment", "lgdist-flower")
    service = k8s_named("Service", "lgdist-flower")
    labels = flower["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP", "expose Flower through a TLS Ingress"
    port_names = {port.get("name") for port in containers(flower)[0]["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names | {5555}


def test_procfile_flower_refuses_to_start_without_basic_auth() -> None:
    command = procfile()["flower"]
    guard, _, rest = command.partition("&&")
    assert "lgdist flower" in rest and "LGDIST_FLOWER_AUTH:?" in guard
    env = {key: value for key, value in os.environ.items() if key != "LGDIST_FLOWER_AUTH"}
    assert subprocess.run(["sh", "-c", guard], env=env, capture_output=True).returncode != 0
    env["LGDIST_FLOWER_AUTH"] = "user:pass"
    assert subprocess.run(["sh", "-c", guard], env=env, capture_output=True).returncode == 0


# --- Procfile ----------------------------------------------------------------


def test_procfile_runs_workers_flower_and_beat() -> None:
    processes = procfile()
    assert {"worker", "flower", "beat"} <= set(processes)
    assert processes["worker"].startswith("lgdist worker -c 2")
    assert "lgdist beat" in processes["beat"]


def test_honcho_parses_the_procfile() -> None:
    from honcho import environ  # a dev dependency: a missing one must fail, not skip
    parsed = environ.parse_procfile(PROCFILE.read_text())
    assert dict(parsed.processes) == procfile()


# --- Dockerfile --------------------------------------------------------------


def test_the_package_installs_lgdist_alone() -> None:
    # Not the test suite's workers/: a library claims no import name but its own.
    assert re.search(r'^include = \["lgdist\*"\]$', (ROOT / "pyproject.toml").read_text(), re.M)


def test_dockerfile_installs_lgdist_and_runs_as_non_root() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert re.search(r"pip install [\"']?\.\[postgres,flower,server\][\"']?", runs)
    sources = [word.rstrip("/") for op, arg in instructions if op == "COPY" for word in arg.split()[:-1]]
    # The image carries lgdist (with its example graphs), not the test suite's workers/.
    assert "lgdist" in sources and "workers" not in sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, (op, _) in enumerate(instructions) if op == "USER")
    last_cmd = max(i for i, (op, _) in enumerate(instructions) if op in ("CMD", "ENTRYPOINT"))
    assert last_user < last_cmd
    assert json.loads(dict(instructions)["CMD"]) == ["lgdist", "worker"]


def test_the_lgdist_console_script_and_extras_exist() -> None:
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["lgdist"] == "lgdist.cli:main"
    assert {"postgres", "flower", "server"} <= set(project["optional-dependencies"])


# --- kubernetes --------------------------------------------------------------


def test_k8s_manifests_parse_and_are_namespace_less() -> None:
    assert k8s_files()
    for file, doc in k8s_objects():
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), file
        assert "namespace" not in doc["metadata"], f"{file}: {doc['kind']} pins a namespace"


def test_kustomization_applies_everything_but_the_autoscalers() -> None:
    (kustomization,) = k8s_files()["kustomization.yaml"]
    expected = set(k8s_files()) - AUTOSCALERS - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == expected
    assert AUTOSCALERS <= set(k8s_files())


def test_k8s_has_the_deployment_objects() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in k8s_objects()}
    assert {
        ("ConfigMap", "lgdist-config"),
        ("Deployment", "lgdist-worker"),
        ("Deployment", "lgdist-beat"),
        ("Deployment", "lgdist-flower"),
        ("Service", "lgdist-flower"),
        ("ScaledObject", "lgdist-worker"),
        ("HorizontalPodAutoscaler", "lgdist-worker"),
    } <= kinds
    for deployment in k8s_kind("Deployment"):
        spec = deployment["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_k8s_runs_exactly_one_beat() -> None:
    beat = k8s_named("Deployment", "lgdist-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert containers(beat)[0]["command"][:2] == ["lgdist", "beat"]


def test_k8s_worker_runs_lgdist_worker() -> None:
    (container,) = containers(k8s_named("Deployment", "lgdist-worker"))
    assert container["command"][:2] == ["lgdist", "worker"]


def test_keda_scales_workers_on_the_lgdist_queue_length() -> None:
    scaled = k8s_named("ScaledObject", "lgdist-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "lgdist-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    queue = k8s_named("ConfigMap", "lgdist-config")["data"].get("LGDIST_DEFAULT_QUEUE", Settings().default_queue)
    assert trigger["metadata"]["listName"] == queue == "lgdist"
    assert int(trigger["metadata"]["listLength"]) > 0
    k8s_named("TriggerAuthentication", trigger["authenticationRef"]["name"])


def test_hpa_alternative_scales_the_worker_deployment() -> None:
    hpa = k8s_named("HorizontalPodAutoscaler", "lgdist-worker")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "lgdist-worker")
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


# --- lgdist serve ------------------------------------------------------------


def _serve_args(argv: list[str]) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2024)
    parser.add_argument("--log-level", default="info")
    return parser.parse_args(argv)


def test_serve_on_a_public_address_always_has_api_keys() -> None:
    """Every `lgdist serve` bound beyond loopback gets LGDIST_API_KEYS from
    the environment or a Secret (the server refuses to start without it)."""
    from lgdist.server.auth import is_loopback

    runs = [(where, argv) for where, argv in LGDIST_RUNS if argv[:1] == ["serve"]]
    assert {where.split(":")[0] for where, _ in runs} >= {"compose", "Procfile", "k8s"}
    compose_serve = compose()["services"]["serve"]
    match = INTERPOLATION.fullmatch(service_env(compose_serve)[API_KEYS_ENV])
    assert match and match["op"] == ":?", "compose serve: LGDIST_API_KEYS must be required (${VAR:?...})"
    serve = k8s_named("Deployment", "lgdist-serve")
    (container,) = containers(serve)
    keys = [e for e in container["env"] if e["name"] == API_KEYS_ENV]
    assert keys and "secretKeyRef" in keys[0]["valueFrom"]
    for where, argv in runs:
        args = _serve_args(argv[1:])
        if where.startswith("Procfile"):
            assert is_loopback(args.host), f"{where}: the Procfile's serve has no key: keep it on loopback"


def test_serve_is_ready_on_ok_everywhere() -> None:
    assert "/ok" in str(compose()["services"]["serve"]["healthcheck"]["test"])
    serve = k8s_named("Deployment", "lgdist-serve")
    (container,) = containers(serve)
    assert container["readinessProbe"]["httpGet"]["path"] == "/ok"
    port = container["ports"][0]["containerPort"]
    assert _serve_args(container["command"][2:]).port == port
    service = k8s_named("Service", "lgdist-serve")
    assert service["spec"]["selector"] == serve["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert "serve.yaml" in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]


def test_dockerfile_is_a_base_image_with_the_server() -> None:
    run = " ".join(arg for instruction, arg in dockerfile_instructions() if instruction == "RUN")
    assert "server" in re.search(r"pip install \"\.\[([^]]*)\]\"", run)[1].split(",")
    env = " ".join(arg for instruction, arg in dockerfile_instructions() if instruction == "ENV")
    assert "PYTHONPATH=/app" in env, "a derived image's graph modules under /app must import"
    assert "FROM lgdist" in DEPLOY_README.read_text(), "deploy/README.md shows how to extend the image"
