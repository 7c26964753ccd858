"""python -m workers: serve one model.

python -m workers --settings FILE        (what the gateway writes: run/workers/<id>.json)
python -m workers --model-id ID --backend B --path P --port N [options]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from workers.contract.parent_watch import exit_with_parent
from workers.contract.settings import BackendName, WorkerSettings
from workers.server import WorkerServer, configure_logging

log = logging.getLogger("workers")
GB = 1024**3


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    exit_with_parent()
    try:
        settings = _settings(args)
        server = WorkerServer(settings)
    except (OSError, ValueError) as error:
        log.error("cannot start worker: %s", error)
        return 2
    log.info(
        "worker %s (%s) listening on %s:%d",
        settings.model_id,
        settings.backend,
        settings.host,
        server.settings.port,
    )
    return server.run()


def _settings(args: argparse.Namespace) -> WorkerSettings:
    if args.settings is not None:
        try:
            return WorkerSettings.from_json(Path(args.settings).read_text())
        except (KeyError, TypeError) as error:
            raise ValueError(f"{args.settings}: not a worker settings file ({error})") from None
    missing = [flag for flag in ("model_id", "backend", "path") if getattr(args, flag) is None]
    if missing:
        raise ValueError("missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
    return WorkerSettings(
        model_id=args.model_id,
        backend=BackendName(args.backend),
        path=Path(args.path).resolve(),
        host=args.host,
        port=args.port,
        context_length=args.context_length,
        max_concurrent=args.max_concurrent,
        max_queue=args.max_queue,
        request_timeout_s=args.request_timeout_s,
        max_body_bytes=args.max_body_bytes,
        tool_parser=args.tool_parser,
        reasoning_parser=args.reasoning_parser,
        embeddings=args.embeddings,
        vision=args.vision,
        defaults=_defaults(args.default),
        chat_template=Path(args.chat_template_file).read_text()
        if args.chat_template_file
        else None,
        api_keys=tuple(args.api_key),
        prompt_cache_bytes=int(args.prompt_cache_gb * GB),
        prompt_cache_dir=Path(args.prompt_cache_dir).resolve() if args.prompt_cache_dir else None,
        prompt_cache_disk_bytes=int(args.prompt_cache_disk_gb * GB),
        warm_prompts=tuple(args.warm_prompt),
    )


def _defaults(pairs: list[str]) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ValueError(f"--default wants KEY=VALUE, got {pair!r}")
        try:
            defaults[key] = json.loads(raw)
        except json.JSONDecodeError:
            defaults[key] = raw
    return defaults


def _parser() -> argparse.ArgumentParser:
    base = WorkerSettings(model_id="", backend=BackendName.SCRIPTED, path=Path())
    p = argparse.ArgumentParser(prog="python -m workers", description="Serve one model.")
    p.add_argument("--settings", help="a settings JSON file, as the gateway writes them")
    p.add_argument("--model-id")
    p.add_argument("--backend", choices=list(BackendName))
    p.add_argument("--path", help=".gguf file, MLX directory, or scripted-backend JSON")
    p.add_argument("--host", default=base.host)
    p.add_argument("--port", type=int, default=base.port)
    p.add_argument("--context-length", type=int, default=base.context_length)
    p.add_argument("--max-concurrent", type=int, default=base.max_concurrent)
    p.add_argument("--max-queue", type=int, default=base.max_queue)
    p.add_argument("--request-timeout-s", type=float, default=base.request_timeout_s)
    p.add_argument("--max-body-bytes", type=int, default=base.max_body_bytes)
    p.add_argument("--tool-parser", help="default: detect from the chat template; 'none': off")
    p.add_argument("--reasoning-parser", help="default: detect; 'none': off; 'think'")
    p.add_argument("--embeddings", action="store_true")
    p.add_argument("--vision", action="store_true")
    p.add_argument("--default", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--chat-template-file")
    p.add_argument("--api-key", action="append", default=[])
    p.add_argument("--prompt-cache-gb", type=float, default=base.prompt_cache_bytes / GB)
    p.add_argument("--prompt-cache-dir", help="the prompt cache's disk tier (default: none)")
    p.add_argument("--prompt-cache-disk-gb", type=float, default=base.prompt_cache_disk_bytes / GB)
    p.add_argument("--warm-prompt", action="append", default=[], help="a system prompt to prefill")
    return p


if __name__ == "__main__":
    sys.exit(main())
