"""The dashboard's pages refuse a NUL character in the address or in a form field (422), as the
API refuses one in a query string (``sync.central.query_params``): no stored text can hold one.
PostgreSQL refuses it outright, so a form field carrying one was a server error there while
SQLite stored it; now both engines answer alike, before any page reads or writes it. A file
sent where a form takes text (the dashboard's forms take no files) is refused the same way.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def refuse_nul_characters(request: Request) -> None:
    if "\x00" in request.scope.get("path", ""):
        raise HTTPException(422, "The address contains a NUL character (0x00); remove it.")
    if request.method != "POST":
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FORM_TYPES:
        return
    # Parsed once: the page's own Form parameters and request.form() get this same form.
    form = await request.form()
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise HTTPException(422, f"The form field {name!r} is a file; this form takes "
                                     "text only.")
        if "\x00" in value:
            raise HTTPException(422, f"The form field {name!r} contains a NUL character "
                                     "(0x00); remove it.")


FORM_TEXT_CHECKS = [Depends(refuse_nul_characters)]
