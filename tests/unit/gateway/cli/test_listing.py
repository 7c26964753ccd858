"""What lmx ls and lmx ps list, from /admin/status and /v1/models answers."""

from __future__ import annotations

from gateway.cli.listing import model_rows, process_rows

LISTING = [
    {"id": "a", "status": "ready", "backend": "llama_cpp"},
    {"id": "b", "status": "unloaded", "backend": "mlx"},
    {"id": "chat", "status": "alias", "targets": ["a", "b"]},
    {"id": "fast", "status": "alias", "targets": ["a"]},
]


def test_model_rows_carry_the_aliases_that_name_each_model() -> None:
    models = [
        {"id": "a", "status": "ready", "backend": "llama_cpp", "port": 10001},
        {"id": "b", "status": "unloaded", "backend": "mlx"},
    ]
    rows = model_rows(models, LISTING)
    assert rows[0]["aliases"] == ["chat", "fast"]
    assert rows[1]["aliases"] == ["chat"]
    assert rows[0]["port"] == 10001


def test_model_rows_keep_reported_library_fields_and_leave_the_rest_none() -> None:
    models = [
        {
            "id": "a",
            "status": "ready",
            "backend": "llama_cpp",
            "source": "library",
            "size_bytes": 1000,
            "context_length": 2048,
            "aliases": ["mine", "fast"],
        },
        {"id": "b", "status": "unloaded", "backend": "mlx"},
    ]
    rows = model_rows(models, LISTING)
    assert rows[0]["size_bytes"] == 1000 and rows[0]["context_length"] == 2048
    assert rows[0]["source"] == "library"
    assert rows[0]["aliases"] == ["mine", "fast", "chat"]  # no duplicate
    assert rows[1]["size_bytes"] is None and rows[1]["source"] is None


def test_process_rows_show_idle_time_and_ttl_left_for_loaded_models_only() -> None:
    now = 1000.0
    models = [
        {
            "id": "idle",
            "status": "ready",
            "pid": 7,
            "in_flight": 0,
            "last_used": 940.0,
            "ttl_s": 300,
        },
        {
            "id": "busy",
            "status": "ready",
            "pid": 8,
            "in_flight": 2,
            "last_used": 999.0,
            "ttl_s": 300,
        },
        {
            "id": "forever",
            "status": "ready",
            "pid": 9,
            "in_flight": 0,
            "last_used": 900.0,
            "ttl_s": 0,
        },
        {
            "id": "old",
            "status": "ready",
            "pid": 10,
            "in_flight": 0,
            "last_used": 100.0,
            "ttl_s": 60,
        },
        {"id": "loading", "status": "loading", "pid": 11, "in_flight": 0, "last_used": None},
        {"id": "cold", "status": "unloaded", "pid": None},
    ]
    rows = {r["id"]: r for r in process_rows(models, now)}
    assert set(rows) == {"idle", "busy", "forever", "old", "loading"}
    assert (rows["idle"]["idle_s"], rows["idle"]["ttl_left_s"]) == (60.0, 240.0)
    assert (rows["busy"]["idle_s"], rows["busy"]["ttl_left_s"]) == (None, None)
    assert (rows["forever"]["idle_s"], rows["forever"]["ttl_left_s"]) == (100.0, None)
    assert rows["old"]["ttl_left_s"] == 0.0
    assert rows["loading"]["idle_s"] is None


def test_process_rows_without_a_reported_ttl_leave_it_unknown() -> None:
    models = [{"id": "a", "status": "ready", "in_flight": 0, "last_used": 10.0}]
    (row,) = process_rows(models, 20.0)
    assert row["ttl_s"] is None and row["ttl_left_s"] is None and row["idle_s"] == 10.0
