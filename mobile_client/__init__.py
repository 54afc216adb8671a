"""The reference mobile client used by the demo, the tests and the benchmarks."""

from mobile_client.client import ClientError, MobileClient
from mobile_client.transport import AiohttpTransport, ApiResponse, HttpxTransport, Transport

__all__ = ["AiohttpTransport", "ApiResponse", "ClientError", "HttpxTransport", "MobileClient", "Transport"]
from mobile_client.encryption import PayloadCipher, PayloadCipherError  # noqa: E402

__all__ += ["PayloadCipher", "PayloadCipherError"]
