from pathlib import Path

from gateway.memory.admission import admit, estimate_footprint, kv_cache_bytes
from gateway.memory.probe import GB, SystemMemory

REPO = Path(__file__).resolve().parents[4]
GGUF = REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_fits_when_reservations_and_others_leave_room() -> None:
    system = SystemMemory(total=16 * GB, available=12 * GB)  # 4 GiB used, 1 of it a worker
    verdict = admit(system, 50, needed=2 * GB, reserved=1 * GB, workers_rss=1 * GB)
    # limit 8, others 3, reserved 1 -> 4 available
    assert verdict.fits
    assert verdict.available == 4 * GB


def test_refuses_and_explains_with_the_numbers() -> None:
    system = SystemMemory(total=16 * GB, available=12 * GB)
    verdict = admit(system, 50, needed=5 * GB, reserved=1 * GB, workers_rss=1 * GB)
    assert not verdict.fits
    message = verdict.explain("big")
    assert "needs 5.00 GiB" in message
    assert "4.00 GiB available" in message
    assert "8.00 GiB limit" in message


def test_a_workers_reservation_counts_even_before_its_rss_grows() -> None:
    system = SystemMemory(total=16 * GB, available=15 * GB)
    # The loaded worker uses 0.5 GiB now but is estimated at 3 GiB: 3 is reserved.
    verdict = admit(system, 50, needed=5 * GB + 1, reserved=3 * GB, workers_rss=GB // 2)
    assert not verdict.fits


def test_kv_cache_estimate_comes_from_the_gguf_header() -> None:
    # SmolLM2-135M: 30 layers, 3 KV heads of 64 dims; f16 K and V.
    assert kv_cache_bytes(GGUF, 2048) == 2 * 2 * 30 * 3 * 64 * 2048


def test_footprint_adds_weights_kv_and_overhead() -> None:
    size = GGUF.stat().st_size
    assert estimate_footprint(GGUF, 2048, 0.5) == size + kv_cache_bytes(GGUF, 2048) + GB // 2


def test_every_concurrent_sequence_gets_its_own_kv_cache() -> None:
    one = estimate_footprint(GGUF, 2048, 0.0)
    four = estimate_footprint(GGUF, 2048, 0.0, sequences=4)
    assert four - one == 3 * kv_cache_bytes(GGUF, 2048)
