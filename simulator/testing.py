"""A small signed client for driving the simulator in tests (not the product client).

It follows the protocol doc (§1.3–1.7, §3, §5.1) directly so tests of the
simulator do not depend on the project's real upstream client.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests

from .sites import SITES
from .wire import compute_sign

AID = "513695"
V30 = "high_aes_general_v30l:general_v3.0_18b"
V50 = "high_aes_general_v50"
FINAL_STATUSES = {10, 30, 40, 50, 100}


def compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _node(**fields: Any) -> dict[str, Any]:
    return {"type": "", "id": str(uuid.uuid1()), **fields}


def draft_v1(
    prompt: str,
    model: str = V30,
    width: int = 1024,
    height: int = 1024,
    sample_strength: float = 0.5,
) -> dict[str, Any]:
    """The [O] draft of §3.3 (version 3.0.2, no gen_option)."""
    comp = str(uuid.uuid1())
    core = _node(
        model=model,
        prompt=prompt,
        negative_prompt="",
        seed=2512345678,
        sample_strength=sample_strength,
        image_ratio=1,
        large_image_info=_node(height=height, width=width),
    )
    generate = _node(core_param=core, history_option=_node())
    return {
        "type": "draft",
        "id": str(uuid.uuid1()),
        "min_version": "3.0.2",
        "is_from_tsn": True,
        "version": "3.0.2",
        "main_component_id": comp,
        "component_list": [
            {
                "type": "image_base_component",
                "id": comp,
                "min_version": "3.0.2",
                "generate_type": "generate",
                "aigc_mode": "workbench",
                "abilities": _node(generate=generate),
            }
        ],
    }


def draft_v2(
    prompt: str,
    model: str = V50,
    width: int = 2048,
    height: int = 2048,
    gen_count: int | None = None,
    inside_generate: bool = False,
) -> dict[str, Any]:
    """The 2025-09+ draft of §5.1 (gen_option sibling of generate, or inside it)."""
    comp = str(uuid.uuid1())
    option = _node(generate_all=False)
    if gen_count is not None:
        option["gen_count"] = gen_count
    core = _node(
        model=model,
        prompt=prompt,
        negative_prompt="",
        seed=1357613421,
        sample_strength=0.5,
        image_ratio=1,
        large_image_info=_node(height=height, width=width, resolution_type="2k"),
        intelligent_ratio=False,
        generate_type=0,
    )
    generate = _node(core_param=core)
    abilities = _node(generate=generate)
    (generate if inside_generate else abilities)["gen_option"] = option
    return {
        "type": "draft",
        "id": str(uuid.uuid1()),
        "min_version": "3.0.2",
        "min_features": [],
        "is_from_tsn": True,
        "version": "3.3.9",
        "main_component_id": comp,
        "component_list": [
            {
                "type": "image_base_component",
                "id": comp,
                "min_version": "3.0.2",
                "aigc_mode": "workbench",
                "generate_type": "generate",
                "metadata": _node(
                    created_platform=3,
                    created_platform_version="",
                    created_time_in_ms=str(int(time.time() * 1000)),
                    created_did="",
                ),
                "abilities": abilities,
            }
        ],
    }


def generate_body(
    draft: dict[str, Any],
    model: str | None = None,
    submit_id: str | None = None,
    aid: str = AID,
) -> dict[str, Any]:
    core = draft["component_list"][0]["abilities"]
    core = (core.get("generate") or core["blend"])["core_param"]
    sid = submit_id or str(uuid.uuid1())
    return {
        "extend": {"root_model": model or core["model"]},
        "submit_id": sid,
        "metrics_extra": compact(
            {"promptSource": "custom", "generateCount": 1, "generateId": sid}
        ),
        "draft_content": compact(draft),
        "http_common_info": {"aid": int(aid)},
    }


class SimClient:
    """Signed requests against a simulator; every knob of a request overridable."""

    def __init__(
        self,
        base_url: str,
        session: str = "sim-session-1",
        appvr: str = "8.4.0",
        timeout: float = 10.0,
        site: str = "cn",
        region: str | None = None,
    ) -> None:
        """*site* ``cn``, ``us`` or ``sg`` (protocol §7): the app id, query and
        ``Lan``/``Loc`` that site's browser sends; *region* picks HK/JP/SG on
        ``sg``."""
        rules = SITES[site]
        self.site = rules
        self.aid = rules.aid
        self.region = region or next(iter(rules.regions))
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.appvr = appvr
        self.timeout = timeout
        self.http = requests.Session()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sign_headers(
        self, path: str, device_time: int | None = None, appvr: str | None = None
    ) -> dict[str, str]:
        dt = str(int(time.time()) if device_time is None else device_time)
        appvr = appvr or self.appvr
        headers = {
            "Appid": self.aid,
            "Appvr": appvr,
            "Pf": "7",
            "Device-Time": dt,
            "Sign": compute_sign(path, "7", appvr, dt),
            "Sign-Ver": "1",
        }
        if self.site.dreamina:
            lan, loc = self.site.regions[self.region]
            headers.update({"Lan": lan, "Loc": loc})
        return headers

    def default_params(self, path: str) -> dict[str, str]:
        if path.startswith("/commerce/"):
            return {}
        params = {
            "aid": self.aid,
            "device_platform": "web",
            "region": self.region if self.site.dreamina else "cn",
        }
        if self.site.web_id:
            params["webId"] = "7756147496321299000"
        return params

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        session: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        sid = self.session if session is None else session
        all_headers = {
            **self.sign_headers(path),
            "Cookie": f"sessionid={sid}",
            **(headers or {}),
        }
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["data"] = compact(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        return self.http.post(
            self.base_url + path,
            params=self.default_params(path) if params is None else params,
            headers=all_headers,
            timeout=timeout or self.timeout,
            **kwargs,
        )

    def call(self, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        response = self.post(path, body, **kwargs)
        response.raise_for_status()
        return response.json()

    # -- endpoint shortcuts ------------------------------------------------------
    def generate(
        self, prompt: str = "a cat", draft: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        body = generate_body(draft or draft_v2(prompt), aid=self.aid)
        return self.call("/mweb/v1/aigc_draft/generate", body, **kwargs)

    def submit(self, prompt: str = "a cat", **draft_kwargs: Any) -> str:
        result = self.generate(draft=draft_v2(prompt, **draft_kwargs))
        assert result["ret"] == "0", result
        return result["data"]["aigc_data"]["history_record_id"]

    def history(
        self, ids: list[str], key: str = "history_ids", **kwargs: Any
    ) -> dict[str, Any]:
        return self.call("/mweb/v1/get_history_by_ids", {key: ids}, **kwargs)

    def wait(
        self, history_id: str, deadline: float = 20.0, interval: float = 0.05
    ) -> dict[str, Any]:
        """Poll until a final status; return the record."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            record = self.history([history_id])["data"][history_id]
            if record["status"] in FINAL_STATUSES:
                return record
            time.sleep(interval)
        raise TimeoutError(f"task {history_id} did not finish in {deadline} s")

    # -- introspection -----------------------------------------------------------
    def sim(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}/__sim/{path}"
        if body is None:
            response = self.http.get(url, timeout=self.timeout)
        else:
            response = self.http.post(url, json=body, timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.sim("config", changes)

    def stats(self) -> dict[str, Any]:
        return self.sim("stats")
