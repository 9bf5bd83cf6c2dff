"""Store tests: a real S3 API server (moto, its own venv) for the artifact store's s3:// backend."""

from tests.s3_fixtures import moto_endpoint, s3_url

__all__ = ["moto_endpoint", "s3_url"]
