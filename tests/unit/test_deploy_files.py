"""deploy/: the Dockerfile, the compose file and the systemd unit.

This machine has no Docker daemon (nor the compose plugin, nor hadolint), so the image
is not built here. Instead the files are read and checked for what an operator relies on,
and the recipes are replayed with the real tools: the Dockerfile's ``uv sync`` steps build
the image's environment from the lock file, and that environment serves /healthz to the
image's HEALTHCHECK command; ``systemd-analyze`` verifies the unit, and the unit's command
line starts a server with the configuration it hands over.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from cli_runs import Proc, invoke

from parsec.config import parse_duration
from parsec.options import ServerOptions
from parsec.testing import free_port

pytestmark = pytest.mark.usefixtures("hermetic")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "docker" / "compose.yaml"
UNIT = DEPLOY / "systemd" / "parsec.service"
UV = REPO / ".tools" / "bin" / "uv"
SECRET_WORDS = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|SEED", re.IGNORECASE)
SHIPPED = {"pyproject.toml", "uv.lock", "README.md", "src"}
"""What the image is built from: nothing else of the checkout goes in."""


# -- the Dockerfile, read -------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        (args,) = self.all(keyword)
        return args


def stages() -> tuple[dict[str, str], list[Stage]]:
    """The Dockerfile's global ARGs and its stages, instructions joined across ``\\``."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    found: list[Stage] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), " ".join(rest.split())
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            found.append(Stage(base, name or None))
        elif not found and keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            found[-1].instructions.append((keyword, rest))
    return args, found


def exec_form(args: str) -> list[str]:
    """An instruction's arguments in the exec (JSON array) form."""
    value = json.loads(args)
    assert isinstance(value, list), f"not the exec form: {args}"
    return [str(part) for part in value]


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for pair in shlex.split(args):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def makefile_uv_version() -> str:
    match = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match is not None
    return match.group(1)


def test_the_image_is_built_in_two_stages_from_the_lock_file() -> None:
    """A build stage installs with `uv sync --locked` (the Makefile's uv), from the
    project files only; the runtime stage takes the environment and nothing else."""
    _, (build, runtime) = stages()
    assert build.name == "build"
    assert runtime.base == build.base
    assert f"UV_VERSION={makefile_uv_version()}" in build.all("ARG")
    syncs = [run for run in build.all("RUN") if "uv sync" in run]
    assert len(syncs) == 2
    for run in syncs:
        assert {"--locked", "--no-default-groups", "--extra"} <= set(run.split()), run
    assert "uv lock" not in " ".join(build.all("RUN"))
    copied = {part for copy in build.all("COPY") for part in copy.split()[:-1]}
    assert {part.rstrip("/") for part in copied} == SHIPPED
    assert runtime.all("COPY") == ["--from=build /opt/parsec /opt/parsec"]


