"""logger.mode=auto leaves the mode to wandb's own environment and settings, and logs offline only
when wandb has no credentials (src/engine/loggers.py)."""

from __future__ import annotations

import pytest

from src.engine.loggers import has_credentials, wandb_mode

WANDB_ENV = ("WANDB_MODE", "WANDB_DISABLED", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL")


@pytest.fixture
def bare(monkeypatch, tmp_path):
    """No wandb variable, an empty home: no credentials anywhere."""
    for name in WANDB_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    return tmp_path


def test_without_credentials_auto_logs_offline(bare):
    assert not has_credentials() and wandb_mode("auto") == "offline"


@pytest.mark.parametrize("name, value", [("WANDB_MODE", "disabled"), ("WANDB_MODE", "online"), ("WANDB_DISABLED", "true"),
                                         ("WANDB_API_KEY", "x" * 40)])
def test_a_mode_or_key_in_the_environment_is_left_to_wandb(bare, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert wandb_mode("auto") is None


def test_wandb_login_credentials_are_found_in_netrc(bare, monkeypatch):
    (bare / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert has_credentials() and wandb_mode("auto") is None
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")  # a key for another server does not count
    assert not has_credentials() and wandb_mode("auto") == "offline"


def test_netrc_named_by_the_environment(bare, monkeypatch):
    other = bare / "elsewhere"
    other.write_text("machine wandb.example.org login user password secret\n")
    monkeypatch.setenv("NETRC", str(other))
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert has_credentials()


@pytest.mark.parametrize("mode", ["online", "offline", "disabled"])
def test_an_explicit_mode_is_forced(bare, monkeypatch, mode):
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode(mode) == mode
