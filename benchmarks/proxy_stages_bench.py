"""The proxy's own work per call, without HTTP: parse, plan (warm memo) and record, as thread CPU time.

One process, no sockets: the proxy's tracker (the upstream planner counting through the in-process
emulator, a SQLite ledger, the Prometheus sink) handles the load benchmark's requests (a ~10k-token
cached system prompt, a short user turn): the body read as the proxy reads it, ``aprepare``
(planning and the miss watch's look), then ``finish`` (JSON) or a stream recorder fed the SSE reply
in 1.5 kB pieces. The first ``--warm`` calls fill the memo and are not counted. Prints the CPU time
of this thread (``time.thread_time``) per call and stage, next to ``json.loads`` of the same body
measured in the same run. Run::

    .venv/bin/python benchmarks/proxy_stages_bench.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).parent))

from proxy_load_bench import _body, _system_prompt

from cachewise.emulator import Emulator
from cachewise.emulator.transport import AsyncEmulatorTransport
from cachewise.gateway.metrics import ProxyMetrics
from cachewise.integrations.proxy_planner import caller_headers, upstream_planner
from cachewise.integrations.tracker import CallTracker, read_reply
from cachewise.ledger import Ledger

HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01", "content-type": "application/json"}


async def _stages(mode: str, requests: int, warm: int, db: str) -> dict[str, float]:
    transport = AsyncEmulatorTransport(Emulator())
    ledger = Ledger(db)
    planner = upstream_planner("http://emulator", transport=transport)
    tracker = CallTracker(ledger=ledger, planner=planner, sinks=[ProxyMetrics()])
    stream = mode == "sse"
    system = _system_prompt(10_000)
    bodies = [json.dumps(_body(system, i, stream=stream)).encode() for i in range(warm + requests)]
    spent = {"json.loads": 0.0, "parse": 0.0, "prepare": 0.0, "record": 0.0}
    async with httpx2.AsyncClient(base_url="http://emulator", transport=transport) as http:
        for i, raw in enumerate(bodies):
            if i == warm:
                spent = dict.fromkeys(spent, 0.0)
            t0 = time.thread_time()
            json.loads(raw)
            t1 = time.thread_time()
            body = read_reply(raw)
            t2 = time.thread_time()
            with caller_headers(HEADERS):
                prepared = await tracker.aprepare(body)
            t3 = time.thread_time()
            sent = prepared.payload if prepared.payload is not None else raw
            reply = await http.post("/v1/messages", content=sent, headers=HEADERS)
            t4 = time.thread_time()
            if stream:
                recorder = tracker.tap(prepared, reply.status_code, reply.headers)
                for at in range(0, len(reply.content), 1500):
                    recorder.feed(reply.content[at : at + 1500])
                recorder.close()
            else:
                tracker.finish(prepared, reply.status_code, reply.headers, reply.content)
            t5 = time.thread_time()
            for name, took in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t5 - t4), strict=True):
                spent[name] += took
    ledger.close()
    return {name: total / requests for name, total in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=200)
    args = parser.parse_args()
    print("| mode | json.loads | parse | plan + look (aprepare) | record | parse + plan + record |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in ("json", "sse"):
        with tempfile.TemporaryDirectory() as tmp:
            spent = asyncio.run(_stages(mode, args.requests, args.warm, f"{tmp}/stages.db"))
        own = spent["parse"] + spent["prepare"] + spent["record"]
        cells = " | ".join(f"{spent[k] * 1e3:.3f} ms" for k in ("json.loads", "parse", "prepare", "record"))
        print(f"| {mode} | {cells} | {own * 1e3:.3f} ms |", flush=True)


if __name__ == "__main__":
    main()
