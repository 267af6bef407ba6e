"""Credentials, as every layer above sees them: a secret cleaned before use, an
authenticator scoped to its origin, and the secret values and names an authenticator
carries, registered with the source's `Redactor`.

Below both `shared.http.auth` (which builds authenticators) and `shared.http.session`
(which applies them): it imports neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dlt.sources.helpers.rest_client.auth import (
    APIKeyAuth,
    BearerTokenAuth,
    HttpBasicAuth,
    OAuth2ClientCredentials,
)
from dlt.sources.helpers.rest_client.redaction import SENSITIVE_PARAMS
from requests import PreparedRequest
from requests.auth import AuthBase

from shared.errors import ConfigurationError, config_key, env_var
from shared.http.origins import origin_of
from shared.redaction import Redactor

#: characters no header or query value may carry: `http.client` refuses them (and its
#: error, `Invalid header value b'Bearer <token>\n'`, would print the secret)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_character(text: str) -> bool:
    """Whether `text` holds a line break or another control character (no header or
    query value may)."""
    return _CONTROL.search(text) is not None


def clean_secret(value: Any, what: str = "a credential") -> str:
    """`value` as a string without surrounding whitespace or line breaks.

    Raises `ConfigurationError` (naming `what`, never the value) if a line break or
    another control character remains inside it: such a secret cannot be sent and is
    most likely two values pasted together.

    Args:
        value: the secret.
        what: how to name it in the error, e.g. "`sources.crm.bearer_token`".
    """
    text = str(value).strip()
    if _CONTROL.search(text):
        raise ConfigurationError(
            f"{what} contains a line break or another control character inside it, which "
            "cannot be sent in a header or URL; set it again as a single line (the value "
            "is not shown)"
        )
    return text


class OriginScopedAuth(AuthBase):
    """Apply `inner` only to requests whose origin is `origin`.

    Args:
        inner: any `requests` authenticator (dlt's auth classes are).
        origin: the URL (usually `base_url`) whose origin may receive the credentials.
    """

    def __init__(self, inner: AuthBase, origin: str) -> None:
        self.inner = inner
        self.origin = origin_of(origin)

    def applies_to(self, url: str) -> bool:
        return origin_of(url) == self.origin

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        if request.url and self.applies_to(request.url):
            return self.inner(request)
        return request

    def renew(self, refused: str | None = None) -> bool:
        """Renew the credentials if the inner authenticator can; True when it can.

        Args:
            refused: the `Authorization` header of the request the server refused (401),
                so that a token another thread already renewed is kept.
        """
        renew = getattr(self.inner, "renew", None)
        if renew is None:
            return False
        renew(refused)
        return True


def auth_secrets(auth: Any) -> list[str]:
    """The secret values an authenticator sends (for the source's `Redactor`)."""
    inner = auth.inner if isinstance(auth, OriginScopedAuth) else auth
    if inner is None:
        return []
    values: list[str] = []
    if isinstance(inner, BearerTokenAuth):
        values.append(inner.token)
    elif isinstance(inner, APIKeyAuth):
        values.append(inner.api_key)
        # a scheme word (`GenieKey <key>`) travels with the key; the key alone is secret
        values.extend(inner.api_key.split()[1:])
    elif isinstance(inner, HttpBasicAuth):
        values.extend([inner.password, f"{inner.username}:{inner.password}"])
    elif isinstance(inner, OAuth2ClientCredentials):
        values.extend([inner.client_secret, inner.access_token or ""])
    return [value for value in values if value]


def auth_names(auth: Any) -> list[str]:
    """The header or query parameter names an authenticator puts its credentials in."""
    inner = auth.inner if isinstance(auth, OriginScopedAuth) else auth
    if isinstance(inner, APIKeyAuth):
        return [inner.name]
    if isinstance(inner, BearerTokenAuth | HttpBasicAuth | OAuth2ClientCredentials):
        return ["Authorization"]
    return []


def attach_redactor(auth: Any, redactor: Redactor) -> None:
    """Register `auth`'s secrets and credential names with the source's `redactor`; an
    authenticator that obtains tokens (OAuth2) registers each of them there too."""
    redactor.register(*auth_secrets(auth))
    redactor.register_name(*auth_names(auth))
    inner = auth.inner if isinstance(auth, OriginScopedAuth) else auth
    use_redactor = getattr(inner, "use_redactor", None)
    if callable(use_redactor):
        use_redactor(redactor)


def require_secret(value: Any, connector: str, key: str) -> str:
    """Return `value` as a non-empty string without surrounding whitespace or line
    breaks, or raise a `ConfigurationError` naming the key (never the value): when it is
    missing, or when a line break or control character sits inside it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigurationError(
            f"{connector}: no `{key}` configured; set `{config_key(connector, key)}` in "
            f".dlt/secrets.toml or the env var {env_var(connector, key)}"
        )
    return clean_secret(value, f"{connector}: `{config_key(connector, key)}`")


def require_base_url(value: Any, connector: str) -> str:
    """Return `value`, or raise a `ConfigurationError` in one line naming where to set
    it: for a connector with no default base URL (its API has no vendor URL) that was
    given none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigurationError(
            f"{connector}: no `base_url` configured (this API has no default); set "
            f"`{config_key(connector, 'base_url')}` in .dlt/config.toml or the env var "
            f"{env_var(connector, 'base_url')}, or pass it: base_url=... in Python, "
            f"--base-url with `connectors run`"
        )
    return str(value)


def credentials_in_url(url: str, names: Iterable[str] = ()) -> str | None:
    """What credential `url` carries, said without its value, or None: a user name or
    password (`https://user:pw@host`), or a query parameter named like a credential
    (`?api_key=...`, or one of `names`). dlt stores URLs of config in its trace, and its
    and urllib3's DEBUG lines print them: a credential never belongs in one."""
    parts = urlsplit(url)
    try:
        has_userinfo = bool(parts.username or parts.password)
    except ValueError:  # a malformed port: not ours to judge here
        has_userinfo = "@" in parts.netloc
    if has_userinfo:
        return "a user name or password (`user:password@`)"
    sensitive = {name.lower() for name in (*SENSITIVE_PARAMS, *names)}
    for key, _ in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in sensitive:
            return f"a credential query parameter (`{key}`)"
    return None
