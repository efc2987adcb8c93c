"""Model catalog and size resolution (protocol doc §4, §5.2; quirks Q4, Q8)."""

from __future__ import annotations

import pytest

from jimeng_api import catalog, sizes
from jimeng_api.catalog import get_model, list_models
from jimeng_api.errors import InvalidRequestError, NotFoundError
from jimeng_api.sizes import (
    ImageSize,
    parse_model_suffix,
    resolve_size,
    size_from_suffix,
)

MODEL_KEYS = {
    "jimeng-5.0": "high_aes_general_v50",
    "jimeng-4.7": "high_aes_general_v43",
    "jimeng-4.6": "high_aes_general_v42",
    "jimeng-4.5": "high_aes_general_v40l",
    "jimeng-4.1": "high_aes_general_v41",
    "jimeng-4.0": "high_aes_general_v40",
    "jimeng-3.1": "high_aes_general_v30l_art_fangzhou:general_v3.0_18b",
    "jimeng-3.0": "high_aes_general_v30l:general_v3.0_18b",
    "jimeng-2.1": "high_aes_general_v21_L:general_v2.1_L",
    "jimeng-2.0-pro": "high_aes_general_v20_L:general_v2.0_L",
    "jimeng-2.0": "high_aes_general_v20:general_v2.0",
    "jimeng-1.4": "high_aes_general_v14:general_v1.4",
    "jimeng-xl-pro": "text2img_xl_sft",
}
ALIAS_KEYS = {
    "jimeng-image-5.0-lite": "high_aes_general_v50",
    "jimeng-5.0-preview": "high_aes_general_v50",
    "jimeng-image-4.7": "high_aes_general_v43",
    "jimeng-image-4.6": "high_aes_general_v42",
    "jimeng-image-4.5": "high_aes_general_v40l",
    "jimeng-image-4.1": "high_aes_general_v41",
    "jimeng-image-4.0": "high_aes_general_v40",
    "jimeng-image-3.1": "high_aes_general_v30l_art_fangzhou:general_v3.0_18b",
    "jimeng-image-3.0": "high_aes_general_v30l:general_v3.0_18b",
    "jimeng-image-2.0-pro": "high_aes_general_v20_L:general_v2.0_L",
}
MODERN = {"jimeng-5.0", "jimeng-4.7", "jimeng-4.6", "jimeng-4.5", "jimeng-4.1"}
MODERN |= {"jimeng-4.0"}

V40 = get_model("jimeng-4.0")
V30 = get_model("jimeng-3.0")


# --- models -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "key"), [*MODEL_KEYS.items(), *ALIAS_KEYS.items()])
def test_every_model_and_alias_maps_to_its_upstream_key(name, key):
    assert get_model(name).key == key


@pytest.mark.parametrize("name", MODEL_KEYS)
def test_generation_limits(name):
    model = get_model(name)
    assert model.id == name
    assert model.modern is (name in MODERN)
    assert model.max_n == (8 if model.modern else 4)
    assert model.default_resolution == ("2k" if model.modern else "1k")


def test_aliases_resolve_to_public_models():
    for alias, target in catalog.ALIASES.items():
        assert get_model(alias) is get_model(target)


def test_list_models_is_public_ids_newest_first():
    models = list_models()
    assert [m.id for m in models] == list(MODEL_KEYS)
    assert [m.created for m in models] == sorted(
        (m.created for m in models), reverse=True
    )
    assert not {m.id for m in models} & set(catalog.ALIASES)


@pytest.mark.parametrize(
    "name", ["JIMENG-4.0", " jimeng-4.0 ", "Jimeng-Image-4.0", "\tjimeng-4.0\n"]
)
def test_lookup_ignores_case_and_whitespace(name):
    assert get_model(name) is V40


@pytest.mark.parametrize(
    "name", ["", "gpt-4o", "jimeng-3.0:1280x720", "nanobanana", "dall-e-3"]
)
def test_unknown_model_is_404_listing_models(name):
    with pytest.raises(NotFoundError) as info:
        get_model(name)
    exc = info.value
    assert exc.status_code == 404
    assert exc.code == "model_not_found"
    assert exc.param == "model"
    assert f"'{name}'" in exc.message
    for model_id in MODEL_KEYS:
        assert model_id in exc.message


