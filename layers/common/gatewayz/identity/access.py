"""Access to a route (docs/architecture.md): the bearer key authenticated, then the
route's scopes and the key's IP, origin and model allowlists applied to the request.

Every route that takes a key goes through `authorize`. A billed route (chat, embeddings,
images) calls `reauthorize` once its rate-limit call answered: that call reports the
account's announced auth version, and a key cached before the latest change is looked up
and authorized again, so the change applies to this very request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatewayz import http
from gatewayz.identity import auth, policy

if TYPE_CHECKING:
    from starlette.requests import Request

    from gatewayz.identity.auth import Caller
    from gatewayz.ratelimit.limiter import Admission


def authorize(
    request: Request, scopes: tuple[str, ...], *, model: str | None = None, fresh: bool = False
) -> Caller:
    """The caller of `request`, if its key holds one of `scopes` and the client IP, the
    Origin/Referer and `model` are within the key's allowlists. `fresh` looks the key up
    even when it is cached.

    Raises:
        InvalidApiKey / ExpiredApiKey / RevokedApiKey: 401, the key cannot be used.
        PermissionDenied (ScopeDenied, IpNotAllowed, ...): 403, naming the rule.
    """
    secret = auth.bearer(http.request_headers(request.scope))
    caller = auth.authenticate(secret, max_age_s=0) if fresh else auth.authenticate(secret)
    _apply(caller, request, scopes, model)
    return caller


def reauthorize(
    request: Request,
    caller: Caller,
    admission: Admission,
    scopes: tuple[str, ...],
    *,
    model: str | None = None,
) -> Caller:
    """`caller`, or, when its account changed since it was cached (`admission.version`),
    the caller as the database has it now, authorized again. A refusal here comes after
    the request was counted and its credits held: the caller gives both back
    (gatewayz/chat/admission.py).

    Raises:
        what `authorize` raises.
    """
    current = auth.revalidate(
        auth.bearer(http.request_headers(request.scope)), caller, admission.version
    )
    if current is not caller:
        _apply(current, request, scopes, model)
    return current


def _apply(caller: Caller, request: Request, scopes: tuple[str, ...], model: str | None) -> None:
    policy.require_scope(caller, *scopes)
    policy.require_ip(caller, http.client_ip(request))
    headers = http.request_headers(request.scope)
    policy.require_origin(caller, headers.get("referer"), headers.get("origin"))
    if model is not None:
        policy.require_model(caller, model)
