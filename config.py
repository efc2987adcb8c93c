"""Settings for every environment; each key is read from the env var of the same name.

Values are read once, at import. A value that cannot be parsed stops the process at
start-up with a message naming the variable (``ConfigError``). Tests override
settings through ``create_app(TestingConfig, overrides={...})``.
"""

from __future__ import annotations

import os

__all__ = ["Config", "ConfigError", "get_config", "validate"]


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def _str(name: str, default: str) -> str:
    return os.environ.get(name, default).strip()


def _number(name: str, default: float, cast: type, low: float, high: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return cast(default)
    try:
        value = cast(raw)
    except ValueError:
        kind = "an integer" if cast is int else "a number"
        raise ConfigError(f"{name}={raw!r} is not {kind}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be between {low:g} and {high:g}")
    return value


def _int(name: str, default: int, low: int = 0, high: int = 2**31) -> int:
    return int(_number(name, default, int, low, high))


def _float(name: str, default: float, low: float = 0.0, high: float = 1e6) -> float:
    return float(_number(name, default, float, low, high))


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true or false)")


def _list(name: str, default: str = "") -> tuple[str, ...]:
    raw = os.environ.get(name, default)
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(name, default)
    if value.upper() not in {c.upper() for c in choices}:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def _url(name: str, default: str) -> str:
    value = _str(name, default).rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name}={value!r} must start with http:// or https://")
    return value


CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36"
)
CHROME_SEC_CH_UA = '"Not A(Brand";v="8", "Chromium";v="132", "Google Chrome";v="132"'