def test_non_string_model_is_404():
    with pytest.raises(NotFoundError):
        get_model(None)  # type: ignore[arg-type]


# --- table sizes --------------------------------------------------------------

TABLE = [
    # ratio, 1k, 2k, 4k
    ("1:1", (1024, 1024), (2048, 2048), (4096, 4096), 1),
    ("3:4", (768, 1024), (1728, 2304), (3456, 4608), 2),
    ("16:9", (1024, 576), (2560, 1440), (5120, 2880), 3),
    ("4:3", (1024, 768), (2304, 1728), (4608, 3456), 4),
    ("9:16", (576, 1024), (1440, 2560), (2880, 5120), 5),
    ("2:3", (682, 1024), (1664, 2496), (3328, 4992), 6),
    ("3:2", (1024, 682), (2496, 1664), (4992, 3328), 7),
    ("21:9", (1195, 512), (3024, 1296), (6048, 2592), 8),
]
TABLE_CASES = [
    (ratio, res, dims, code + (100 if res == "4k" else 0))
    for ratio, *sizes, code in TABLE
    for res, dims in zip(("1k", "2k", "4k"), sizes, strict=True)
]


@pytest.mark.parametrize(("ratio", "res", "dims", "code"), TABLE_CASES)
def test_ratio_resolution_table(ratio, res, dims, code):
    size = resolve_size(V40, ratio=ratio, resolution=res)
    assert size == ImageSize(*dims, code, res, ratio)
    assert sizes.SIZE_TABLE[ratio, res] == dims


def test_ratio_codes_and_4k_codes():
    assert sizes.RATIOS == {r: code for r, *_, code in TABLE}
    codes = [
        resolve_size(V40, ratio=r, resolution="4k").image_ratio for r in sizes.RATIOS
    ]
    assert sorted(codes) == list(range(101, 109))


def test_fork_bug_fixed_4_3_is_landscape_at_1k():
    assert resolve_size(V30, ratio="4:3").width == 1024
    assert resolve_size(V30, ratio="3:4").height == 1024


@pytest.mark.parametrize(
    ("model", "kwargs", "expected"),
    [
        (V40, {}, ImageSize(2048, 2048, 1, "2k", "1:1")),
        (V30, {}, ImageSize(1024, 1024, 1, "1k", "1:1")),
        (V40, {"size": "auto"}, ImageSize(2048, 2048, 1, "2k", "1:1")),
        (
            V40,
            {"size": "AUTO", "ratio": "16:9"},
            ImageSize(2560, 1440, 3, "2k", "16:9"),
        ),
        (V40, {"ratio": "16:9"}, ImageSize(2560, 1440, 3, "2k", "16:9")),
        (V30, {"ratio": "16:9"}, ImageSize(1024, 576, 3, "1k", "16:9")),
        (V40, {"resolution": "4K"}, ImageSize(4096, 4096, 101, "4k", "1:1")),
        (
            V40,
            {"ratio": " 9 : 16 ", "resolution": " 1k"},
            ImageSize(576, 1024, 5, "1k", "9:16"),
        ),
        (V40, {"size": "1K"}, ImageSize(1024, 1024, 1, "1k", "1:1")),
        (
            V40,
            {"size": "4k", "ratio": "21:9"},
            ImageSize(6048, 2592, 108, "4k", "21:9"),
        ),
        (V30, {"size": "2K"}, ImageSize(2048, 2048, 1, "2k", "1:1")),
    ],
)
def test_defaults_tiers_and_auto(model, kwargs, expected):
    assert resolve_size(model, **kwargs) == expected


# --- explicit pixel sizes -----------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1024x1024", ImageSize(1024, 1024, 1, "1k", "1:1")),
        ("1280x720", ImageSize(1280, 720, 3, "1k", "16:9")),
        ("1280*720", ImageSize(1280, 720, 3, "1k", "16:9")),
        ("1280×720", ImageSize(1280, 720, 3, "1k", "16:9")),
        (" 1280 X 720 ", ImageSize(1280, 720, 3, "1k", "16:9")),
        ("1023x767", ImageSize(1024, 768, 4, "1k", "4:3")),
        ("767x1023", ImageSize(768, 1024, 2, "1k", "3:4")),
        ("1536x1536", ImageSize(1536, 1536, 1, "1k", "1:1")),
        ("1538x1538", ImageSize(1538, 1538, 1, "2k", "1:1")),
        ("1792x1024", ImageSize(1792, 1024, 3, "2k", "16:9")),
        ("1024x1536", ImageSize(1024, 1536, 6, "1k", "2:3")),
        ("2560x1080", ImageSize(2560, 1080, 8, "2k", "21:9")),
        ("3072x3072", ImageSize(3072, 3072, 1, "2k", "1:1")),
        ("3074x3074", ImageSize(3074, 3074, 101, "4k", "1:1")),
        ("256x8192", ImageSize(256, 8192, 105, "4k", "9:16")),
        ("8192x4608", ImageSize(8192, 4608, 103, "4k", "16:9")),
    ],
)
def test_wxh_sizes_nearest_ratio_and_even_rounding(size, expected):
    assert resolve_size(V40, size=size) == expected


def test_width_height_fields():
    size = resolve_size(V30, width=1023, height=767)
    assert size == ImageSize(1024, 768, 4, "1k", "4:3")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"size": "0x0"}, "size"),
        ({"size": "100000x10"}, "size"),
        ({"size": "255x1024"}, "size"),
        ({"size": "1024x8193"}, "size"),
        ({"size": "8192x8192"}, "size"),
        ({"size": "abc"}, "size"),
        ({"size": "-5x10"}, "size"),
        ({"size": "1024x"}, "size"),
        ({"size": "x1024"}, "size"),
        ({"size": ""}, "size"),
        ({"size": "NaNxNaN"}, "size"),
        ({"size": "nan"}, "size"),
        ({"size": "infxinf"}, "size"),
        ({"size": "1e3x1e3"}, "size"),
        ({"size": "1024.5x768"}, "size"),
        ({"size": "1024-768"}, "size"),
        ({"size": "9" * 5000 + "x1"}, "size"),
        ({"size": "3k"}, "size"),
        ({"size": 1024}, "size"),
        ({"width": 0, "height": 1024}, "width"),
        ({"width": 1024, "height": 100000}, "height"),
        ({"width": 1024.0, "height": 1024}, "width"),
        ({"width": True, "height": 1024}, "width"),
        ({"width": "1024", "height": 1024}, "width"),
        ({"width": 8192, "height": 8192}, "width"),
        ({"width": 1024}, "height"),
        ({"height": 1024}, "width"),
        ({"ratio": "5:4"}, "ratio"),
        ({"ratio": "16/9"}, "ratio"),
        ({"ratio": ""}, "ratio"),
        ({"ratio": 1.5}, "ratio"),
        ({"resolution": "8k"}, "resolution"),
        ({"resolution": "2048"}, "resolution"),
    ],
)
def test_invalid_sizes_name_the_param(kwargs, param):
    with pytest.raises(InvalidRequestError) as info:
        resolve_size(V40, **kwargs)
    assert info.value.param == param
    assert info.value.status_code == 400


