"""The reference mobile client used by the demo, the tests and the benchmarks."""

from mobile_client.client import ClientError, MobileClient
from mobile_client.transport import AiohttpTransport, ApiResponse, HttpxTransport, Transport

__all__ = ["AiohttpTransport", "ApiResponse", "ClientError", "HttpxTransport", "MobileClient", "Transport"]
