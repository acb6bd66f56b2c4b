"""GET /api/v1/config: what a kiosk needs to know about its site."""

from __future__ import annotations

from fastapi import APIRouter

from kiosk.shared.timeutil import to_rfc3339, utc_now
from kiosk.shared.wire import PROTOCOL_VERSION
from sync.central.schemas import KioskConfig
from sync.central.security import DeviceDep, StoreDep
from sync.central.sites import ensure_site

router = APIRouter(prefix="/api/v1", tags=["sync"])


@router.get(
    "/config",
    response_model=KioskConfig,
    summary="The calling kiosk's site settings",
    responses={
        401: {"description": "Missing, unknown or revoked device token."},
        429: {"description": "Too many refused tokens from this address; see Retry-After."},
    },
)
def get_config(device: DeviceDep, store: StoreDep) -> dict:
    site = ensure_site(store.db, device.site)
    return {
        **site.as_dict(),
        "site": site.name,
        # The site's languages (``site set --languages``), its default first; a kiosk from
        # before the language row reads the key and keeps showing English.
        "languages": list(site.languages),
        "protocol_version": PROTOCOL_VERSION,
        "device_id": device.id,
        "device_name": device.name,
        "server_time": to_rfc3339(utc_now()),
    }
