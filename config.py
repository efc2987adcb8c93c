"""Settings for every environment; each key is read from the env var of the same name.

Values are read once, at import. A value that cannot be parsed stops the process at
start-up with a message naming the variable (``ConfigError``). Tests override
settings through ``create_app(TestingConfig, overrides={...})``.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

__all__ = [
    "Config",
    "ConfigError",
    "get_config",
    "parse_cookie_template",
    "parse_quality_tiers",
    "parse_size_table",
    "validate",
]


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


DEFAULT_COOKIES = (
    "_tea_web_id={web_id}; is_staff_user=false; uid_tt={user_id}; "
    "uid_tt_ss={user_id}; sid_tt={session}; sessionid={session}; "
    "sessionid_ss={session}"
)
_SIZE_ENTRY = re.compile(r"(\d{1,2}:\d{1,2})/([124]k)=(\d{3,4})x(\d{3,4})", re.ASCII)
_COOKIE_ENTRY = re.compile(r"([A-Za-z0-9_.-]{1,64})=([\x21-\x2b\x2d-\x3a\x3c-\x7e]*)")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
TIERS = ("1k", "2k", "4k")
COOKIE_FIELDS = ("session", "web_id", "user_id")  # the placeholders


@lru_cache(maxsize=8)
def parse_size_table(
    entries: tuple[str, ...],
) -> dict[tuple[str, str], tuple[int, int]]:  # noqa: E501
    """``JIMENG_SIZE_TABLE`` as {(ratio, tier): (width, height)}."""
    table = {}
    for entry in entries:
        match = _SIZE_ENTRY.fullmatch(entry.strip().lower())
        if not match:
            raise ConfigError(
                f"JIMENG_SIZE_TABLE entry {entry!r} is not ratio/tier=WIDTHxHEIGHT "
                "(e.g. 16:9/2k=2560x1440)"
            )
        ratio, tier, width, height = match.groups()
        if not all(256 <= int(side) <= 8192 for side in (width, height)):
            raise ConfigError(f"JIMENG_SIZE_TABLE entry {entry!r}: sides are 256-8192")
        table[ratio, tier] = (int(width), int(height))
    return table


@lru_cache(maxsize=8)
def parse_quality_tiers(text: str) -> dict[str, str]:
    """``IMAGE_QUALITY_TIERS`` as ``{"low": "1k", …}``."""
    tiers: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, tier = part.lower().partition(":")
        if not sep or name not in ("low", "medium", "high") or tier not in TIERS:
            raise ConfigError(
                f"IMAGE_QUALITY_TIERS={text!r}: use e.g. 'low:1k,medium:2k,high:4k'"
            )
        tiers[name] = tier
    return tiers


@lru_cache(maxsize=8)
def parse_cookie_template(template: str) -> tuple[tuple[str, str], ...]:
    """``JIMENG_COOKIES`` as (name, value template) pairs."""
    pairs = []
    for part in filter(None, (p.strip() for p in template.split(";"))):
        match = _COOKIE_ENTRY.fullmatch(part)
        fields = _PLACEHOLDER.findall(part)
        if not match or any(f not in COOKIE_FIELDS for f in fields):
            raise ConfigError(
                f"JIMENG_COOKIES: {part!r} is not name=value (placeholders: "
                "{session}, {web_id}, {user_id})"
            )
        pairs.append(tuple(part.split("=", 1)))
    if not any("{session}" in value for _, value in pairs):
        raise ConfigError("JIMENG_COOKIES must send the session id ({session})")
    return tuple(pairs)  # type: ignore[arg-type]


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
    # Origin/Referer the site's browser sends, whatever host JIMENG_BASE_URL names
    JIMENG_SITE_ORIGIN = _url("JIMENG_SITE_ORIGIN", "https://jimeng.jianying.com")
    JIMENG_APP_ID = _str("JIMENG_APP_ID", "513695")
    JIMENG_APP_VERSION = _str("JIMENG_APP_VERSION", "8.4.0")
    JIMENG_PLATFORM_CODE = _str("JIMENG_PLATFORM_CODE", "7")
    JIMENG_SIGN_PREFIX = _str("JIMENG_SIGN_PREFIX", "9e2c")
    JIMENG_SIGN_SUFFIX = _str("JIMENG_SIGN_SUFFIX", "11ac")
    JIMENG_SIGN_VERSION = _str("JIMENG_SIGN_VERSION", "1")
    JIMENG_REGION = _str("JIMENG_REGION", "cn")
    JIMENG_DA_VERSION = _str("JIMENG_DA_VERSION", "3.3.28")
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
    # per-model draft versions, e.g. "jimeng-5.0=3.3.20,jimeng-4.7=3.3.12"
    JIMENG_DRAFT_VERSIONS = _list("JIMENG_DRAFT_VERSIONS")
    # pixel sizes per ratio and tier, over the built-in table (jimeng_api/sizes.py),
    # e.g. "3:4/1k=768x1024,21:9/2k=3024x1296"
    JIMENG_SIZE_TABLE = _list("JIMENG_SIZE_TABLE")
    # the cookies sent with every call; {session} is the account's session id,
    # {web_id} and {user_id} its stable derived ids (the webId query value is
    # the _tea_web_id cookie). A pasted cookie string's own cookies win.
    JIMENG_COOKIES = _str("JIMENG_COOKIES", DEFAULT_COOKIES)

    # --- upstream behaviour ---
    UPSTREAM_CONNECT_TIMEOUT = _float("UPSTREAM_CONNECT_TIMEOUT", 3.05, 0.1, 60)
    UPSTREAM_READ_TIMEOUT = _float("UPSTREAM_READ_TIMEOUT", 45, 0.1, 600)
    UPSTREAM_RETRIES = _int("UPSTREAM_RETRIES", 3, 0, 10)
    UPSTREAM_RETRY_BACKOFF = _float("UPSTREAM_RETRY_BACKOFF", 0.5, 0, 30)
    UPSTREAM_MAX_SESSIONS = _int("UPSTREAM_MAX_SESSIONS", 1024, 1, 100000)
    UPSTREAM_POOL_MAXSIZE = _int("UPSTREAM_POOL_MAXSIZE", 1000, 1, 100000)
    # the poll schedule (jimeng_api/schedule.py explains each)
    POLL_FIRST_DELAY = _float("POLL_FIRST_DELAY", 3.0, 0, 600)
    POLL_EXPECTED_SECONDS = _float("POLL_EXPECTED_SECONDS", 30, 1, 3600)
    POLL_FINISHING_INTERVAL = _float("POLL_FINISHING_INTERVAL", 1.0, 0.05, 600)
    POLL_QUEUED_INTERVAL = _float("POLL_QUEUED_INTERVAL", 15, 0.05, 600)
    POLL_MAX_INTERVAL = _float("POLL_MAX_INTERVAL", 30, 0.05, 3600)
    POLL_APPROACH = _float("POLL_APPROACH", 0.4, 0.05, 1)
    POLL_DENSE_WINDOW = _float("POLL_DENSE_WINDOW", 8, 0, 600)
    # the least time between two polls of one account, across every worker
    POLL_MIN_INTERVAL = _float("POLL_MIN_INTERVAL", 1.0, 0, 600)
    # images that stop growing for this long are delivered as a partial result
    STALL_SECONDS = _float("STALL_SECONDS", 180, 1, 86400)
    # a job's overall deadline (peak-hour queues take 5-20 minutes)
    GENERATION_TIMEOUT = _float("GENERATION_TIMEOUT", 1800, 1, 86400)
    # how long a synchronous request waits; the job goes on after that
    SYNC_WAIT_TIMEOUT = _float("SYNC_WAIT_TIMEOUT", 600, 1, 86400)
    # seconds in-flight requests get after SIGTERM (jobs survive a restart)
    GUNICORN_GRACEFUL_TIMEOUT = _int(
        "GUNICORN_GRACEFUL_TIMEOUT", int(SYNC_WAIT_TIMEOUT) + 30, 1, 86400
    )
    TOKEN_COOLDOWN = _float("TOKEN_COOLDOWN", 600, 0, 86400)
    MAX_TOKENS_PER_REQUEST = _int("MAX_TOKENS_PER_REQUEST", 64, 1, 10000)

    # --- API surface ---
    DEFAULT_MODEL = _str("DEFAULT_MODEL", "jimeng-3.0")
    # videos: the model when a request names none; the download file of
    # get_local_item_list where the account is entitled to it; the MP4 size cap
    DEFAULT_VIDEO_MODEL = _str("DEFAULT_VIDEO_MODEL", "jimeng-video-seedance-2.5")
    VIDEO_HQ = _bool("VIDEO_HQ", True)
    VIDEO_FETCH_MAX_BYTES = _int(
        "VIDEO_FETCH_MAX_BYTES", 256 * 1024 * 1024, 1024 * 1024, 2**34
    )
    # seconds the site's own model list is trusted before it is read again
    MODEL_LIST_TTL = _float("MODEL_LIST_TTL", 600, 0, 86400)
    MAX_PROMPT_LENGTH = _int("MAX_PROMPT_LENGTH", 4000, 1, 100000)
    # the chat stream's first chunk says "generating…" (off: streamed and
    # non-streamed content are the same; a request may send "progress": true)
    CHAT_PROGRESS_TEXT = _bool("CHAT_PROGRESS_TEXT", False)
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

    # --- durable jobs: the store ---
    # "" = SQLite in DATA_DIR; redis://host:6379/0 for several hosts
    STORE_URL = _str("STORE_URL", "")
    DATA_DIR = _str("DATA_DIR", "./data")
    # encrypts the tokens kept with jobs; several hosts must share it
    STORE_SECRET = _str("STORE_SECRET", "")
    JOB_TTL = _float("JOB_TTL", 86400, 60, 30 * 86400)
    LEASE_TTL = _float("LEASE_TTL", 15, 1, 600)
    SLOT_TTL = _float("SLOT_TTL", 120, 5, 86400)
    # seconds without work after which a worker's poller stops until the next
    # job (0: never; it also adopts dead workers' jobs, so keep 0 in production)
    POLLER_IDLE_EXIT = _float("POLLER_IDLE_EXIT", 0, 0, 86400)

    # --- rate limits (per minute, on the store: they hold across workers and
    # hosts; 0 = off) ---
    RATE_LIMIT_PER_IP = _int("RATE_LIMIT_PER_IP", 600, 0, 10**7)
    RATE_LIMIT_PER_ACCOUNT = _int("RATE_LIMIT_PER_ACCOUNT", 120, 0, 10**7)
    RATE_LIMIT_TOKEN_CHECK = _int("RATE_LIMIT_TOKEN_CHECK", 20, 0, 10**7)

    # the upstream is the offline simulator (make demo, compose's demo profile):
    # the playground says so and any token works
    DEMO_MODE = _bool("DEMO_MODE", False)

    # --- observability ---
    METRICS_TOKEN = _str("METRICS_TOKEN", "")

    # --- hardening (issue 16) ---
    # slow clients: total seconds for the request head (incl. keep-alive idle) and body
    CLIENT_HEADER_TIMEOUT = _int("CLIENT_HEADER_TIMEOUT", 10, 1, 300)
    CLIENT_BODY_TIMEOUT = _float("CLIENT_BODY_TIMEOUT", 20, 1, 600)
    MAX_CONNECTIONS_PER_IP = _int("MAX_CONNECTIONS_PER_IP", 100, 0, 100000)
    # outbound fetches: hosts (names, IPs or CIDRs) that may resolve to private
    # addresses; the cap on all images of one b64_json response
    FETCH_ALLOW_PRIVATE_HOSTS = _list("FETCH_ALLOW_PRIVATE_HOSTS")
    IMAGE_RESPONSE_MAX_BYTES = _int(
        "IMAGE_RESPONSE_MAX_BYTES", 64 * 1024 * 1024, 1024, 2**40
    )
    # --- image to image (issue 14): reference images and their upload ---
    # each reference (file, data: URI, base64 or URL) at most this many bytes
    REFERENCE_MAX_BYTES = _int("REFERENCE_MAX_BYTES", 20 * 1024 * 1024, 1024, 2**31)
    # re-encoded with the longer side at most this (JPEG; PNG with transparency)
    REFERENCE_MAX_SIDE = _int("REFERENCE_MAX_SIDE", 2048, 64, 8192)
    # the resolution tier OpenAI's quality picks when no size names one
    IMAGE_QUALITY_TIERS = _str("IMAGE_QUALITY_TIERS", "low:1k,medium:2k,high:4k")
    # the CN site's ImageX (Dreamina sites: DREAMINA_*_IMAGEX_URL) and SigV4 region
    JIMENG_IMAGEX_URL = _url("JIMENG_IMAGEX_URL", "https://imagex.bytedanceapi.com")
    JIMENG_IMAGEX_REGION = _str("JIMENG_IMAGEX_REGION", "cn-north-1")
    # the ImageX OpenAPI version of the upload calls (§5.5)
    JIMENG_IMAGEX_API_VERSION = _str("JIMENG_IMAGEX_API_VERSION", "2018-08-01")
    # the blend draft's min_version with 2+ references (§5.4)
    JIMENG_BLEND_MIN_VERSION = _str("JIMENG_BLEND_MIN_VERSION", "3.2.9")
    # the CN site's safety pre-check of uploaded references (algo_proxy)
    JIMENG_IMAGE_CHECK = _bool("JIMENG_IMAGE_CHECK", True)
    WEBHOOK_URL = (
        _url("WEBHOOK_URL", "") if os.environ.get("WEBHOOK_URL", "").strip() else ""
    )
    WEBHOOK_SECRET = _str("WEBHOOK_SECRET", "")
    WEBHOOK_MAX_ATTEMPTS = _int("WEBHOOK_MAX_ATTEMPTS", 5, 1, 20)
    WEBHOOK_RETRY_BACKOFF = _float("WEBHOOK_RETRY_BACKOFF", 2.0, 0, 300)
    WEBHOOK_TIMEOUT = _float("WEBHOOK_TIMEOUT", 10, 0.1, 120)
    WEBHOOK_ALLOW_PRIVATE = _bool("WEBHOOK_ALLOW_PRIVATE", False)

    # --- Dreamina sites and proxies (issue 18) ---
    # a token (or pool line) prefixed us-, hk-, jp- or sg- uses that Dreamina site
    # (protocol doc §7); HK and JP use the SG hosts unless their own are set
    DREAMINA_US_BASE_URL = _url(
        "DREAMINA_US_BASE_URL", "https://dreamina-api.us.capcut.com"
    )
    DREAMINA_US_COMMERCE_URL = _url(
        "DREAMINA_US_COMMERCE_URL", "https://commerce.us.capcut.com"
    )
    DREAMINA_SG_BASE_URL = _url(
        "DREAMINA_SG_BASE_URL", "https://mweb-api-sg.capcut.com"
    )
    DREAMINA_SG_COMMERCE_URL = _url(
        "DREAMINA_SG_COMMERCE_URL", "https://commerce-api-sg.capcut.com"
    )
    DREAMINA_HK_BASE_URL = (
        _url("DREAMINA_HK_BASE_URL", "") if _str("DREAMINA_HK_BASE_URL", "") else ""
    )
    DREAMINA_HK_COMMERCE_URL = (
        _url("DREAMINA_HK_COMMERCE_URL", "")
        if _str("DREAMINA_HK_COMMERCE_URL", "")
        else ""
    )
    DREAMINA_JP_BASE_URL = (
        _url("DREAMINA_JP_BASE_URL", "") if _str("DREAMINA_JP_BASE_URL", "") else ""
    )
    DREAMINA_JP_COMMERCE_URL = (
        _url("DREAMINA_JP_COMMERCE_URL", "")
        if _str("DREAMINA_JP_COMMERCE_URL", "")
        else ""
    )
    # the Dreamina browser client's constants (the CN site's are JIMENG_*)
    DREAMINA_SITE_ORIGIN = _url("DREAMINA_SITE_ORIGIN", "https://dreamina.capcut.com")
    DREAMINA_APP_ID = _str("DREAMINA_APP_ID", "513641")
    DREAMINA_APP_VERSION = _str("DREAMINA_APP_VERSION", "8.4.0")
    DREAMINA_DA_VERSION = _str("DREAMINA_DA_VERSION", "3.3.9")
    DREAMINA_WEB_VERSION = _str("DREAMINA_WEB_VERSION", "7.5.0")
    DREAMINA_US_IMAGEX_URL = _url(
        "DREAMINA_US_IMAGEX_URL", "https://imagex16-normal-us-ttp.capcutapi.us"
    )
    DREAMINA_SG_IMAGEX_URL = _url(
        "DREAMINA_SG_IMAGEX_URL", "https://imagex-normal-sg.capcutapi.com"
    )
    # the ImageX service id when get_upload_token names no space_name
    DREAMINA_SERVICE_ID = _str("DREAMINA_SERVICE_ID", "wopfjsm1ax")
    # the proxy of every account whose token names none: http://[user:pass@]host:port,
    # https://, socks4://, socks4a://, socks5:// or socks5h:// ("" = direct)
    UPSTREAM_PROXY = _str("UPSTREAM_PROXY", "")
    # passthrough mode: may a caller's Bearer name a proxy (proxy@token)? The
    # server would connect wherever it says; pool lines may always
    ALLOW_CLIENT_PROXIES = _bool("ALLOW_CLIENT_PROXIES", False)


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
    STORE_URL = "memory://"
    POLLER_IDLE_EXIT = 3.0
    SYNC_WAIT_TIMEOUT = 60.0  # a hung unit test fails in a minute, not in ten
    RATE_LIMIT_PER_IP = 0
    RATE_LIMIT_PER_ACCOUNT = 0
    RATE_LIMIT_TOKEN_CHECK = 0
    POLL_FIRST_DELAY = 0.0
    POLL_EXPECTED_SECONDS = 1.0
    POLL_FINISHING_INTERVAL = 0.05
    POLL_QUEUED_INTERVAL = 0.05
    POLL_MIN_INTERVAL = 0.0
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
    """Refuse malformed tables and combinations that are valid one by one but
    unsafe together."""
    parse_size_table(tuple(settings["JIMENG_SIZE_TABLE"]))
    parse_cookie_template(settings["JIMENG_COOKIES"])
    parse_quality_tiers(settings["IMAGE_QUALITY_TIERS"])
    if settings["POLL_FINISHING_INTERVAL"] > settings["POLL_MAX_INTERVAL"]:
        raise ConfigError("POLL_FINISHING_INTERVAL must not exceed POLL_MAX_INTERVAL")
    if (
        settings["STORE_URL"].startswith(("redis", "unix"))
        and not settings["STORE_SECRET"]
    ):
        raise ConfigError(
            "STORE_URL names Redis but STORE_SECRET is empty: every host must "
            "share one STORE_SECRET to continue each other's jobs."
        )
    pooled = settings["JIMENG_SESSION_IDS"] or settings["JIMENG_SESSION_FILE"]
    if settings["API_KEYS"] and not pooled:
        raise ConfigError(
            "API_KEYS is set but there is no pool (JIMENG_SESSION_IDS or "
            "JIMENG_SESSION_FILE): in passthrough mode callers send their own "
            "session ids, so the keys would be forwarded to Jimeng as cookies. "
            "Add the pool, or unset API_KEYS."
        )
    if pooled and not settings["API_KEYS"] and not settings["ALLOW_OPEN_POOL"]:
        raise ConfigError(
            "JIMENG_SESSION_IDS/JIMENG_SESSION_FILE is set but API_KEYS is empty: "
            "anyone could spend the pooled accounts' credits. Set API_KEYS "
            "(or ALLOW_OPEN_POOL=true if that is really what you want)."
        )
