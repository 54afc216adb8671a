"""``GET /openapi.json``: an OpenAPI 3.0 description of the gateway's public routes.

Written by hand: the mobile app's surface (device registration, login, the
step-up challenge protocol, the proxied ``/v1`` routes of the default route
policy) and the probes. Admin, console and carrier routes are left out; the
session admin API has its own document at ``/admin/api/openapi.json``
(gateway.admin_api.openapi).
Every refusal is the JSON error body of :mod:`gateway.errors`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.api_auth import json_response

__all__ = ["OPENAPI", "openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_JSON_ERROR = {"application/json": {"schema": _ERROR}}
_REFUSALS = {
    "400": {"description": "Malformed request (bad JSON, field or JWE)", "content": _JSON_ERROR},
    "401": {"description": "Missing or invalid device signature, session or step-up",
            "content": _JSON_ERROR},
    "403": {"description": "Refused by policy or limits", "content": _JSON_ERROR},
    "404": {"description": "No such route, challenge or tool", "content": _JSON_ERROR},
    "409": {"description": "Conflicting state (not enrolled, device limit)", "content": _JSON_ERROR},
    "413": {"description": "Body larger than server.max_body_bytes", "content": _JSON_ERROR},
    "429": {"description": "Locked out after repeated failures", "content": _JSON_ERROR},
    "503": {"description": "state_unavailable (Redis unreachable; Retry-After), service_suspended or channel_suspended (switched off by the bank)", "content": _JSON_ERROR},
}
_SIGNED = [{"deviceSignature": [], "deviceId": []}]
_SESSION = [{"session": [], "deviceSignature": [], "deviceId": []}]


def _json_body(schema: dict[str, object], *, jose: bool = True) -> dict[str, object]:
    content: dict[str, object] = {"application/json": {"schema": schema}}
    if jose:  # the same document as a compact JWE (gateway.payload_encryption)
        content["application/jose"] = {"schema": {"type": "string"}}
    return {"required": True, "content": content}


def _answer(description: str, schema: dict[str, object] | None = None) -> dict[str, object]:
    out: dict[str, object] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


_OBJECT = {"type": "object"}
_EC_JWK = {"type": "object", "required": ["kty", "crv", "x", "y"],
           "properties": {"kty": {"type": "string", "enum": ["EC"]},
                          "crv": {"type": "string", "enum": ["P-256"]},
                          "x": {"type": "string"}, "y": {"type": "string"}}}
_PATH_ID = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}
_STEP_PARAMS = [
    {"name": "challenge_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "tool", "in": "path", "required": True,
     "schema": {"type": "string", "enum": ["pwd", "sms", "sms_armor", "totp", "biometric", "fido", "face",
                                           "cloud_cert", "hardware_cert", "mtls_cert"]}},
]

OPENAPI: dict[str, object] = {
    "openapi": "3.0.3",
    "info": {"title": "riskgate gateway", "version": "1",
             "description": "Public routes of the riskgate security and risk-control gateway. "
                            "The admin API for signed-in analysts is described at "
                            "/admin/api/openapi.json."},
    "paths": {
        "/healthz": {"get": {"summary": "Liveness", "responses": {
            "200": _answer("The process is up", {"type": "object"})}}},
        "/readyz": {"get": {"summary": "Readiness: Redis and the upstream", "responses": {
            "200": _answer("Ready", _OBJECT),
            "503": _answer("Redis or the upstream is unreachable", _OBJECT)}}},
        "/.well-known/jwks.json": {"get": {"summary": "Assertion and encryption public keys",
                                           "responses": {"200": _answer("A JWKS", _OBJECT)}}},
        "/devices": {"post": {
            "summary": "Register a device key (signed with that key)",
            "security": [{"deviceSignature": []}],
            "requestBody": _json_body({
                "type": "object", "required": ["user_id", "password", "public_key"],
                "properties": {"user_id": {"type": "string"}, "password": {"type": "string"},
                               "public_key": _EC_JWK, "enc_jwk": _EC_JWK, "attributes": _OBJECT,
                               "signals": {"type": "object",
                                           "additionalProperties": {"type": "boolean"}}}}),
            "responses": {"201": _answer("Registered (pending or bound)", _OBJECT), **_REFUSALS}}},
        "/auth/login": {"post": {
            "summary": "Open a session on a registered device",
            "security": _SIGNED,
            "requestBody": _json_body({"type": "object", "required": ["password"],
                                       "properties": {"password": {"type": "string"},
                                                      "signals": _OBJECT}}),
            "responses": {"200": _answer("A session token", _OBJECT), **_REFUSALS}}},
        "/auth/challenges/{challenge_id}/{tool}/begin": {"post": {
            "summary": "Start answering a step-up challenge with one tool",
            "security": _SESSION, "parameters": _STEP_PARAMS,
            "requestBody": {"required": False, "content": {"application/json": {"schema": _OBJECT}}},
            "responses": {"200": _answer("What the tool needs (options, a code sent, ...)", _OBJECT),
                          **_REFUSALS}}},
        "/auth/challenges/{challenge_id}/{tool}/complete": {"post": {
            "summary": "Answer a step-up challenge with one tool",
            "security": _SESSION, "parameters": _STEP_PARAMS,
            "requestBody": _json_body(_OBJECT),
            "responses": {"200": _answer("Pending, or approved with an approval token", _OBJECT),
                          **_REFUSALS}}},
        "/v1/accounts/{account_id}/balance": {"get": {
            "summary": "An account's balance (proxied)",
            "security": _SESSION,
            "parameters": [{"name": "account_id", "in": "path", "required": True, "schema": _PATH_ID}],
            "responses": {"200": _answer("The upstream's answer", _OBJECT), **_REFUSALS}}},
        "/v1/transfers": {"post": {
            "summary": "Move money (proxied after risk, limits and step-up)",
            "security": _SESSION,
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": {"type": "string"}},
                {"name": "X-Approval-Token", "in": "header", "required": False,
                 "schema": {"type": "string"}},
                {"name": "X-Large-Transfer-Notice", "in": "header", "required": False,
                 "schema": {"type": "string", "enum": ["confirmed"]}},
            ],
            "requestBody": _json_body({
                "type": "object", "required": ["from_account", "payee_account", "amount"],
                "properties": {"from_account": {"type": "string", "maxLength": 64},
                               "payee_account": {"type": "string", "maxLength": 64},
                               "amount": {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$"},
                               "currency": {"type": "string", "enum": ["CNY"]}}}),
            "responses": {"200": _answer("The upstream's answer", _OBJECT),
                          "428": _answer("The large-transfer notice must be confirmed", _ERROR),
                          "502": _answer("The banking service is unavailable", _ERROR),
                          "504": _answer("The banking service did not answer in time", _ERROR),
                          **_REFUSALS}}},
    },
    "components": {
        "schemas": {"Error": {"type": "object", "required": ["error", "message"],
                              "properties": {"error": {"type": "string"},
                                             "message": {"type": "string"}}}},
        "securitySchemes": {
            "session": {"type": "http", "scheme": "bearer",
                        "description": "The session token from POST /auth/login"},
            "deviceId": {"type": "apiKey", "in": "header", "name": "X-Device-Id"},
            "deviceSignature": {"type": "apiKey", "in": "header", "name": "X-Device-Signature",
                                "description": "v1; ts=...; nonce=...; sig=... (docs/client-protocol.md)"},
        },
    },
}


async def openapi(request: Request) -> Response:
    return json_response(OPENAPI)
