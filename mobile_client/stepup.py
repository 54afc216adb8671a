"""The client side of step-up: run a challenge's tools, then repeat the request
with the approval (``X-Approval-Token``). See docs/client-protocol.md."""

from __future__ import annotations

from mobile_client.client import MobileClient
from mobile_client.transport import ApiResponse

__all__ = ["begin_tool", "complete_tool", "with_approval", "enrol_begin", "enrol_complete",
           "list_tools", "remove_tool"]


async def begin_tool(client: MobileClient, challenge_id: str, tool: str,
                     body: dict[str, object] | None = None) -> ApiResponse:
    return await client.call("POST", f"/auth/challenges/{challenge_id}/{tool}/begin", body or {})


async def complete_tool(client: MobileClient, challenge_id: str, tool: str,
                        body: dict[str, object]) -> ApiResponse:
    return await client.call("POST", f"/auth/challenges/{challenge_id}/{tool}/complete", body)


def with_approval(headers: dict[str, str] | None, approval_token: str) -> dict[str, str]:
    return {**(headers or {}), "X-Approval-Token": approval_token}


async def list_tools(client: MobileClient) -> ApiResponse:
    return await client.call("GET", "/auth/tools")


async def enrol_begin(client: MobileClient, tool: str, body: dict[str, object] | None = None, *,
                      approval: str | None = None) -> ApiResponse:
    headers = with_approval(None, approval) if approval else None
    return await client.call("POST", f"/auth/tools/{tool}/enrol/begin", body or {}, headers=headers)


async def enrol_complete(client: MobileClient, tool: str, body: dict[str, object]) -> ApiResponse:
    return await client.call("POST", f"/auth/tools/{tool}/enrol/complete", body)


async def remove_tool(client: MobileClient, tool: str, cred_id: str, *,
                      approval: str | None = None) -> ApiResponse:
    headers = with_approval(None, approval) if approval else None
    return await client.call("DELETE", f"/auth/tools/{tool}/{cred_id}", headers=headers)
