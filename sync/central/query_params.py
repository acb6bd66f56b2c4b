"""The public API refuses query parameters it does not know (422), as its bodies refuse unknown
fields: a misspelt ``form=`` must not silently mean "the default range", and nothing extra
(a patient's name, say) is ever accepted and ignored.

What a route knows is what its OpenAPI description lists, the same document clients read. A
value with a NUL character is refused too (422): no stored text can hold one.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

_known_by_operation: dict[tuple[str, str], frozenset[str]] = {}


def _known(request: Request, path: str) -> frozenset[str]:
    key = (path, request.method.lower())
    known = _known_by_operation.get(key)
    if known is None:
        operation = request.app.openapi()["paths"].get(path, {}).get(key[1], {})
        known = frozenset(
            param["name"] for param in operation.get("parameters", []) if param["in"] == "query"
        )
        _known_by_operation[key] = known
    return known


def check_query_parameters(request: Request) -> None:
    """422 for a query parameter the route does not take. Called by the token checks once the
    token is accepted (a missing or wrong token is a 401 first, whatever the query string),
    and as a dependency on routes without a token."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            # No stored text can hold one (PostgreSQL refuses it outright): the same answer on
            # either engine, rather than an error on one and an empty result on the other.
            raise HTTPException(
                422, f"Query parameter {name!r} contains a NUL character (0x00); remove it.")
    known = _known(request, route.path)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) if known else "no query parameters"
        raise HTTPException(
            422, f"Unknown query parameter {unknown[0]!r}; this route takes {takes}."
        )


async def refuse_unknown_query_parameters(request: Request) -> None:
    check_query_parameters(request)