class Config:
    """Every setting with its default (env var name == key)."""

    JIMENG_ENV = _choice(
        "JIMENG_ENV", "production", ("production", "development", "testing")
    )

    # --- server (gunicorn.conf.py reads these too) ---
    HOST = _str("HOST", "0.0.0.0")
    PORT = _int("PORT", 8000, 1, 65535)
    GUNICORN_WORKERS = _int("GUNICORN_WORKERS", 2, 1, 64)
    GUNICORN_WORKER_CONNECTIONS = _int("GUNICORN_WORKER_CONNECTIONS", 2500, 10, 100000)
    GUNICORN_BACKLOG = _int("GUNICORN_BACKLOG", 4096, 64, 65535)
    # proxies whose X-Forwarded-* headers gunicorn trusts (nginx on the same host)
    FORWARDED_ALLOW_IPS = _str("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
    LOG_LEVEL = _choice(
        "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    )
    # requests larger than this are refused with 413 before they are read
    MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 1024 * 1024, 1024, 1024**3)
    CORS_ORIGINS = _list("CORS_ORIGINS", "*")  # read by flask-cors
    CORS_MAX_AGE = _int("CORS_MAX_AGE", 86400)

    # --- jimeng protocol constants (current browser values, protocol doc §1.7) ---
    JIMENG_BASE_URL = _url("JIMENG_BASE_URL", "https://jimeng.jianying.com")
    JIMENG_APP_ID = _str("JIMENG_APP_ID", "513695")
    JIMENG_APP_VERSION = _str("JIMENG_APP_VERSION", "8.4.0")
    JIMENG_PLATFORM_CODE = _str("JIMENG_PLATFORM_CODE", "7")
    JIMENG_SIGN_PREFIX = _str("JIMENG_SIGN_PREFIX", "9e2c")
    JIMENG_SIGN_SUFFIX = _str("JIMENG_SIGN_SUFFIX", "11ac")
    JIMENG_SIGN_VERSION = _str("JIMENG_SIGN_VERSION", "1")
    JIMENG_REGION = _str("JIMENG_REGION", "cn")
    JIMENG_DA_VERSION = _str("JIMENG_DA_VERSION", "3.3.9")
    JIMENG_WEB_VERSION = _str("JIMENG_WEB_VERSION", "7.5.0")
    JIMENG_OS = _str("JIMENG_OS", "windows")
    JIMENG_AIGC_FEATURES = _str("JIMENG_AIGC_FEATURES", "app_lip_sync")
    JIMENG_APP_SDK_VERSION = _str("JIMENG_APP_SDK_VERSION", "48.0.0")
    JIMENG_LANG = _str("JIMENG_LANG", "zh-Hans")
    JIMENG_LOC = _str("JIMENG_LOC", "cn")
    JIMENG_USER_AGENT = _str("JIMENG_USER_AGENT", CHROME_UA)
    JIMENG_SEC_CH_UA = _str("JIMENG_SEC_CH_UA", CHROME_SEC_CH_UA)
    # draft_content versions: 4.x/5.x models use the current one, 3.x and older
    # the one the original used (protocol doc §4.2)
    JIMENG_DRAFT_VERSION = _str("JIMENG_DRAFT_VERSION", "3.3.9")
    JIMENG_LEGACY_DRAFT_VERSION = _str("JIMENG_LEGACY_DRAFT_VERSION", "3.0.2")
    JIMENG_DRAFT_MIN_VERSION = _str("JIMENG_DRAFT_MIN_VERSION", "3.0.2")

    # --- upstream behaviour ---
    UPSTREAM_CONNECT_TIMEOUT = _float("UPSTREAM_CONNECT_TIMEOUT", 3.05, 0.1, 60)
    UPSTREAM_READ_TIMEOUT = _float("UPSTREAM_READ_TIMEOUT", 20, 0.1, 600)
    UPSTREAM_RETRIES = _int("UPSTREAM_RETRIES", 3, 0, 10)
    UPSTREAM_RETRY_BACKOFF = _float("UPSTREAM_RETRY_BACKOFF", 0.5, 0, 30)
    UPSTREAM_MAX_SESSIONS = _int("UPSTREAM_MAX_SESSIONS", 1024, 1, 100000)
    UPSTREAM_POOL_MAXSIZE = _int("UPSTREAM_POOL_MAXSIZE", 1000, 1, 100000)
    POLL_FIRST_DELAY = _float("POLL_FIRST_DELAY", 3.0, 0, 600)
    POLL_INTERVAL = _float("POLL_INTERVAL", 0.8, 0, 600)
    POLL_MAX_INTERVAL = _float("POLL_MAX_INTERVAL", 5.0, 0, 600)
    POLL_ADAPTIVE = _bool("POLL_ADAPTIVE", True)
    GENERATION_TIMEOUT = _float("GENERATION_TIMEOUT", 600, 1, 86400)
    # seconds in-flight requests get after SIGTERM: by default the generation
    # deadline plus a margin, so no generation is cut off by a restart
    GUNICORN_GRACEFUL_TIMEOUT = _int(
        "GUNICORN_GRACEFUL_TIMEOUT", int(GENERATION_TIMEOUT) + 30, 1, 86400
    )
    TOKEN_COOLDOWN = _float("TOKEN_COOLDOWN", 600, 0, 86400)
    MAX_TOKENS_PER_REQUEST = _int("MAX_TOKENS_PER_REQUEST", 64, 1, 10000)

    # --- API surface ---
    DEFAULT_MODEL = _str("DEFAULT_MODEL", "jimeng-3.0")
    MAX_PROMPT_LENGTH = _int("MAX_PROMPT_LENGTH", 4000, 1, 100000)
    SSE_KEEPALIVE_INTERVAL = _float("SSE_KEEPALIVE_INTERVAL", 10, 0.05, 600)
    IMAGE_FETCH_TIMEOUT = _float("IMAGE_FETCH_TIMEOUT", 30, 0.1, 600)
    IMAGE_FETCH_MAX_BYTES = _int("IMAGE_FETCH_MAX_BYTES", 20 * 1024 * 1024, 1024)
    IMAGE_FETCH_ALLOWED_HOSTS = _list(
        "IMAGE_FETCH_ALLOWED_HOSTS",
        "byteimg.com,jianying.com,jimeng.com,capcut.com,capcutapi.com,vlabvod.com",
    )

    # --- pooled mode: the server holds the sessions, clients use API keys ---
    JIMENG_SESSION_IDS = _list("JIMENG_SESSION_IDS")
    JIMENG_SESSION_FILE = _str("JIMENG_SESSION_FILE", "")
    API_KEYS = _list("API_KEYS")
    ALLOW_OPEN_POOL = _bool("ALLOW_OPEN_POOL", False)
    POOL_MAX_CONCURRENCY = _int("POOL_MAX_CONCURRENCY", 2, 1, 1000)
    CREDIT_CACHE_TTL = _float("CREDIT_CACHE_TTL", 300, 0, 86400)

    # --- observability ---
    METRICS_TOKEN = _str("METRICS_TOKEN", "")


class DevelopmentConfig(Config):
    """Local runs: debug logging."""

    LOG_LEVEL = "DEBUG"


class TestingConfig(Config):
    """Unit tests: a fake upstream host and no waiting between polls."""

    TESTING = True
    JIMENG_BASE_URL = "https://jimeng.test"
    JIMENG_SESSION_IDS = ()
    JIMENG_SESSION_FILE = ""
    API_KEYS = ()
    POLL_FIRST_DELAY = 0.0
    POLL_INTERVAL = 0.0
    POLL_ADAPTIVE = False
    UPSTREAM_RETRY_BACKOFF = 0.0
    SSE_KEEPALIVE_INTERVAL = 10.0


class ProductionConfig(Config):
    """Deployed service: the defaults."""


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def get_config(name: str | None = None) -> type[Config]:
    """Return the class named by *name*, else by ``$JIMENG_ENV``."""
    return CONFIGS[(name or Config.JIMENG_ENV).lower()]


def validate(settings: dict) -> None:
    """Refuse combinations that are valid one by one but unsafe together."""
    if settings["POLL_INTERVAL"] > settings["POLL_MAX_INTERVAL"]:
        raise ConfigError("POLL_INTERVAL must not exceed POLL_MAX_INTERVAL")
    pooled = settings["JIMENG_SESSION_IDS"] or settings["JIMENG_SESSION_FILE"]
    if pooled and not settings["API_KEYS"] and not settings["ALLOW_OPEN_POOL"]:
        raise ConfigError(
            "JIMENG_SESSION_IDS/JIMENG_SESSION_FILE is set but API_KEYS is empty: "
            "anyone could spend the pooled accounts' credits. Set API_KEYS "
            "(or ALLOW_OPEN_POOL=true if that is really what you want)."
        )
