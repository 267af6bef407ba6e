"""Exactly one of the API's two auth modes: an api key, or OAuth2 client credentials."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from requests.auth import AuthBase

from connectors.analytics.settings import API_KEY_PARAM
from shared.errors import ConfigurationError, config_key, env_var
from shared.http.auth import (
    api_key_header,
    api_key_query,
    oauth2_client_credentials,
    require_secret,
)

CONNECTOR = "analytics"
OAUTH_KEYS = ("client_id", "client_secret", "token_url")
API_KEY_LOCATIONS = ("query", "header")


@dataclass
class Authentication:
    """The chosen authenticator and the config keys to name when the API rejects it."""

    auth: AuthBase
    secret_keys: tuple[str, ...]


def authentication(
    base_url: str,
    api_key: str | None,
    client_id: str | None,
    client_secret: str | None,
    token_url: str | None,
    api_key_location: str,
    expiry_margin: float,
) -> Authentication:
    """Choose the auth mode from what is configured; raise `ConfigurationError` unless
    exactly one mode is fully configured. Nothing is sent here.

    Args:
        base_url: the API's base URL; a `token_url` that is a path is resolved against it.
        api_key: the api key, or None.
        client_id: the OAuth2 client id, or None.
        client_secret: the OAuth2 client secret, or None.
        token_url: the OAuth2 token URL (absolute, or a path on `base_url`), or None.
        api_key_location: `"query"` (parameter `api_key`) or `"header"` (header `api_key`).
        expiry_margin: renew a token this many seconds before it expires.
    """
    oauth = {"client_id": client_id, "client_secret": client_secret, "token_url": token_url}
    oauth_set = [key for key, value in oauth.items() if _is_set(value)]
    if _is_set(api_key) and oauth_set:
        raise ConfigurationError(
            f"{CONNECTOR}: both `api_key` and OAuth2 client credentials "
            f"({', '.join(f'`{key}`' for key in oauth_set)}) are configured; configure exactly "
            f"one auth mode: remove `{config_key(CONNECTOR, 'api_key')}`, or remove "
            + ", ".join(f"`{config_key(CONNECTOR, key)}`" for key in oauth_set)
        )
    if _is_set(api_key):
        if api_key_location not in API_KEY_LOCATIONS:
            raise ConfigurationError(
                f"{CONNECTOR}: api_key_location must be one of {API_KEY_LOCATIONS}, got "
                f"{api_key_location!r}; set `{config_key(CONNECTOR, 'api_key_location')}`"
            )
        # stripped of surrounding whitespace; a line break inside is refused, naming the key
        key = require_secret(api_key, CONNECTOR, "api_key")
        if api_key_location == "header":
            auth = api_key_header(key, header=API_KEY_PARAM)
        else:
            auth = api_key_query(key, param=API_KEY_PARAM)
        return Authentication(auth, ("api_key",))
    if not oauth_set:
        raise ConfigurationError(
            f"{CONNECTOR}: no credentials configured; set either "
            f"`{config_key(CONNECTOR, 'api_key')}` (env {env_var(CONNECTOR, 'api_key')}), or "
            "all of "
            + ", ".join(f"`{config_key(CONNECTOR, key)}`" for key in OAUTH_KEYS)
            + " for OAuth2 client credentials"
        )
    missing = [key for key in OAUTH_KEYS if key not in oauth_set]
    if missing:
        raise ConfigurationError(
            f"{CONNECTOR}: OAuth2 client credentials need {', '.join(OAUTH_KEYS)}; missing "
            + ", ".join(f"`{config_key(CONNECTOR, key)}`" for key in missing)
        )
    absolute_token_url = urljoin(base_url, str(token_url))
    if not absolute_token_url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"{CONNECTOR}: token_url must be an http(s) URL or a path on base_url; set "
            f"`{config_key(CONNECTOR, 'token_url')}`"
        )
    auth = oauth2_client_credentials(
        token_url=absolute_token_url,
        client_id=require_secret(client_id, CONNECTOR, "client_id"),
        client_secret=require_secret(client_secret, CONNECTOR, "client_secret"),
        expiry_margin=expiry_margin,
        connector=CONNECTOR,
    )
    return Authentication(auth, ("client_id", "client_secret"))


def _is_set(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())
