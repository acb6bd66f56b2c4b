"""One APIRouter per area; ``sync.central.app`` includes them (the dashboard adds its own)."""
