"""Credential values are checked once, in the auth helpers, before any request is built."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from talkdesk_bridge import ConfigurationError, Settings
from talkdesk_bridge._errors import Unauthorized
from talkdesk_bridge.connectors import auth_choice, auth_value
from talkdesk_bridge.connectors.sql import SqlConnector


@pytest.mark.parametrize("value", ["abc", "  padded-token\n", "x" * 4096, "!~{}|"])
def test_tokens_that_a_header_carries(value: str) -> None:
    assert auth_value({"access_token": value}, "access_token") == value.strip()


@pytest.mark.parametrize(
    "value",
    ["\x00", "ｅｖｉｌ", "tok en", "tok\r\nX: 1", "\x7f", "x" * 4097, "é", "\ud800"],  # noqa: RUF001
)
def test_other_tokens_are_a_401_naming_the_field_not_the_value(value: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        auth_value({"access_token": value}, "access_token")
    assert caught.value.status == 401
    assert "auth.access_token" in caught.value.message
    assert value.strip() not in caught.value.message


@pytest.mark.parametrize("value", [None, 1, True, [], {}, "", "   "])
def test_missing_or_not_a_string(value: object) -> None:
    with pytest.raises(Unauthorized, match=r"auth\.token is missing"):
        auth_value({"token": value}, "token")  # type: ignore[dict-item]


def test_labels_are_one_dns_label() -> None:
    assert auth_value({"subdomain": "acme-support"}, "subdomain", "label") == "acme-support"
    for bad in ("acme.evil.com", "-acme", "acme-", "a/b", "a@b", "ａｃｍｅ", "a" * 64):  # noqa: RUF001
        with pytest.raises(Unauthorized, match=r"auth\.subdomain must be a host name label"):
            auth_value({"subdomain": bad}, "subdomain", "label")


def test_choices_ignore_case_but_not_look_alikes() -> None:
    choices = ("us", "eu", "au", "k")
    assert auth_choice({}, "region", choices, default="us") == "us"
    assert auth_choice({"region": ""}, "region", choices, default="us") == "us"
    assert auth_choice({"region": "EU"}, "region", choices, default="us") == "eu"
    # The Kelvin sign lower-cases to "k"; full-width letters are other characters.
    for bad in ("\u212a", "ｅｕ", "eu ", 1, "\ud800"):  # noqa: RUF001
        with pytest.raises(Unauthorized, match=r"auth\.region must be one of: us, eu, au, k"):
            auth_choice({"region": bad}, "region", choices, default="us")


def test_sql_refuses_tokens_no_user_could_send() -> None:
    for bad in ("with space", "ｔｏｋｅｎ"):  # noqa: RUF001
        settings = Settings(
            connectors=["sql"], sql_api_tokens=[SecretStr("good-one"), SecretStr(bad)]
        )
        with pytest.raises(ConfigurationError, match="visible ASCII") as caught:
            SqlConnector(settings)
        assert bad not in str(caught.value)
