"""Route policy: which upstream calls exist and what each one means.

A request is forwarded only when its method and path match a row of the
table; everything else gets 404 from the gateway. Money-moving rows say where
the amount, currency, payee and source account sit in the JSON body, so the
gateway and the upstream derive the same canonical transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import orjson

from auth_tools.dynamic_linking import InvalidAmount, Transaction, parse_amount
from gateway.errors import BadRequest

__all__ = ["Action", "MatchedRoute", "RoutePolicy", "Route"]


class Action(StrEnum):
    VIEW_ACCOUNTS = "view_accounts"
    VIEW_HISTORY = "view_history"
    VIEW_PAYEES = "view_payees"
    TRANSFER = "transfer"
    PAY = "pay"
    ADD_PAYEE = "add_payee"
    BIND_DEVICE = "bind_device"
    CHANGE_LIMIT = "change_limit"

    @property
    def moves_money(self) -> bool:
        return self in (Action.TRANSFER, Action.PAY)

    @property
    def is_view(self) -> bool:
        return self.value.startswith("view_")


_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# Path parameters never match "/", "." or ".." (no traversal on the upstream)
# and stay within a conservative alphabet.
_PARAM_PATTERN = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9_.\-]{1,64}"


def _template_regex(template: str, key: str) -> str:
    """``^...$`` for a path template: literal text escaped, each ``{name}`` one segment."""
    from gateway.config import ConfigError

    literals = _PARAM.split(template)[0::2]
    names = _PARAM.findall(template)
    if any("{" in text or "}" in text for text in literals):
        raise ConfigError(key, "path parameters are {name}: lower-case letters, digits and _")
    if len(set(names)) != len(names):
        raise ConfigError(key, "a path parameter appears twice")
    groups = [f"(?P<{name}>{_PARAM_PATTERN})" for name in names] + [""]
    return "^" + "".join(re.escape(text) + group
                         for text, group in zip(literals, groups, strict=True)) + "$"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    template: str
    action: Action
    pattern: re.Pattern[str]
    amount_field: str = ""
    currency_field: str = ""
    payee_field: str = ""
    source_field: str = ""

    def transaction(self, body: bytes) -> Transaction | None:
        """The canonical transaction carried by ``body``, or None for views."""
        if not (self.amount_field or self.payee_field):
            return None
        try:
            doc = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            raise BadRequest("invalid_json", "the request body is not valid JSON") from exc
        if not isinstance(doc, dict):
            raise BadRequest("invalid_json", "the request body must be a JSON object")
        amount = 0
        if self.amount_field:
            raw = doc.get(self.amount_field)
            if raw is None:
                raise BadRequest("missing_field", f"{self.amount_field!r} is required")
            try:
                amount = parse_amount(raw)
            except InvalidAmount as exc:
                raise BadRequest("invalid_amount", f"{self.amount_field!r}: {exc}") from exc
            if amount == 0 and self.action.moves_money:
                raise BadRequest("invalid_amount", f"{self.amount_field!r} must be more than zero")
        currency = doc.get(self.currency_field, "CNY") if self.currency_field else "CNY"
        payee = doc.get(self.payee_field, "") if self.payee_field else ""
        source = doc.get(self.source_field, "") if self.source_field else ""
        for name, value in (("currency", currency), ("payee", payee), ("source", source)):
            if not isinstance(value, str) or len(value) > 64:
                raise BadRequest("invalid_field", f"{name} must be a string of at most 64 characters")
        if self.payee_field and not payee:
            raise BadRequest("missing_field", f"{self.payee_field!r} is required")
        if currency != "CNY":
            raise BadRequest("unsupported_currency", "only CNY is supported")
        return Transaction(action=self.action.value, amount=amount, currency=currency,
                           source=source, payee=payee)


@dataclass(frozen=True, slots=True)
class MatchedRoute:
    route: Route
    params: dict[str, str]


class RoutePolicy:
    """The compiled policy table."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._by_method: dict[str, list[Route]] = {}
        for route in routes:
            self._by_method.setdefault(route.method, []).append(route)

    @classmethod
    def from_config(cls, rows: Iterable[object]) -> RoutePolicy:
        from gateway.config import ConfigError

        routes = []
        for i, row in enumerate(rows):
            key = f"routes[{i}]"
            method = str(row.method).upper()  # type: ignore[attr-defined]
            if method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                raise ConfigError(f"{key}.method", f"unsupported method {method!r}")
            template = row.path  # type: ignore[attr-defined]
            if not template.startswith("/v1/") and template != "/v1":
                raise ConfigError(f"{key}.path", "must start with /v1/ (the proxied prefix)")
            try:
                action = Action(row.action)  # type: ignore[attr-defined]
            except ValueError as exc:
                raise ConfigError(f"{key}.action",
                                  f"unknown action (known: {', '.join(a.value for a in Action)})") from exc
            if action.moves_money and not row.amount_field:  # type: ignore[attr-defined]
                raise ConfigError(f"{key}.amount_field", "money-moving routes must name the amount field")
            regex = _template_regex(template, f"{key}.path")
            routes.append(Route(
                method=method, template=template, action=action, pattern=re.compile(regex),
                amount_field=row.amount_field, currency_field=row.currency_field,  # type: ignore[attr-defined]
                payee_field=row.payee_field, source_field=row.source_field,  # type: ignore[attr-defined]
            ))
        return cls(routes)

    def match(self, method: str, path: str) -> MatchedRoute | None:
        for route in self._by_method.get(method, ()):
            m = route.pattern.match(path)
            if m:
                return MatchedRoute(route, m.groupdict())
        return None
