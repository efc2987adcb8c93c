"""Per-app service objects, kept in ``app.extensions`` (not module globals),
and one accessor for each."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from .accounts import Accounts
from .fetcher import SafeFetcher
from .generations import Generations
from .jobs import Jobs
from .limits import init_rate_limits
from .model_list import ModelList
from .poller import Poller
from .results import Renderer
from .roster import Roster, pooled, reload_on_sighup
from .sealing import Sealer, load_secret
from .store import Store, StoreError, open_store
from .submission import Submitter
from .tasks import task_object
from .upstream import JimengClient
from .webhooks import Webhooks


def init_services(app: Flask) -> None:
    """Create the store, the upstream client and the services for *app*."""
    config = app.config
    store = open_store(config["STORE_URL"], config["DATA_DIR"])
    client = JimengClient(config)
    fetcher = SafeFetcher(config)
    sealer = Sealer(load_secret(config["STORE_SECRET"], config["DATA_DIR"]))
    roster = _roster(config, store, sealer) if pooled(config) else None
    accounts = Accounts(store, client, config, pooled=roster is not None)
    jobs = Jobs(store, config)
    generations: Generations
    submitter = Submitter(
        jobs, accounts, client, sealer, lambda job: generations.tokens_for(job), config
    )
    renderer = Renderer(
        lambda urls, token=None: [
            f.content for f in fetcher.fetch_all(urls, proxy=client.proxy_url(token))
        ]
    )
    poller = Poller(store, jobs, submitter, client, renderer, sealer, config)
    generations = Generations(
        store, jobs, accounts, submitter, poller, sealer, roster, renderer, config
    )
    webhooks = Webhooks(config, fetcher)
    jobs.on_finish.append(lambda job: _notify(webhooks, job))
    model_list = ModelList(client, store, config)
    submitter.on_retired = model_list.retire
    limiter = init_rate_limits(app, store)
    app.extensions["jimeng"] = {
        "limiter": limiter,
        "store": store,
        "client": client,
        "fetcher": fetcher,
        "roster": roster,
        "accounts": accounts,
        "jobs": jobs,
        "generations": generations,
        "poller": poller,
        "models": model_list,
    }


def _roster(config: Any, store: Store, sealer: Sealer) -> Roster:
    """The pool, with the last good session file kept in the store."""

    def remember(tokens: list[str]) -> None:
        try:
            store.set_key("roster:last-good", sealer.seal(tokens))
        except StoreError:
            pass

    def recall() -> list[str]:
        try:
            return sealer.unseal(store.get_key("roster:last-good"))
        except StoreError:
            return []

    roster = Roster(config, remember, recall)
    if roster.path:
        reload_on_sighup(roster)
    return roster


def _notify(webhooks: Webhooks, job: dict[str, Any]) -> None:
    url = job.get("callback_url") or webhooks.default_url
    if url:
        webhooks.deliver(url, task_object(job))


def _service(name: str) -> Any:
    return current_app.extensions["jimeng"][name]


def get_store() -> Store:
    return _service("store")


def get_client() -> JimengClient:
    return _service("client")


def get_fetcher() -> SafeFetcher:
    return _service("fetcher")


def get_roster() -> Roster | None:
    return _service("roster")


def get_accounts() -> Accounts:
    return _service("accounts")


def get_jobs() -> Jobs:
    return _service("jobs")


def get_generations() -> Generations:
    return _service("generations")


def get_limiter() -> Any:
    return _service("limiter")


def get_model_list() -> ModelList:
    return _service("models")


def start_background(app: Flask) -> None:
    """Start the poller now (gunicorn workers: pending jobs resume at boot)."""
    app.extensions["jimeng"]["poller"].start()
