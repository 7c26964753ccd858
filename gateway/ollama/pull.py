"""Ollama's `/api/pull` onto the model library's pull: the name says which repo of a
Hugging Face-compatible hub (and which quantisation of it), the progress comes back as
Ollama's status lines.

Names: `[hf.co/|huggingface.co/]owner/name[:tag]`, as Ollama pulls from Hugging Face. A
tag ending in `.gguf` is that file; another tag picks the GGUF file whose name holds it
(`Q8_0`); no tag (or `latest`) picks `Q4_K_M` when the repo has one, as Ollama does, else
its only or first GGUF file; a repo without GGUF files is pulled whole (an MLX folder).
Ollama's own library names (`llama3.2`) have no owner and are refused with a 400.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from huggingface_hub import HfApi, constants

from gateway.library.download import hub_error
from gateway.library.pull_spec import DEFAULT_REVISION, PullSpec
from workers.contract.errors import ApiError

Json = dict[str, Any]
HUB_PREFIXES = ("hf.co/", "huggingface.co/")
DEFAULT_QUANT = "q4_k_m"
# The second and later parts of a split GGUF are pulled with the first, never picked alone.
_LATER_SHARD = re.compile(r"-0*(?:[2-9]|\d{2,})-of-\d+\.gguf$", re.IGNORECASE)


def parse_name(name: str) -> tuple[str, str | None]:
    """The repo and the tag of an Ollama model name; ValueError when it names no repo."""
    for prefix in HUB_PREFIXES:
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
            break
    repo, _, tag = name.partition(":")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ValueError(
            f"{name!r} names no repo: pulls here come from a Hugging Face-compatible hub, "
            "named owner/name or hf.co/owner/name:QUANT (e.g. hf.co/owner/model-GGUF:Q4_K_M)"
        )
    return repo, (tag or None) if tag != "latest" else None


def pick_file(files: list[str], tag: str | None) -> str | None:
    """The GGUF file the tag means; None: the whole repo (it has no GGUF files)."""
    if tag is not None and tag.lower().endswith(".gguf"):
        return tag
    ggufs = sorted(f for f in files if f.lower().endswith(".gguf") and not _LATER_SHARD.search(f))
    ggufs = [f for f in ggufs if not f.rsplit("/", 1)[-1].lower().startswith("mmproj")]
    if not ggufs:
        if tag is not None:
            raise LookupError(f"the repo has no GGUF files, so no {tag!r} in it")
        return None
    wanted = (tag or DEFAULT_QUANT).lower()
    matches = [f for f in ggufs if wanted in f.rsplit("/", 1)[-1].lower()]
    if matches:
        return min(matches, key=len)
    if tag is not None:
        raise LookupError(f"no GGUF file of the repo matches {tag!r}: {', '.join(ggufs)}")
    return ggufs[0]


async def resolve(name: str, endpoint: str | None = None) -> PullSpec:
    """The library pull an Ollama name means: the repo's file list decides the file."""
    try:
        repo, tag = parse_name(name)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="model") from None
    spec = PullSpec.parse({"repo": repo})  # the same checks as /admin/models/pull
    if tag is not None and tag.lower().endswith(".gguf"):
        return PullSpec.parse({"repo": repo, "file": tag})

    def listing() -> list[str]:
        api = HfApi(endpoint=endpoint)
        timeout = constants.HF_HUB_ETAG_TIMEOUT
        info = api.model_info(repo, revision=DEFAULT_REVISION, timeout=timeout)
        return [s.rfilename for s in info.siblings or []]

    try:
        files = await asyncio.to_thread(listing)
    except Exception as exc:
        raise hub_error(exc, spec, endpoint) from None
    try:
        file = pick_file(files, tag)
    except LookupError as exc:
        raise ApiError(404, f"{repo}: {exc}", code="file_not_found") from None
    return PullSpec.parse({"repo": repo, "file": file} if file else {"repo": repo})


async def progress_lines(events: AsyncIterator[Json]) -> AsyncIterator[Json]:
    """The library's pull events as Ollama's progress objects, `success` or `error` last."""
    yield {"status": "pulling manifest"}
    async for event in events:
        status = event.get("status")
        if status == "downloading":
            line: Json = {"status": f"pulling {event['file']}", "digest": event["file"]}
            if event.get("total") is not None:
                line["total"] = event["total"]
            line["completed"] = event["bytes"]
            yield line
        elif status == "success":
            yield {"status": "verifying sha256 digest"}
            yield {"status": "writing manifest"}
            yield {"status": "success"}
        else:
            yield {"error": event.get("error", {}).get("message", "pull failed")}
