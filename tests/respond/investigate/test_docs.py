"""docs/respond/investigate.md: the settings example validates, every param is documented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from wgsiem.respond.actions.capture import _LIMITS
from wgsiem.respond.actions.notify import NotifySettings, SmtpChannel, WebhookChannel

DOC = Path(__file__).resolve().parents[3] / "docs" / "respond" / "investigate.md"


def test_settings_example_validates() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    settings = NotifySettings.model_validate(yaml.safe_load(block)["notify"])
    assert settings.webhooks["soc"].auth_value is not None
    assert "Bearer" not in repr(settings)  # secrets stay hidden


def test_every_param_and_field_is_documented() -> None:
    text = DOC.read_text()
    params = ["enabled", "where", "outer_interface", *_LIMITS, "max_events", "channel", "title", "message"]
    fields = [*WebhookChannel.model_fields, *SmtpChannel.model_fields]
    assert [p for p in params if f"`{p}`" not in text] == []
    assert [f for f in fields if f"{f}:" not in text] == []
