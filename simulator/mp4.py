"""A tiny, valid MP4 (H.264 Baseline in ISO BMFF), written with the stdlib only.

Every frame is one IDR picture of I_PCM macroblocks (raw samples, no transform),
so the encoder is a bit writer and a few boxes: any player or ``ffprobe`` reads
it. One frame per second keeps a 15-second clip under a hundred kilobytes; the
colour drifts from frame to frame, starting from a hue drawn from the task id.
"""

from __future__ import annotations

import hashlib
import math
import struct

TIMESCALE = 1000  # ms
MB = 16  # macroblock side (luma samples)


class _Bits:
    """An RBSP bit writer: ``u(n)``, ``ue(v)``, ``se(v)`` and the trailing bits."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0  # pending bits, most significant first
        self.count = 0  # how many are pending (< 8 between calls)

    def u(self, n: int, value: int) -> None:
        self.acc = (self.acc << n) | (value & ((1 << n) - 1))
        self.count += n
        while self.count >= 8:
            self.count -= 8
            self.out.append((self.acc >> self.count) & 0xFF)
        self.acc &= (1 << self.count) - 1

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)  # leading zeros, then the code

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        if self.count:
            self.u(8 - self.count, 0)

    def raw(self, data: bytes) -> None:
        """Append whole bytes (the writer must be byte-aligned)."""
        assert self.count == 0
        self.out += data

    def trailing(self) -> bytes:
        self.u(1, 1)
        self.align_zero()
        return bytes(self.out)


def _nal(ref_idc: int, kind: int, rbsp: bytes) -> bytes:
    """A NAL unit: header byte, then the RBSP with emulation prevention."""
    out = bytearray([(ref_idc << 5) | kind])
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps(width: int, height: int) -> bytes:
    w_mbs, h_mbs = math.ceil(width / MB), math.ceil(height / MB)
    b = _Bits()
    b.u(8, 66)  # Baseline
    b.u(8, 0xC0)  # constraint_set0/1
    b.u(8, 30)  # level 3.0
    b.ue(0)  # seq_parameter_set_id
    b.ue(0)  # log2_max_frame_num_minus4
    b.ue(2)  # pic_order_cnt_type
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(w_mbs - 1)
    b.ue(h_mbs - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 1)  # direct_8x8_inference_flag
    right, bottom = (w_mbs * MB - width) // 2, (h_mbs * MB - height) // 2
    b.u(1, 1 if right or bottom else 0)  # frame_cropping_flag
    if right or bottom:
        b.ue(0)
        b.ue(right)
        b.ue(0)
        b.ue(bottom)
    b.u(1, 0)  # vui_parameters_present_flag
    return _nal(3, 7, b.trailing())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag (CAVLC)
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0)  # pic_init_qp_minus26
    b.se(0)  # pic_init_qs_minus26
    b.se(0)  # chroma_qp_index_offset
    b.u(1, 1)  # deblocking_filter_control_present_flag
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(3, 8, b.trailing())


def _idr(width: int, height: int, idr_id: int, yuv: tuple[int, int, int]) -> bytes:
    """One IDR slice: every macroblock I_PCM with the colour *yuv*."""
    count = math.ceil(width / MB) * math.ceil(height / MB)
    y, cb, cr = (min(max(v, 16), 235) for v in yuv)  # never 0: no start codes
    samples = bytes([y]) * 256 + bytes([cb]) * 64 + bytes([cr]) * 64
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # slice_type: I (all slices)
    b.ue(0)  # pic_parameter_set_id
    b.u(4, 0)  # frame_num
    b.ue(idr_id)  # idr_pic_id: differs between consecutive IDRs
    b.u(1, 0)  # no_output_of_prior_pics_flag
    b.u(1, 0)  # long_term_reference_flag
    b.se(0)  # slice_qp_delta
    b.ue(1)  # disable_deblocking_filter_idc
    for _ in range(count):
        b.ue(25)  # mb_type I_PCM
        b.align_zero()  # pcm_alignment_zero_bit
        b.raw(samples)
    return _nal(3, 5, b.trailing())


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _moov(
    width: int, height: int, sps: bytes, pps: bytes, sizes: list[int], delta: int,
    offset: int,
) -> bytes:  # fmt: skip
    duration = delta * len(sizes)
    mvhd = _full(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, TIMESCALE, duration),
        struct.pack(">IH", 0x10000, 0x100), b"\0" * 10, MATRIX, b"\0" * 24,
        struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = _full(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", 0, 0, 1, 0, duration), b"\0" * 8,
        struct.pack(">hhhH", 0, 0, 0, 0), MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = _full(
        b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, duration, 0x55C4, 0)
    )
    hdlr = _full(b"hdlr", 0, 0, b"\0" * 4, b"vide", b"\0" * 12, b"VideoHandler\0")
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),
        struct.pack(">H", len(sps)), sps, b"\x01", struct.pack(">H", len(pps)), pps,
    )  # fmt: skip
    avc1 = _box(
        b"avc1",
        b"\0" * 6, struct.pack(">H", 1), b"\0" * 16,
        struct.pack(">HHIII", width, height, 0x480000, 0x480000, 0),
        struct.pack(">H", 1), b"\0" * 32, struct.pack(">Hh", 0x18, -1), avcc,
    )  # fmt: skip
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        _full(b"stts", 0, 0, struct.pack(">III", 1, len(sizes), delta)),
        _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(sizes), 1)),
        _full(b"stsz", 0, 0, struct.pack(">II", 0, len(sizes)),
              struct.pack(f">{len(sizes)}I", *sizes)),
        _full(b"stco", 0, 0, struct.pack(">II", 1, offset)),
    )  # fmt: skip
    dinf = _box(
        b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))
    )
    minf = _box(b"minf", _full(b"vmhd", 0, 1, b"\0" * 8), dinf, stbl)
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    return _box(b"moov", mvhd, trak)


def _colour(seed: bytes, frame: int) -> tuple[int, int, int]:
    hue = (seed[0] / 256 + frame * 0.07) * 2 * math.pi
    return 120, int(128 + 90 * math.cos(hue)), int(128 + 90 * math.sin(hue))


def render_mp4(key: str, width: int, height: int, seconds: float) -> bytes:
    """An MP4 of *seconds* (one frame a second, at least one) at width×height
    (even numbers, at least 16), coloured from *key*."""
    width, height = max(16, width - width % 2), max(16, height - height % 2)
    seed = hashlib.sha256(key.encode()).digest()
    frames = max(1, math.ceil(seconds))
    delta = max(1, round(seconds * TIMESCALE / frames))
    sps, pps = _sps(width, height), _pps()
    samples = []
    for i in range(frames):
        nal = _idr(width, height, i % 2, _colour(seed, i))
        samples.append(struct.pack(">I", len(nal)) + nal)
    sizes = [len(s) for s in samples]
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    moov = _moov(width, height, sps, pps, sizes, delta, 0)
    offset = len(ftyp) + len(moov) + 8
    moov = _moov(width, height, sps, pps, sizes, delta, offset)
    return ftyp + moov + _box(b"mdat", *samples)


def boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> list[tuple[bytes, int, int]]:
    """The top-level boxes of *data* between *start* and *end*: (type, offset,
    size); for tests and for the simulator's own checks."""
    end = len(data) if end is None else end
    found, at = [], start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size < 8 or at + size > end:
            raise ValueError(f"bad box at {at}")
        found.append((kind, at, size))
        at += size
    if at != end:
        raise ValueError("trailing bytes")
    return found