def test_the_dockerignore_lets_in_only_what_the_image_is_built_from() -> None:
    lines = [
        line
        for line in (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line[1:].rstrip("/") for line in lines if line.startswith("!")} == SHIPPED


def test_the_image_serves_as_an_unprivileged_user_with_its_state_on_a_volume() -> None:
    """The last USER is not root and nothing runs after it; `parsec serve` listens on all
    interfaces; the state directory is a volume; SIGTERM stops it."""
    _, (_, runtime) = stages()
    user = runtime.all("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    after_user = runtime.instructions[
        max(i for i, (kw, _) in enumerate(runtime.instructions) if kw == "USER") :
    ]
    assert "RUN" not in [kw for kw, _ in after_user]
    command = exec_form(runtime.one("ENTRYPOINT")) + exec_form(runtime.one("CMD"))
    assert command == ["parsec", "serve", "--addr", "0.0.0.0:8000"]
    assert exec_form(runtime.one("VOLUME")) == [env_of(runtime)["PARSEC_STATE_DIR"]]
    assert runtime.one("EXPOSE") == "8000"
    assert runtime.one("STOPSIGNAL") == "SIGTERM"


def test_the_image_holds_no_secret() -> None:
    """No ARG or ENV of the image names a key, secret, token or password."""
    args, found = stages()
    names = list(args)
    for stage in found:
        names += [a.partition("=")[0] for a in stage.all("ARG")] + list(env_of(stage))
    assert [name for name in names if SECRET_WORDS.search(name)] == []


def healthcheck() -> list[str]:
    _, (_, runtime) = stages()
    options, _, command = runtime.one("HEALTHCHECK").partition(" CMD ")
    assert "--interval=" in options
    return exec_form(command)


def test_the_healthcheck_asks_healthz_on_the_served_port() -> None:
    assert "'http://127.0.0.1:8000/healthz'" in healthcheck()[-1]


@pytest.fixture
def image_environment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's /opt/parsec, made here by the build stage's `uv sync` steps run in
    order on a copy of what the stage copies (with uv's cache: ``--no-cache`` only keeps
    the image's layers small). The copy is removed afterwards, as the image drops /src."""
    assert UV.exists(), "uv is installed by `make install` in .tools"
    _, (build, _) = stages()
    work = tmp_path_factory.mktemp("image")
    source, venv = work / "src", work / "opt-parsec"
    source.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # certificates
    env |= env_of(build) | {
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": getattr(sys, "_base_executable", sys.executable),
    }
    for keyword, args in build.instructions:
        if keyword == "COPY":
            for part in args.split()[:-1]:
                copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy
                copy(REPO / part, source / part.rstrip("/"))
        elif keyword == "RUN" and args.startswith("uv sync"):
            argv = [str(UV), *shlex.split(args)[1:]]
            argv.remove("--no-cache")
            done = subprocess.run(
                argv, cwd=source, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, done.stderr
    shutil.rmtree(source)
    return venv


def test_the_image_environment_serves_its_healthcheck(
    image_environment: Path, spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """`parsec serve` of the environment the Dockerfile builds (Parsec installed as a
    package, the checkout gone) starts with the image's environment variables, and the
    image's HEALTHCHECK command succeeds against it."""
    _, (_, runtime) = stages()
    port = free_port()
    env = env_of(runtime) | {"PARSEC_STATE_DIR": str(tmp_path / "state")}
    env["PATH"] = env["PATH"].replace("/opt/parsec", str(image_environment))
    env["PATH"] = env["PATH"].replace("${PATH}", "/usr/bin:/bin")
    serve = subprocess.Popen(
        [
            str(image_environment / "bin" / "parsec"),
            *exec_form(runtime.one("CMD"))[:-1],
            f"127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stderr is not None
        for line in serve.stderr:
            if "parsec listening on" in line:
                break
        check = healthcheck()
        check[-1] = check[-1].replace(":8000/", f":{port}/")
        check[0] = str(image_environment / "bin" / check[0])
        done = subprocess.run(check, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        where = subprocess.run(
            [check[0], "-c", "import parsec; print(parsec.__file__)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert where.startswith(str(image_environment))
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        if serve.stderr is not None:
            serve.stderr.close()


# -- compose.yaml ------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def test_compose_runs_parsec_on_redis_once_redis_is_healthy() -> None:
    services = compose()["services"]
    assert set(services) == {"parsec", "redis"}
    parsec, redis = services["parsec"], services["redis"]
    assert parsec["command"] == [
        "serve",
        "--addr",
        "0.0.0.0:8000",
        "--broker",
        "redis://redis:6379/0",
    ]
    assert parsec["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert parsec["healthcheck"]["test"] == ["CMD", *healthcheck()]
    context = (COMPOSE.parent / parsec["build"]["context"]).resolve()
    assert context == REPO
    assert (context / parsec["build"]["dockerfile"]).resolve() == DOCKERFILE


def test_compose_keeps_state_on_named_volumes() -> None:
    document = compose()
    _, (_, runtime) = stages()
    state = env_of(runtime)["PARSEC_STATE_DIR"]
    assert f"parsec-state:{state}" in document["services"]["parsec"]["volumes"]
    assert "redis-data:/data" in document["services"]["redis"]["volumes"]
    assert set(document["volumes"]) == {"parsec-state", "redis-data"}


def test_compose_takes_secrets_from_the_environment_only() -> None:
    """Every secret-looking variable is a required ${VAR} reference; the stop grace
    period leaves the drain its shutdown_timeout."""
    parsec = compose()["services"]["parsec"]
    secrets = {k: v for k, v in parsec["environment"].items() if SECRET_WORDS.search(k)}
    assert secrets
    for name, value in secrets.items():
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", value), (name, value)
    assert (
        parse_duration(parsec["stop_grace_period"], "stop_grace_period")
        > ServerOptions().shutdown_timeout
    )
    assert parsec["stop_signal"] == "SIGTERM"


# -- the systemd unit --------------------------------------------------------------------------


def unit() -> dict[str, dict[str, list[str]]]:
    """The unit's sections: key → values (a key may repeat, as SystemCallFilter does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        current.setdefault(key, []).append(value)
    return sections


def service(key: str) -> str:
    (value,) = unit()["Service"][key]
    return value


HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectControlGroups": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    "StateDirectory": "parsec",
}


def test_the_unit_runs_parsec_serve_hardened() -> None:
    for key, value in HARDENING.items():
        assert service(key) == value, key
    argv = shlex.split(service("ExecStart"))
    assert argv[0].endswith("/bin/parsec")
    assert argv[1:3] == ["serve", "--config"]
    assert service("Restart") == "on-failure"
    assert service("KillSignal") == "SIGTERM"
    assert (
        parse_duration(service("TimeoutStopSec"), "TimeoutStopSec")
        > ServerOptions().shutdown_timeout
    )
    assert service("EnvironmentFile").lstrip("-").startswith("/etc/parsec/")
    assert "PARSEC_STATE_DIR=/var/lib/parsec" in unit()["Service"]["Environment"]
    assert unit()["Install"]["WantedBy"] == ["multi-user.target"]


def verifiable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart's binary replaced by this checkout's (``verify`` checks
    that the binary exists)."""
    parsec = Path(sys.executable).parent / "parsec"
    copy = tmp_path / "parsec.service"
    copy.write_text(UNIT.read_text().replace("/opt/parsec/bin/parsec", str(parsec)))
    return copy


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("systemd-analyze")
    assert binary is not None, "systemd-analyze is needed (Debian: systemd)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """No error and no warning (an unknown or misspelt key is only a warning)."""
    done = systemd_analyze("verify", str(verifiable_copy(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "parsec.service" not in done.stderr + done.stdout, done.stderr


def test_the_units_exposure_is_low(tmp_path: Path) -> None:
    """`systemd-analyze security` rates the unit's exposure at most 2.0 of 10."""
    done = systemd_analyze(
        "security", "--offline=true", "--threshold=20", str(verifiable_copy(tmp_path))
    )
    assert done.returncode == 0, done.stdout[-2000:]


def test_the_units_command_serves_the_configuration_it_is_handed(
    spawn: Callable[..., Proc], tmp_path: Path
) -> None:
    """ExecStart, with the unit's environment and the credential LoadCredential hands
    over (a file `parsec config init` wrote), starts a server that answers /healthz and
    keeps its state in the state directory."""
    credentials, state = tmp_path / "credentials", tmp_path / "state"
    credentials.mkdir()
    (name, source) = service("LoadCredential").split(":", 1)
    assert invoke("config", "init", str(credentials / name)).exit_code == 0
    assert source == "/etc/parsec/parsec.toml"
    argv = shlex.split(service("ExecStart").replace("${CREDENTIALS_DIRECTORY}", str(credentials)))
    env = {k: v for k, _, v in (p.partition("=") for p in unit()["Service"]["Environment"])}
    env["PARSEC_STATE_DIR"] = str(state)
    port = free_port()
    env["PARSEC_ADDR"] = f"127.0.0.1:{port}"
    proc = spawn(*argv[1:], cwd=tmp_path, env=env)
    proc.wait_for("err", "parsec listening on")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        assert response.status == 200
    assert (state / "operator.token").exists()
