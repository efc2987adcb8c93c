"""upstream/records.py: what a history record says (statuses, fail codes,
queue, images) and the error a failed record stands for."""

from __future__ import annotations

import pytest

from jimeng_api import errors
from jimeng_api.upstream.records import (
    CONTENT_FAIL_CODES,
    DONE,
    FAILED,
    POST_PROCESSING,
    Queue,
    history_id_of,
    parse_record,
)
from tests.conftest import raw_record

URL = "https://p9-dreamina-sign.byteimg.com/img/0.jpeg"


@pytest.mark.parametrize(
    ("status", "urls", "done", "failed", "stage"),
    [
        (20, [], False, False, "processing"),
        (42, [], False, False, "finishing"),
        (45, [], False, False, "finishing"),
        (45, [URL], False, False, "finishing"),
        (20, [URL], False, False, "finishing"),  # images appearing: finishing
        (50, [URL], True, False, "final"),
        (10, [URL], True, False, "final"),
        (30, [], False, True, "final"),
        (40, [], False, True, "final"),
        (100, [], False, True, "final"),
    ],
)
def test_every_status_is_mapped(status, urls, done, failed, stage):
    record = parse_record(raw_record(status, urls))
    assert (record.status, record.done, record.failed) == (status, done, failed)
    assert record.stage == stage
    assert record.urls == urls


def test_the_status_sets_are_disjoint_and_complete():
    assert not DONE & FAILED and not POST_PROCESSING & (DONE | FAILED)
    assert DONE | FAILED | POST_PROCESSING == {10, 50, 30, 40, 100, 42, 45}


def test_an_unknown_or_missing_status_counts_as_processing():
    assert parse_record({}).status == 20
    assert parse_record({"status": "weird"}).stage == "processing"
    assert parse_record({"status": "50", "item_list": []}).done  # numeric string


def test_queue_info_is_parsed_and_makes_the_stage_queued():
    record = parse_record(
        raw_record(20, queue_info={"queue_idx": 3, "queue_length": 120})
    )
    assert record.queue == Queue(position=3, length=120)
    assert record.stage == "queued"


@pytest.mark.parametrize(
    ("queue_info", "expected", "stage"),
    [
        ({"queue_idx": 0, "queue_length": 9}, Queue(0, 9), "processing"),
        ({"queue_idx": "2"}, Queue(2, None), "queued"),
        ({"queue_idx": -4, "queue_length": -1}, Queue(0, None), "processing"),
        ({"queue_idx": None, "queue_length": "x"}, Queue(0, None), "processing"),
        ("not a dict", None, "processing"),
        (None, None, "processing"),
    ],
)
def test_odd_queue_info_never_breaks_parsing(queue_info, expected, stage):
    record = parse_record(raw_record(20, queue_info=queue_info))
    assert record.queue == expected
    assert record.stage == stage


def test_a_finished_record_without_item_list_has_no_items():
    without = parse_record(raw_record(50, item_list=None))
    assert without.done and without.has_items is False and without.urls == []
    empty = parse_record(raw_record(50))
    assert empty.has_items is True and empty.urls == []
    garbage = parse_record(raw_record(50, item_list="nope"))
    assert garbage.has_items is False


def test_image_urls_come_from_large_images_or_the_cover():
    items = [
        {"image": {"large_images": [{"image_url": "https://a/1.png"}]}},
        {"common_attr": {"cover_url": "https://a/2.png"}},
        {"image": {"large_images": []}},  # not ready yet: skipped
        "junk",
        {"image": {"large_images": [{"image_url": 5}]}},
    ]
    record = parse_record({"status": 45, "item_list": items})
    assert record.urls == ["https://a/1.png", "https://a/2.png"]


def test_total_and_created_time_are_kept_when_sane():
    record = parse_record(raw_record(45, total_image_count=4, created_time=1.7e9))
    assert record.total == 4 and record.created == 1.7e9
    odd = parse_record(raw_record(45, total_image_count=0, created_time="x"))
    assert odd.total is None and odd.created is None


@pytest.mark.parametrize("code", sorted(CONTENT_FAIL_CODES))
def test_content_fail_codes_are_content_policy_errors(code):
    error = parse_record(raw_record(30, fail_code=code)).error("h7")
    assert type(error) is errors.ContentFilteredError
    assert error.status_code == 400 and error.retryable is False
    assert error.code == "content_policy_violation"
    assert code in error.message and "h7" in error.message


def test_fail_code_2039_is_no_credits():
    error = parse_record(raw_record(30, fail_code="2039")).error("h1")
    assert type(error) is errors.InsufficientQuotaError
    assert error.status_code == 429 and error.code == "insufficient_quota"


def test_fail_code_1017_is_an_overload():
    error = parse_record(raw_record(30, fail_code="1017")).error("h1")
    assert type(error) is errors.GenerationFailedError
    assert error.status_code == 502 and error.code == "upstream_overloaded"
    assert error.retryable is False


@pytest.mark.parametrize(("fail_code", "status"), [("9999", 30), ("", 40), (7, 100)])
def test_other_failures_are_generation_failures(fail_code, status):
    error = parse_record(raw_record(status, fail_code=fail_code)).error("h1")
    assert type(error) is errors.GenerationFailedError
    assert error.code == "generation_failed"
    assert f"status {status}" in error.message
    assert (str(fail_code) if fail_code else "no fail code") in error.message


def test_fail_code_is_read_as_text_whatever_its_type():
    assert parse_record(raw_record(30, fail_code=2038)).fail_code == "2038"
    assert parse_record(raw_record(30, fail_code=None)).fail_code == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"history_record_id": "123"}, "123"),
        ({"history_record_id": 456}, "456"),
        ({"task": {"history_id": "789"}}, "789"),
        ({}, None),
        ({"history_record_id": "", "task": {}}, None),
    ],
)
def test_history_id_of_a_record_found_by_submit_id(raw, expected):
    assert history_id_of(raw) == expected