def test_unknown_ratio_lists_valid_ones():
    with pytest.raises(InvalidRequestError) as info:
        resolve_size(V40, ratio="5:4")
    assert all(ratio in info.value.message for ratio in sizes.RATIOS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": "1024x1024", "ratio": "1:1"},
        {"size": "1024x1024", "resolution": "2k"},
        {"size": "1024x1024", "width": 1024, "height": 1024},
        {"width": 1024, "height": 1024, "ratio": "16:9"},
        {"width": 1024, "height": 1024, "resolution": "1k"},
        {"size": "2k", "resolution": "4k"},
    ],
)
def test_ambiguous_combinations(kwargs):
    with pytest.raises(InvalidRequestError) as info:
        resolve_size(V40, **kwargs)
    assert info.value.param == "size"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"resolution": "4k"}, "resolution"),
        ({"ratio": "16:9", "resolution": "4K"}, "resolution"),
        ({"size": "4K"}, "size"),
        ({"size": "4096x4096"}, "size"),
        ({"width": 3840, "height": 2160}, "width"),
    ],
)
@pytest.mark.parametrize("name", ["jimeng-3.1", "jimeng-3.0", "jimeng-xl-pro"])
def test_legacy_models_refuse_4k(name, kwargs, param):
    with pytest.raises(InvalidRequestError) as info:
        resolve_size(get_model(name), **kwargs)
    assert info.value.param == param
    assert "4k" in info.value.message


def test_legacy_models_accept_2k():
    assert resolve_size(V30, resolution="2k").width == 2048


# --- chat model suffix --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jimeng-3.0", ("jimeng-3.0", None)),
        ("jimeng-3.0:1280x720", ("jimeng-3.0", "1280x720")),
        ("jimeng-4.0:16:9", ("jimeng-4.0", "16:9")),
        ("jimeng-4.0:16:9:4k", ("jimeng-4.0", "16:9:4k")),
        (" jimeng-4.0 : 2k ", ("jimeng-4.0", "2k")),
        ("jimeng-3.0:", ("jimeng-3.0", None)),
    ],
)
def test_parse_model_suffix(value, expected):
    assert parse_model_suffix(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jimeng-3.0", ImageSize(1024, 1024, 1, "1k", "1:1")),
        ("jimeng-3.0:1280x720", ImageSize(1280, 720, 3, "1k", "16:9")),
        ("jimeng-3.0:1280*720", ImageSize(1280, 720, 3, "1k", "16:9")),
        ("jimeng-3.0:1280×720", ImageSize(1280, 720, 3, "1k", "16:9")),
        ("jimeng-3.0:1280-720", ImageSize(1280, 720, 3, "1k", "16:9")),
        ("jimeng-2.1:1023x767", ImageSize(1024, 768, 4, "1k", "4:3")),
        ("jimeng-4.0:16:9", ImageSize(2560, 1440, 3, "2k", "16:9")),
        ("jimeng-4.0:16:9:4k", ImageSize(5120, 2880, 103, "4k", "16:9")),
        ("jimeng-4.0:9:16:1K", ImageSize(576, 1024, 5, "1k", "9:16")),
        ("jimeng-4.0:2k", ImageSize(2048, 2048, 1, "2k", "1:1")),
        ("JIMENG-4.0:4K", ImageSize(4096, 4096, 101, "4k", "1:1")),
    ],
)
def test_size_from_suffix(value, expected):
    name, suffix = parse_model_suffix(value)
    assert size_from_suffix(get_model(name), suffix) == expected


@pytest.mark.parametrize(
    "value",
    [
        "jimeng-3.0:bogus",
        "jimeng-3.0:1280x",
        "jimeng-3.0:1280:720",
        "jimeng-3.0:10x10",
        "jimeng-3.0:4k",
        "jimeng-3.0:16:9:4k",
        "jimeng-4.0:16:9:8k",
        "jimeng-4.0:5:4",
        "jimeng-4.0:auto",
        "jimeng-4.0:1280x720x2",
    ],
)
def test_bad_suffix_is_400_on_model(value):
    name, suffix = parse_model_suffix(value)
    with pytest.raises(InvalidRequestError) as info:
        size_from_suffix(get_model(name), suffix)
    assert info.value.param == "model"
    assert suffix in info.value.message


def test_error_messages_do_not_echo_huge_values():
    with pytest.raises(InvalidRequestError) as info:
        resolve_size(V40, size="9" * 5000 + "x1")
    assert len(info.value.message) < 200
    with pytest.raises(NotFoundError) as info:
        get_model("m" * 5000)
    assert len(info.value.message) < 500
