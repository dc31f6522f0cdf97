from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path

import pytest

from app import create_app
from config import SETTINGS, Settings, load_settings
from services.errors import ConfigError


def load(tmp_path: Path, overrides=None, environ=None, dotenv: str | None = None) -> Settings:
    env_file = tmp_path / ".env"
    if dotenv is not None:
        env_file.write_text(dotenv)
    return load_settings(overrides, environ=environ or {}, dotenv_path=env_file)


def test_every_setting_is_a_field_and_documented():
    assert {f.name for f in fields(Settings)} - {"sources"} == {s.name for s in SETTINGS}
    assert all(s.doc and s.env.startswith("LVS_") for s in SETTINGS)


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load(tmp_path)
    assert s.media_dirs == (tmp_path / "media",)
    assert s.data_dir == tmp_path / "data"
    assert (s.host, s.port, s.watch, s.transcode_cache_gb) == ("0.0.0.0", 8080, "auto", 10.0)
    assert s.sources["port"] == "default"


def test_sources_in_order(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.json").write_text(
        json.dumps({"port": 9001, "host": "127.0.0.1", "watch": "poll"})
    )
    env = {"LVS_DATA_DIR": str(data), "LVS_WATCH": "off"}
    s = load(tmp_path, {"probe_timeout": 5}, env, dotenv="LVS_PORT=9002\nLVS_WATCH=events\n")
    assert s.host == "127.0.0.1" and s.sources["host"].endswith("config.json")
    assert s.port == 9002 and s.sources["port"] == ".env"
    assert s.watch == "off" and s.sources["watch"] == "environment"
    assert s.probe_timeout == 5.0 and s.sources["probe_timeout"] == "overrides"


def test_media_dirs_split_on_pathsep(tmp_path):
    s = load(tmp_path, environ={"LVS_MEDIA_DIRS": f"/a{os.pathsep}/b c{os.pathsep}"})
    assert s.media_dirs == (Path("/a"), Path("/b c"))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LVS_PORT": "80x"}, "LVS_PORT (environment): '80x' is not a whole number"),
        ({"LVS_PORT": "70000"}, "LVS_PORT (environment): 70000 is outside 1..65535"),
        ({"LVS_WATCH": "sometimes"}, "LVS_WATCH (environment): 'sometimes' is not one of"),
        ({"LVS_MEDIA_DIRS": ""}, "LVS_MEDIA_DIRS (environment): needs at least one folder"),
        ({"LVS_PROBE_TIMEOUT": "0"}, "LVS_PROBE_TIMEOUT (environment): 0 is outside"),
        ({"LVS_PROT": "1"}, "LVS_PROT (environment): unknown setting"),
    ],
)
def test_wrong_value_names_the_setting(tmp_path, env, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, environ=env)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_bad_config_json_is_named(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json: cannot be read as JSON"):
        load(tmp_path, environ={"LVS_DATA_DIR": str(data)})
    (data / "config.json").write_text(json.dumps({"data_dir": "/elsewhere"}))
    with pytest.raises(ConfigError, match="data_dir .*cannot be set inside the data dir"):
        load(tmp_path, environ={"LVS_DATA_DIR": str(data)})


def test_create_app_stops_with_one_line(tmp_path):
    with pytest.raises(SystemExit) as stop:
        create_app({"data_dir": str(tmp_path), "port": "many"})
    assert str(stop.value) == "Error: LVS_PORT (overrides): 'many' is not a whole number"
