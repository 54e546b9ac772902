"""The Redis client every process makes from its settings."""

from __future__ import annotations

import redis

from supportdesk.core.config import ConfigError, Settings


def make_redis(settings: Settings) -> redis.Redis:
    if not settings.redis_url:
        raise ConfigError({"REDIS_URL": "is required (or run `supportdesk dev`)"})
    return redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )
