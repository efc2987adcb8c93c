"""A tiny client written straight from the protocol doc gets four real images.

Deliberately self-contained (stdlib urllib only, nothing from the simulator or
the project's client): sign (§1.6), cookie (§1.5), query/headers (§1.3–1.7),
v2 draft with gen_option.gen_count (§5.1), polling (§3.4).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.request
import uuid
from urllib.parse import urlencode

WEB_ID = "7756147496321299000"
USER_ID = uuid.uuid1().hex
APPVR = "8.4.0"
MODEL = "high_aes_general_v50"


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _cookie(sid: str) -> str:
    now = int(time.time())
    guard = f"{sid}%7C{now}%7C5184000%7CMon%2C+03-Feb-2025+08%3A17%3A09+GMT"
    pairs = [
        ("_tea_web_id", WEB_ID),
        ("is_staff_user", "false"),
        ("store-region", "cn-gd"),
        ("store-region-src", "uid"),
        ("sid_guard", guard),
        ("uid_tt", USER_ID),
        ("uid_tt_ss", USER_ID),
        ("sid_tt", sid),
        ("sessionid", sid),
        ("sessionid_ss", sid),
        ("sid_tt", sid),
    ]
    return "; ".join(f"{k}={v}" for k, v in pairs)


def _request(base: str, sid: str, path: str, body: dict | None) -> dict:
    device_time = str(int(time.time()))
    sign_text = f"9e2c|{path[-7:]}|7|{APPVR}|{device_time}||11ac"
    query = {
        "aid": "513695",
        "device_platform": "web",
        "region": "cn",
        "webId": WEB_ID,
        "da_version": "3.3.9",
        "os": "windows",
        "web_component_open_flag": "1",
        "web_version": "7.5.0",
        "aigc_features": "app_lip_sync",
    }
    headers = {
        "Accept": "application/json, text/plain, */*",
        "Appid": "513695",
        "Appvr": APPVR,
        "Pf": "7",
        "Origin": "https://jimeng.jianying.com",
        "Referer": "https://jimeng.jianying.com",
        "Cookie": _cookie(sid),
        "Device-Time": device_time,
        "Sign-Ver": "1",
        "Sign": hashlib.md5(sign_text.encode()).hexdigest(),
    }
    data = None
    if body is not None:
        data = _dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(
        f"{base}{path}?{urlencode(query)}", data=data, headers=headers, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())


def _uid() -> str:
    return str(uuid.uuid4())


def _draft(prompt: str, gen_count: int) -> dict:
    comp = _uid()
    core = {
        "type": "",
        "id": _uid(),
        "model": MODEL,
        "prompt": prompt,
        "negative_prompt": "",
        "seed": 1357613421,
        "sample_strength": 0.5,
        "image_ratio": 1,
        "large_image_info": {
            "type": "",
            "id": _uid(),
            "height": 2048,
            "width": 2048,
            "resolution_type": "2k",
        },
        "intelligent_ratio": False,
        "generate_type": 0,
    }
    abilities = {
        "type": "",
        "id": _uid(),
        "generate": {"type": "", "id": _uid(), "core_param": core},
        "gen_option": {
            "type": "",
            "id": _uid(),
            "generate_all": False,
            "gen_count": gen_count,
        },
    }
    component = {
        "type": "image_base_component",
        "id": comp,
        "min_version": "3.0.2",
        "aigc_mode": "workbench",
        "metadata": {
            "type": "",
            "id": _uid(),
            "created_platform": 3,
            "created_platform_version": "",
            "created_time_in_ms": str(int(time.time() * 1000)),
            "created_did": "",
        },
        "generate_type": "generate",
        "abilities": abilities,
    }
    return {
        "type": "draft",
        "id": _uid(),
        "min_version": "3.0.2",
        "min_features": [],
        "is_from_tsn": True,
        "version": "3.3.9",
        "main_component_id": comp,
        "component_list": [component],
    }


def _submit(base: str, sid: str, prompt: str) -> str:
    submit_id = _uid()
    body = {
        "extend": {"root_model": MODEL},
        "submit_id": submit_id,
        "metrics_extra": _dumps(
            {"promptSource": "custom", "generateCount": 1, "generateId": submit_id}
        ),
        "draft_content": _dumps(_draft(prompt, 4)),
        "http_common_info": {"aid": 513695},
    }
    result = _request(base, sid, "/mweb/v1/aigc_draft/generate", body)
    assert result["ret"] == "0", result
    return result["data"]["aigc_data"]["history_record_id"]


def generate_images(base: str, sid: str, prompt: str, deadline: float = 30) -> list:
    history_id = _submit(base, sid, prompt)
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        time.sleep(0.1)
        polled = _request(
            base, sid, "/mweb/v1/get_history_by_ids", {"history_ids": [history_id]}
        )
        record = polled["data"][history_id]
        if int(record["status"]) == 30:
            raise RuntimeError(f"failed: {record['fail_code']}")
        if int(record["status"]) == 50:
            return [
                item["image"]["large_images"][0]["image_url"]
                or item["common_attr"]["cover_url"]
                for item in record["item_list"]
            ]
    raise TimeoutError(history_id)


def test_independent_client_gets_four_images(client) -> None:
    # `client` only provides the running strict simulator's base URL and stats.
    urls = generate_images(client.base_url, "my-session-123", "两个小马在一起跑步")
    assert len(urls) == 4
    images = []
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"] == "image/png"
            images.append(response.read())
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    assert len(set(images)) == 4
    stats = client.stats()
    assert stats["violations"] == [] and stats["submissions"] == 1
    assert stats["credits"]["my-session-123"]["total"] == 99


def test_realistic_timeline_with_one_batch_poll_per_account_per_tick(client) -> None:
    # Queue phase, lognormal durations (median 30 s), all 100× faster.
    client.configure(
        duration_model="lognormal",
        task_seconds=30,
        queue_seconds=60,
        time_scale=0.01,
        seed=21,
    )
    base = client.base_url
    accounts = {
        sid: [_submit(base, sid, f"{sid} cat {i}") for i in range(2)]
        for sid in ("acct-a", "acct-b")
    }
    seen: dict[str, list[tuple[int, int, bool]]] = {}
    ticks = 0
    end = time.monotonic() + 30
    while time.monotonic() < end:
        ticks += 1
        done = True
        for sid, ids in accounts.items():  # the browser polls its whole list
            polled = _request(
                base, sid, "/mweb/v1/get_history_by_ids", {"history_ids": ids}
            )
            assert polled["ret"] == "0" and set(polled["data"]) == set(ids)
            for hid, record in polled["data"].items():
                status = int(record["status"])
                queued = "queue_info" in record
                seen.setdefault(hid, []).append(
                    (status, len(record.get("item_list", [])), queued)
                )
                done = done and status == 50
        if done:
            break
        time.sleep(0.02)
    stats = client.stats()
    for hid, timeline in seen.items():
        statuses = [s for s, _, _ in timeline]
        counts = [c for _, c, _ in timeline]
        assert statuses[-1] == 50 and counts[-1] == 4, (hid, timeline)
        assert counts == sorted(counts)
        queued = [q for _, _, q in timeline]
        assert queued == sorted(queued, reverse=True)  # queue_info, then not
        assert all(s == 20 for s, _, q in timeline if q)
        task = stats["tasks"][hid]
        assert task["polls"] == ticks  # every id in every batch call
        assert task["added_latency"] is not None and task["added_latency"] >= 0
    assert any(q for timeline in seen.values() for _, _, q in timeline)
    assert stats["history_calls_by_session"] == {"acct-a": ticks, "acct-b": ticks}
    assert stats["violations"] == [] and stats["submissions"] == 4
