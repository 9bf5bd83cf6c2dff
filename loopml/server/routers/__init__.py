"""One APIRouter per domain, mounted under /api/v1 by ``create_app``."""
