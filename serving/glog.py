"""gunicorn's logger with the secret filter on its handlers (kept across reloads)."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from . import redact


class SafeLogger(Logger):
    """Filter every gunicorn log line through ``redact.SecretFilter``.

    gunicorn recreates its handlers on start, SIGHUP and SIGUSR1, so the filter is
    put back after each ``setup``/``reopen_files``. The filter masks secrets
    (``?api_key=…``, ``Bearer …``, cookies) and escapes control characters, in
    the access log and the error log alike.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self._install()

    def reopen_files(self) -> None:
        super().reopen_files()
        self._install()

    def _install(self) -> None:
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if not any(isinstance(f, redact.SecretFilter) for f in handler.filters):
                    handler.addFilter(redact.SecretFilter(handler.formatter))
