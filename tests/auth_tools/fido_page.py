"""Test-only relying party: a tiny Starlette app around auth_tools.fido.

It plays the part the gateway will play (state in Redis with a TTL, deleted
on use; credentials persisted, flag included) so that the browser tests run
the whole round trip: options JSON -> navigator.credentials -> response JSON
posted back. The page's JS converts base64url <-> ArrayBuffer by hand.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager

import orjson
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import AuthToolError, ChallengeExpired, FidoSignCountRegression
from auth_tools.fido import (
    FidoConfig,
    FidoCredential,
    begin_authentication,
    begin_registration,
    complete_authentication,
    complete_registration,
)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>riskgate FIDO test page</title></head>
<body><h1>riskgate FIDO test page</h1>
<script>
const b64uToBuf = (s) => {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
};
const bufToB64u = (buf) => {
  let s = '';
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
};
const post = async (path, body) => {
  const r = await fetch(path, {method: 'POST', headers: {'content-type': 'application/json'},
                               body: JSON.stringify(body)});
  return await r.json();
};
const creationOptions = (o) => ({...o, challenge: b64uToBuf(o.challenge),
  user: {...o.user, id: b64uToBuf(o.user.id)},
  excludeCredentials: (o.excludeCredentials || []).map((c) => ({...c, id: b64uToBuf(c.id)}))});
const requestOptions = (o) => ({...o, challenge: b64uToBuf(o.challenge),
  allowCredentials: (o.allowCredentials || []).map((c) => ({...c, id: b64uToBuf(c.id)}))});
const registrationJSON = (c) => ({id: c.id, rawId: bufToB64u(c.rawId), type: c.type,
  authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: c.getClientExtensionResults(),
  response: {clientDataJSON: bufToB64u(c.response.clientDataJSON),
             attestationObject: bufToB64u(c.response.attestationObject),
             transports: c.response.getTransports ? c.response.getTransports() : []}});
const assertionJSON = (c) => ({id: c.id, rawId: bufToB64u(c.rawId), type: c.type,
  authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: c.getClientExtensionResults(),
  response: {clientDataJSON: bufToB64u(c.response.clientDataJSON),
             authenticatorData: bufToB64u(c.response.authenticatorData),
             signature: bufToB64u(c.response.signature),
             userHandle: c.response.userHandle ? bufToB64u(c.response.userHandle) : null}});

window.fidoRegister = async (user) => {
  const begun = await post('/register/begin', {user});
  let cred;
  try { cred = await navigator.credentials.create({publicKey: creationOptions(begun.options)}); }
  catch (e) { return {browser_error: e.name}; }
  return await post('/register/complete', {user, response: registrationJSON(cred)});
};
// Ask the authenticator to approve a transaction; returns the assertion without posting it.
// `override` lets a test play a tampering script (e.g. userVerification: 'discouraged').
window.fidoAssert = async (user, challengeId, txn, override) => {
  const begun = await post('/auth/begin', {user, challenge_id: challengeId, txn});
  if (begun.error) return begun;
  const options = {...begun.options, ...(override || {})};
  let cred;
  try { cred = await navigator.credentials.get({publicKey: requestOptions(options)}); }
  catch (e) { return {browser_error: e.name}; }
  return {response: assertionJSON(cred)};
};
window.fidoComplete = (user, challengeId, response) =>
  post('/auth/complete', {user, challenge_id: challengeId, response});
</script></body></html>
"""


def create_app(config: FidoConfig, redis_url: str, *, prefix: str = "fidotest") -> Starlette:
    """The relying party; state and credentials live in the Redis at ``redis_url``."""
    store: dict[str, aioredis.Redis] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette):
        store["r"] = aioredis.from_url(redis_url)
        try:
            yield
        finally:
            await store["r"].aclose()

    def creds_key(user: str) -> str:
        return f"{prefix}:{{u:{user}}}:fido:credentials"

    def state_key(user: str, name: str) -> str:
        return f"{prefix}:{{u:{user}}}:fido:state:{name}"

    async def credentials(user: str) -> dict[str, FidoCredential]:
        raw = await store["r"].hgetall(creds_key(user))
        return {k.decode(): FidoCredential.from_dict(orjson.loads(v)) for k, v in raw.items()}

    async def save(user: str, credential: FidoCredential) -> None:
        await store["r"].hset(creds_key(user), credential.credential_id,
                              orjson.dumps(credential.as_dict()))

    async def take_state(user: str, name: str) -> dict[str, object]:
        raw = await store["r"].getdel(state_key(user, name))
        if raw is None:  # expired or already used
            raise ChallengeExpired()
        return orjson.loads(raw)

    def failure(exc: AuthToolError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=400)

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def register_begin(request: Request) -> JSONResponse:
        user = (await request.json())["user"]
        existing = list((await credentials(user)).values())
        options, state = begin_registration(config, user, f"{user}@bank.example", existing,
                                            now=time.time())
        await store["r"].set(state_key(user, "registration"), orjson.dumps(state),
                             ex=int(config.state_ttl))
        return JSONResponse({"options": options})

    async def register_complete(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            state = await take_state(body["user"], "registration")
            credential = complete_registration(state, body["response"], time.time())
        except AuthToolError as exc:
            return failure(exc)
        await save(body["user"], credential)
        return JSONResponse({"credential": credential.as_dict() | {"public_key": "..."}})

    async def auth_begin(request: Request) -> JSONResponse:
        body = await request.json()
        user, txn = body["user"], body["txn"]
        transaction = Transaction(txn["action"], int(txn["amount"]), "CNY", txn.get("from", ""),
                                  txn["payee"])
        try:
            options, state = begin_authentication(config, body["challenge_id"], transaction,
                                                  list((await credentials(user)).values()),
                                                  now=time.time())
        except AuthToolError as exc:
            return failure(exc)
        await store["r"].set(state_key(user, body["challenge_id"]), orjson.dumps(state),
                             ex=int(config.state_ttl))
        return JSONResponse({"options": options})

    async def auth_complete(request: Request) -> JSONResponse:
        body = await request.json()
        user, response = body["user"], body["response"]
        try:
            state = await take_state(user, body["challenge_id"])
            stored = (await credentials(user)).get(str(response.get("rawId")))
            if stored is None:
                return JSONResponse({"error": "fido_credential_unknown"}, status_code=400)
            result = complete_authentication(state, response, stored, time.time())
        except FidoSignCountRegression as exc:
            await save(user, exc.credential)  # persist the flag before answering
            return failure(exc)
        except AuthToolError as exc:
            return failure(exc)
        await save(user, result.credential)
        return JSONResponse({"max_tier": result.max_tier, "amr": list(result.amr), "uv": result.uv,
                             "be": result.be, "bs": result.bs,
                             "new_sign_count": result.new_sign_count, "txn_hash": result.txn_hash})

    return Starlette(routes=[
        Route("/", page),
        Route("/register/begin", register_begin, methods=["POST"]),
        Route("/register/complete", register_complete, methods=["POST"]),
        Route("/auth/begin", auth_begin, methods=["POST"]),
        Route("/auth/complete", auth_complete, methods=["POST"]),
    ], lifespan=lifespan)
