"""The gateway CA over HTTP: its certificate, its CRL, branch issuance and revocation.

* ``GET /pki/ca.pem``: the CA certificate (PEM).
* ``GET /pki/crl``: the CRL (DER, ``application/pkix-crl``), freshly signed.
* ``POST /admin/users/{user_id}/hardware-cert`` (admin token): the body is a
  PKCS#10 request in PEM (or JSON ``{"csr": ...}``) made on the hardware key;
  answers 201 with the certificate PEM, its serial in ``X-Certificate-Serial``.
  This stands for issuance at a branch, after the customer's identity check.
* ``POST /admin/certificates/{serial}/revoke`` (admin token, serial in hex,
  optional JSON ``{"reason": "key_compromise"}``): revoked at once; the CRL
  lists it and approvals with it fail with ``certificate_revoked``.
"""

from __future__ import annotations

import re
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth_tools.certificate import CertificateProfile
from auth_tools.errors import BadToolInput
from gateway.api_admin import require_admin
from gateway.api_auth import json_response
from gateway.errors import BadRequest, NotFound
from gateway.pki_store import UnknownSerial
from gateway.services import Services
from gateway.stepup_cert import HardwareCertTool, issue, pki_of

__all__ = ["ROUTES"]

_SERIAL_RE = re.compile(r"^[0-9a-fA-F]{1,40}$")
_PEM = "application/x-pem-file"


async def ca_certificate(request: Request) -> Response:
    svc: Services = request.app.state.services
    pem = await pki_of(svc).ca_pem(time.time())
    return Response(pem, media_type=_PEM, headers={"cache-control": "public, max-age=3600"})


async def crl(request: Request) -> Response:
    svc: Services = request.app.state.services
    built = await pki_of(svc).crl(time.time())
    return Response(built.der, media_type="application/pkix-crl",
                    headers={"cache-control": "public, max-age=60"})


def _csr_from_body(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest("invalid_json", "the request body is not valid JSON") from exc
        text = doc.get("csr") if isinstance(doc, dict) else None
    if not isinstance(text, str) or "-----BEGIN CERTIFICATE REQUEST-----" not in text:
        raise BadToolInput("the body must be a PKCS#10 certificate request in PEM")
    return text


async def issue_hardware_cert(request: Request) -> Response:
    """POST /admin/users/{user_id}/hardware-cert: branch issuance of a hardware-key certificate."""
    svc = require_admin(request)
    now = time.time()
    user_id = request.path_params["user_id"]
    if not svc.users.valid_user_id(user_id) or not await svc.users.exists(user_id):
        raise NotFound("user_not_found", "no such customer")
    tool = HardwareCertTool()
    enrolled = await issue(svc, CertificateProfile.HARDWARE, _csr_from_body(request.scope["riskgate.body"]),
                           user_id=user_id, device_id="", now=now, describe=tool.describe)
    await svc.credentials.put(user_id, tool.name, enrolled.cred_id, enrolled.doc)
    return Response(str(enrolled.doc["cert_pem"]).encode(), status_code=201, media_type=_PEM,
                    headers={"x-certificate-serial": enrolled.cred_id})


async def revoke_certificate(request: Request) -> Response:
    """POST /admin/certificates/{serial}/revoke."""
    svc = require_admin(request)
    now = time.time()
    serial_text = request.path_params["serial"]
    if not _SERIAL_RE.match(serial_text) or int(serial_text, 16) == 0:
        raise NotFound("certificate_not_found", "no certificate with this serial")
    body = request.scope["riskgate.body"]
    reason = "unspecified"
    if body:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest("invalid_json", "the request body is not valid JSON") from exc
        if isinstance(doc, dict) and isinstance(doc.get("reason"), str):
            reason = doc["reason"]
    pki = pki_of(svc)
    serial = int(serial_text, 16)
    try:
        record = await pki.revoke(serial, reason, now)
        owner = await pki.issued(serial)
    except UnknownSerial as exc:
        raise NotFound("certificate_not_found", "no certificate with this serial") from exc
    # Mark the stored credential too, so the tool list shows it as revoked.
    user_id, tool, cred_id = str(owner["user_id"]), str(owner["tool"]), str(owner["cred_id"])
    stored = await svc.credentials.get(user_id, tool, cred_id)
    if stored is not None and "revoked_at" not in stored:
        await svc.credentials.put(user_id, tool, cred_id, {**stored, "revoked_at": record.revoked_at,
                                                           "revoked_reason": record.reason.value})
    return json_response({**record.to_dict(), "user_id": user_id, "tool": tool})


ROUTES: list[Route] = [
    Route("/pki/ca.pem", ca_certificate, methods=["GET"]),
    Route("/pki/crl", crl, methods=["GET"]),
    Route("/admin/users/{user_id}/hardware-cert", issue_hardware_cert, methods=["POST"]),
    Route("/admin/certificates/{serial}/revoke", revoke_certificate, methods=["POST"]),
]
