"""The operator's routes: /admin/logs (tail and follow), /admin/requests (list, cancel)
and /admin/benchmark (run, list). All need the admin key when one is configured."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.operations.benchmark import BenchmarkSpec, SelfTarget, load_first, run_benchmark
from gateway.operations.logs import LogReader, LogStream, ProgramLog, lines_wanted, program_log
from gateway.service import Gateway
from workers.contract.body import parse_json_object, read_body
from workers.contract.errors import ApiError
from workers.contract.keys import require_admin_key


def routes(gateway: Gateway) -> list[Route]:
    ops = gateway.operations
    reader = LogReader(gateway.supervisor)

    def admin_only(request: Request) -> None:
        require_admin_key(request.scope, gateway.config.file.security.admin_key)

    def chosen_log(request: Request) -> tuple[ProgramLog, int]:
        admin_only(request)
        query = request.query_params
        log = program_log(query.get("program"), allowed_programs(gateway))
        return log, lines_wanted(query.get("lines"))

    async def logs(request: Request) -> Response:
        log, lines = chosen_log(request)
        tail, _ = await reader.tail(log, lines)
        return JSONResponse({"program": log.program, "lines": tail})

    async def logs_stream(request: Request) -> Response:
        log, lines = chosen_log(request)
        tail = await reader.tail(log, lines)  # before the head: a refusal is a plain error
        return LogStream(reader, log, tail, lambda: ops.shutting_down)

    async def requests(request: Request) -> Response:
        admin_only(request)
        return JSONResponse({"data": ops.requests.listing()})

    async def cancel(request: Request) -> Response:
        admin_only(request)
        request_id = request.path_params["request_id"]
        ops.requests.cancel(request_id)
        return JSONResponse({"id": request_id, "cancelled": True})

    async def benchmarks(request: Request) -> Response:
        admin_only(request)
        return JSONResponse({"data": ops.benchmarks.results()})

    async def benchmark(request: Request) -> Response:
        admin_only(request)
        limit = gateway.config.file.gateway.max_body_bytes
        payload = parse_json_object(await read_body(request.scope, request.receive, limit))
        spec = BenchmarkSpec.parse(payload)
        route = gateway.router.resolve(spec.model)
        if ops.benchmark_running.locked():
            raise ApiError(
                409, "a benchmark is running; try again when it ends", code="benchmark_running"
            )
        async with ops.benchmark_running:
            await load_first(gateway.fleet, route)
            result = await run_benchmark(spec, SelfTarget.of(gateway.config))
        await asyncio.to_thread(ops.benchmarks.add, result)
        return JSONResponse(result)

    return [
        Route("/admin/logs", logs),
        Route("/admin/logs/stream", logs_stream),
        Route("/admin/requests", requests),
        Route("/admin/requests/{request_id}", cancel, methods=["DELETE"]),
        Route("/admin/benchmark", benchmarks, methods=["GET"]),
        Route("/admin/benchmark", benchmark, methods=["POST"]),
    ]


def allowed_programs(gateway: Gateway) -> list[str]:
    """The programs supervisord runs for this gateway: never a path from the client."""
    return ["gateway", "memwatch", *(w.program for w in gateway.fleet.workers.values())]
