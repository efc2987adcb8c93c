"""JimengClient: the Jimeng endpoints this server calls.

Submitting a generation (once: an ambiguous submit is reported, not repeated),
finding submissions and polling records (with the HQ file of finished videos),
the model table, credits, the daily grant and the login check. Sending,
signing, retrying and unwrapping each call is ``transport.py``'s business; what
an error answer means is ``failures.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..catalog import require_key_on_site
from ..errors import APIError, UpstreamError
from ..logs import token_id
from .drafts import Draft, generate_body, history_body, submit_lookup_body
from .endpoints import (
    ACCOUNT_INFO,
    COMMON_CONFIG,
    CREDIT_RECEIVE,
    GENERATE,
    HISTORY,
    LOCAL_ITEMS,
    USER_CREDIT,
)
from .failures import AmbiguousSubmitError, TransientError
from .records import Record, history_id_of, parse_record
from .transport import Transport
from .video import video_submit_error
from .video_drafts import VIDEO_REFERER_PATH, VideoDraft, video_body
from .video_items import hq_urls, local_items_body

log = logging.getLogger(__name__)


class JimengClient(Transport):
    """Signed, retrying calls to the Jimeng web endpoints."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self._commerce = {r: s.commerce_headers() for r, s in self.sites.items()}

    def check_model(self, token: str, model_key: str) -> None:
        """Refuse (400 ``model_not_available``, naming the models the account's
        site has) a model the site of *token* does not offer (§7)."""
        require_key_on_site(model_key, self.site_of(token).region)

    # --- endpoints ---

    def submit(
        self,
        token: str,
        draft: Draft | VideoDraft,
        submit_id: str,
        *,
        deadline: float | None = None,
    ) -> str:
        """Send a generation once and return its history record id.

        Raises ``AmbiguousSubmitError`` when the call may have reached Jimeng
        (a timeout, a reset, an error page, or an answer without a record id):
        the caller then looks the submission up by *submit_id*.
        """
        site = self.site_of(token)
        self.check_model(token, draft.model_key)
        headers = None
        if isinstance(draft, VideoDraft):
            body = video_body(draft, submit_id, int(site.app_id))
            headers = {"Referer": site.origin + VIDEO_REFERER_PATH}
        else:
            body = generate_body(draft, submit_id, int(site.app_id))
        try:
            data = self._call(
                GENERATE, token, body, safe=False, deadline=deadline, headers=headers
            )
        except TransientError as exc:  # retries gave up on a never-sent call
            raise exc.final() from exc
        except APIError as exc:  # a video's refusals say what they mean for video
            if isinstance(draft, VideoDraft):
                raise video_submit_error(exc, draft) from exc
            raise
        aigc = (data or {}).get("aigc_data") if isinstance(data, dict) else None
        history_id = (aigc or {}).get("history_record_id")
        if not history_id:
            raise AmbiguousSubmitError(
                "Jimeng accepted the request but returned no record id.",
                answered=True,
            )
        return str(history_id)

    def find_submissions(
        self, token: str, submit_ids: list[str], *, deadline: float | None = None
    ) -> dict[str, str]:
        """Return ``{submit_id: history_id}`` for those Jimeng accepted."""
        body = submit_lookup_body(submit_ids)
        data = self._call(HISTORY, token, body, deadline=deadline)
        found = {}
        for submit_id in submit_ids:
            raw = data.get(submit_id) if isinstance(data, dict) else None
            history_id = history_id_of(raw) if isinstance(raw, dict) else None
            if history_id:
                found[submit_id] = history_id
        return found

    def history(
        self, token: str, history_ids: list[str], *, deadline: float | None = None
    ) -> dict[str, Record]:
        """Poll several records of one account in one call; a record Jimeng does
        not know (yet) is missing from the answer."""
        data = self._call(
            HISTORY,
            token,
            history_body(history_ids, int(self.site_of(token).app_id)),
            headers={"X-Platform": "pc"},
            deadline=deadline,
        )
        records = {}
        for history_id in history_ids:
            raw = data.get(history_id) if isinstance(data, dict) else None
            if isinstance(raw, dict):
                records[history_id] = parse_record(raw)
        if self.config.get("VIDEO_HQ", True):
            records = self._with_hq_videos(token, records)
        return records

    def _with_hq_videos(
        self, token: str, records: dict[str, Record]
    ) -> dict[str, Record]:
        """Finished videos with their download file (``get_local_item_list``,
        §6.3) where the account is entitled to it; the record's URL otherwise."""
        done = {h: r for h, r in records.items() if r.done and r.video and r.urls}
        ids = [i for r in done.values() for i in r.item_ids if i]
        if not ids:
            return records
        try:
            found = hq_urls(self._call(LOCAL_ITEMS, token, local_items_body(ids)))
        except APIError as exc:
            log.info("no HQ video for account %s: %s", token_id(token), exc.message)
            return records
        for history_id, record in done.items():
            pairs = zip(record.item_ids, record.urls, strict=True)
            urls = [found.get(i) or u for i, u in pairs]
            records[history_id] = replace(record, urls=urls)
        return records

    def common_config(self, token: str) -> Any:
        """The site's model capability table, as the web client reads it."""
        body = b'{"is_client_filter":false,"need_beta_model":true}'
        return self._call(COMMON_CONFIG, token, body)

    def credits(self, token: str) -> dict[str, int]:
        """Return the account's credit balance (§3.1)."""
        commerce = self._commerce[self.site_of(token).region]
        data = self._call(USER_CREDIT, token, b"{}", headers=commerce)
        credit = (data or {}).get("credit") if isinstance(data, dict) else None
        if not isinstance(credit, dict):
            raise UpstreamError("Jimeng returned no credit information.")
        points = {
            "giftCredit": int(credit.get("gift_credit") or 0),
            "purchaseCredit": int(credit.get("purchase_credit") or 0),
            "vipCredit": int(credit.get("vip_credit") or 0),
        }
        points["totalCredit"] = sum(points.values())
        return points

    def receive_credits(self, token: str) -> dict[str, Any]:
        """Claim the daily credit grant (§3.2); raises if Jimeng refuses."""
        body = b'{"time_zone":"Asia/Shanghai"}'
        commerce = self._commerce[self.site_of(token).region]
        data = self._call(CREDIT_RECEIVE, token, body, headers=commerce)
        return data if isinstance(data, dict) else {}

    def is_live(self, token: str) -> bool:
        """Return whether the session is logged in (passport, §3.5)."""
        body = self._call(ACCOUNT_INFO, token, None)
        data = body.get("data")
        return isinstance(data, dict) and bool(data.get("user_id"))
