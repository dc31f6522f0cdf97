"""Settings: the one place that reads the environment.

Sources, later wins: defaults < ``config.json`` in the data dir < ``.env`` < ``LVS_*`` environment
< test overrides. Every setting has a type, a default and a line saying what it does; a wrong value
raises ``ConfigError`` naming the setting and why, and start-up stops with that one line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from services.errors import ConfigError

WATCH_MODES = ("auto", "events", "poll", "off")
BACKGROUND_MODES = ("auto", "inline", "off")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Setting:
    """One documented setting: its env name, parser and default."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    doc: str

    @property
    def env(self) -> str:
        return "LVS_" + self.name.upper()


def _paths(value: Any) -> tuple[Path, ...]:
    if isinstance(value, str):
        parts = [p for p in value.split(os.pathsep) if p.strip()]
    elif isinstance(value, list | tuple):
        parts = [str(p) for p in value]
    else:
        raise ValueError("expected a list of folders")
    if not parts:
        raise ValueError("needs at least one folder")
    return tuple(Path(p).expanduser().absolute() for p in parts)


def _path(value: Any) -> Path:
    if not str(value).strip():
        raise ValueError("must not be empty")
    return Path(str(value)).expanduser().absolute()


def _int_range(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number") from None
        if not lo <= number <= hi:
            raise ValueError(f"{number} is outside {lo}..{hi}")
        return number

    return parse


def _float_range(lo: float, hi: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not lo <= number <= hi:
            raise ValueError(f"{number:g} is outside {lo:g}..{hi:g}")
        return number

    return parse


def _choice(options: tuple[str, ...], upper: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        text = text.upper() if upper else text.lower()
        if text not in options:
            raise ValueError(f"{value!r} is not one of {', '.join(options)}")
        return text

    return parse


def _words(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(w for w in value.replace(",", " ").split() if w)
    if isinstance(value, list | tuple):
        return tuple(str(w) for w in value)
    raise ValueError("expected a list or a comma-separated string")


def _write_back(value: Any) -> tuple[str, ...]:
    """What the VR players may write back: rating, favorite, tags (or none)."""
    names = tuple(dict.fromkeys(w.lower() for w in _words(value)))
    wrong = [n for n in names if n not in ("rating", "favorite", "tags")]
    if wrong:
        raise ValueError(f"{wrong[0]!r} is not one of rating, favorite, tags")
    return names


def _names(value: Any) -> tuple[str, ...]:
    """Folder names, comma-separated (a name may hold spaces); an empty value: none."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list or a comma-separated string")
    names = tuple(str(n).strip() for n in value if str(n).strip())
    if any("/" in n for n in names):
        raise ValueError("a folder name, not a path: no '/'")
    return names


def _hosts(value: Any) -> tuple[str, ...]:
    names = tuple(w.lower() for w in _words(value))
    for name in names:
        bare = name.removeprefix(".").strip("[]")
        valid = bool(bare) and all(c.isalnum() or c in ".-:" for c in bare)
        if name not in ("*", "auto") and not valid:
            raise ValueError(f"{name!r} is not a host name (use auto, *, or names like tv.lan)")
    return names


def _flag(value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not on or off")


def _optional_path(value: Any) -> Path | None:
    return Path(str(value)).expanduser().absolute() if str(value).strip() else None


def _redis_url(value: Any) -> str:
    """Empty (single node) or a redis://, rediss:// or unix:// URL."""
    text = str(value).strip()
    if text and not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{value!r} is not a redis://, rediss:// or unix:// URL (or empty)")
    return text


def _path_map(value: Any) -> tuple[tuple[str, str], ...]:
    """ "from=to[,from=to]": absolute media paths on the server and where a worker sees them."""
    if isinstance(value, str):
        value = [p for p in value.split(",") if p.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError("expected from=to pairs, comma-separated")
    pairs = []
    for item in value:
        src, eq, dst = str(item).partition("=")
        src, dst = src.strip().rstrip("/") or "/", dst.strip().rstrip("/") or "/"
        if not eq or not src.startswith("/") or not dst.startswith("/"):
            raise ValueError(f"{str(item)[:60]!r} is not from=to with two absolute paths")
        pairs.append((src, dst))
    return tuple(pairs)


def _secret(value: Any) -> str:
    text = str(value).strip()
    if text and len(text) < 16:
        raise ValueError("too short: use at least 16 characters (e.g. openssl rand -hex 32)")
    return text


def _host(value: Any) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"{value!r} is not a host address")
    return text


SETTINGS: tuple[Setting, ...] = (
    Setting("media_dirs", _paths, "./media", "library folders, os.pathsep-separated"),
    Setting("data_dir", _path, "./data", "database, thumbnails, caches and the secret key"),
    Setting("host", _host, "0.0.0.0", "address the server listens on"),
    Setting("port", _int_range(1, 65535), 8080, "port the server listens on"),
    Setting(
        "watch",
        _choice(WATCH_MODES),
        "auto",
        "auto (events; polling where they fail), events, poll or off",
    ),
    Setting(
        "watch_debounce",
        _float_range(0.05, 600),
        1.0,
        "seconds of quiet in a folder before its changes are scanned",
    ),
    Setting(
        "watch_settle",
        _float_range(0.05, 600),
        0.5,
        "a changed folder's files must keep their size and mtime this long before a scan",
    ),
    Setting(
        "watch_poll_interval",
        _float_range(0.1, 86_400),
        30.0,
        "seconds between re-walks of polled roots (network mounts) and checks of lost roots",
    ),
    Setting(
        "cors_origins", _words, "", "origins allowed to call the JSON APIs; empty: same origin"
    ),
    Setting(
        "transcode_cache_gb",
        _float_range(0, 10_000),
        10.0,
        "size limit of the transcode cache in GB",
    ),
    Setting(
        "transcode_max",
        _int_range(0, 64),
        0,
        "encoders (transcode or remux) running at once; 0: one per 2 CPUs, at least 1",
    ),
    Setting(
        "transcode_idle",
        _float_range(1, 3600),
        60.0,
        "seconds without a segment request before a playback session and its encoder end",
    ),
    Setting(
        "scan_workers",
        _int_range(0, 64),
        0,
        "folder-reading processes; 0: one per CPU, 3 on network",
    ),
    Setting(
        "probe_workers", _int_range(0, 32), 0, "probe worker processes; 0 = one per CPU, at most 4"
    ),
    Setting(
        "probe_timeout",
        _float_range(1, 3600),
        30.0,
        "seconds before a probe is stopped and the file failed",
    ),
    Setting(
        "wal_checkpoint_interval",
        _float_range(0.1, 86_400),
        60.0,
        "seconds between attempts to checkpoint and empty the database's write-ahead log",
    ),
    Setting("log_level", _choice(LOG_LEVELS, upper=True), "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting("log_format", _choice(("text", "json")), "text", "log lines as text or JSON lines"),
    Setting("metrics_port", _int_range(0, 65535), 0, "0: /metrics for admins only; N: also open"),
    Setting("thumbnail_width", _int_range(64, 1920), 320, "width of poster thumbnails in pixels"),
    Setting("sprite_width", _int_range(32, 640), 160, "width of one scrub-preview tile in pixels"),
    Setting("sprite_tiles", _int_range(1, 400), 81, "most scrub-preview tiles per video"),
    Setting(
        "thumbnail_timeout",
        _float_range(1, 3600),
        30.0,
        "seconds before making a thumbnail is stopped and the file failed",
    ),
    Setting(
        "sprite_timeout",
        _float_range(1, 7200),
        300.0,
        "seconds before making a scrub preview is stopped and the file failed",
    ),
    Setting(
        "preview_clips",
        _flag,
        "on",
        "on: the server makes a short silent preview clip of each video when it has nothing else",
    ),
    Setting(
        "background",
        _choice(BACKGROUND_MODES),
        "auto",
        "auto (one server process runs the jobs), inline (in the caller: tests) or off",
    ),
    Setting(
        "trusted_hosts",
        _hosts,
        "auto",
        "Host names the server answers to; auto: IPs, localhost, this machine, .local/.lan names",
    ),
    Setting("workers", _int_range(1, 32), 2, "gunicorn worker processes"),
    Setting("threads", _int_range(1, 256), 8, "threads per worker: each playing video holds one"),
    Setting(
        "guest", _flag, "off", "on: anyone on the LAN may browse and watch, read-only, unsigned"
    ),
    Setting(
        "tls",
        _choice(("off", "on", "self-signed")),
        "off",
        "serve HTTPS: on (tls_cert/tls_key) or self-signed",
    ),
    Setting("tls_cert", _optional_path, "", "certificate (PEM) for tls=on"),
    Setting("tls_key", _optional_path, "", "private key (PEM) for tls=on"),
    Setting(
        "proxy_count", _int_range(0, 5), 0, "reverse proxies in front; 0: X-Forwarded-* ignored"
    ),
    Setting("login_limit", _int_range(1, 10_000), 10, "sign-in attempts per account per 5 minutes"),
    Setting(
        "login_limit_ip", _int_range(1, 10_000), 30, "sign-in attempts per address per 5 minutes"
    ),
    Setting(
        "vr_folders",
        _names,
        "VR",
        "folder names (comma-separated, any case) whose videos without VR tokens go by aspect",
    ),
    Setting(
        "vr_write_back",
        _write_back,
        "",
        "what DeoVR/HereSphere may change: any of rating, favorite, tags (empty: nothing)",
    ),
    Setting(
        "redis_url",
        _redis_url,
        "",
        "Redis for workers on other machines (redis://:PASSWORD@host:6379/0); empty: single node",
    ),
    Setting("local_work", _flag, "on", "with workers: this server transcodes and previews too"),
    Setting("path_map", _path_map, "", "on a worker: server media path=this machine's, comma-sep."),
    Setting(
        "node_secret", _secret, "", "shared secret signing requests between server and workers"
    ),
    Setting(
        "worker_scratch", _optional_path, "", "a worker's folder for segments; empty: a temp dir"
    ),
    Setting(
        "transcode_shared",
        _optional_path,
        "",
        "with workers: a folder they write segments into and the server serves from (each "
        "machine's own mount path); empty: segments proxied over HTTP",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one server or CLI process."""

    media_dirs: tuple[Path, ...]
    data_dir: Path
    host: str
    port: int
    watch: str
    watch_debounce: float
    watch_settle: float
    watch_poll_interval: float
    cors_origins: tuple[str, ...]
    transcode_cache_gb: float
    transcode_max: int
    transcode_idle: float
    scan_workers: int
    probe_workers: int
    probe_timeout: float
    wal_checkpoint_interval: float
    log_level: str
    log_format: str
    metrics_port: int
    thumbnail_width: int
    sprite_width: int
    sprite_tiles: int
    thumbnail_timeout: float
    sprite_timeout: float
    preview_clips: bool
    background: str
    trusted_hosts: tuple[str, ...]
    workers: int
    threads: int
    guest: bool
    tls: str
    tls_cert: Path | None
    tls_key: Path | None
    proxy_count: int
    login_limit: int
    login_limit_ip: int
    vr_folders: tuple[str, ...]
    vr_write_back: tuple[str, ...]
    redis_url: str
    local_work: bool
    path_map: tuple[tuple[str, str], ...]
    node_secret: str
    worker_scratch: Path | None
    transcode_shared: Path | None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "library.db"

    def effective_transcode_max(self) -> int:
        """Return how many encoders may run at once."""
        return self.transcode_max or max(1, (os.cpu_count() or 1) // 2)

    def effective_probe_workers(self) -> int:
        """Return the number of probe processes to run."""
        return self.probe_workers or max(1, min(4, os.cpu_count() or 1))


def _parse(name: str, value: Any, source: str) -> Any:
    setting = _BY_NAME[name]
    try:
        return setting.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{setting.env} ({source}): {exc}") from None


def _from_env(environ: Mapping[str, str | None], source: str) -> dict[str, tuple[Any, str]]:
    found = {}
    for setting in SETTINGS:
        value = environ.get(setting.env)
        if value is not None:
            found[setting.name] = (value, source)
    unknown = sorted(k for k in environ if k.startswith("LVS_") and k[4:].lower() not in _BY_NAME)
    if unknown:
        raise ConfigError(f"{unknown[0]} ({source}): unknown setting")
    return found


def _from_json(path: Path) -> dict[str, tuple[Any, str]]:
    if not path.is_file():
        return {}
    source = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a JSON object of settings")
    found = {}
    for key, value in data.items():
        if key not in _BY_NAME:
            raise ConfigError(f"{key} ({source}): unknown setting")
        if key == "data_dir":
            raise ConfigError(f"data_dir ({source}): cannot be set inside the data dir itself")
        found[key] = (value, source)
    return found


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> Settings:
    """Return validated settings from defaults, config.json, .env, environment and overrides."""
    environ = os.environ if environ is None else environ
    dotenv_path = Path(".env") if dotenv_path is None else dotenv_path
    layers: list[dict[str, tuple[Any, str]]] = []
    dotenv = _from_env(dotenv_values(dotenv_path), ".env") if dotenv_path.is_file() else {}
    env = _from_env(environ, "environment")
    tests = {}
    for key, value in (overrides or {}).items():
        if key not in _BY_NAME:
            raise ConfigError(f"{key} (overrides): unknown setting")
        tests[key] = (value, "overrides")
    # The data dir decides where config.json lives, so resolve it first without config.json.
    data_dir_raw = _BY_NAME["data_dir"].default, "default"
    for layer in (dotenv, env, tests):
        data_dir_raw = layer.get("data_dir", data_dir_raw)
    data_dir = _parse("data_dir", *data_dir_raw)
    layers = [_from_json(data_dir / "config.json"), dotenv, env, tests]

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        raw, source = setting.default, "default"
        for layer in layers:
            raw, source = layer.get(setting.name, (raw, source))
        values[setting.name] = _parse(setting.name, raw, source)
        sources[setting.name] = source
    if values["redis_url"] and not values["node_secret"]:
        raise ConfigError(
            f"LVS_NODE_SECRET ({sources['node_secret']}): must be set when LVS_REDIS_URL is "
            "(the same value on the server and every worker)"
        )
    return Settings(**values, sources=sources)


def describe() -> list[tuple[str, str, str]]:
    """Return (env name, default, doc) for every setting, for the README and `--help`."""
    return [(s.env, str(s.default), s.doc) for s in SETTINGS]
