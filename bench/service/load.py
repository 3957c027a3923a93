"""A bounded load test of a running service: a fixed number of requests from a fixed number
of concurrent clients, each a keep-alive HTTP/1.1 connection on asyncio, under a time limit;
it stops by itself. Latency is measured per request, from writing it to reading the whole
answer; throughput is answered requests over the level's wall time.

Kinds of request: `known` (a known user's top 10, the user drawn at random) and `fold-in` (a
new user's top 10 from `ratings` ratings of films drawn from the 500 most rated, at random
values on the scale). A soak repeats mixed requests for a duration and samples the server's
resident memory from `/healthz`.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

KINDS = ("known", "fold-in")


@dataclass(frozen=True)
class Level:
    """One load level's figures."""

    model: str
    kind: str
    clients: int
    requests: int
    errors: int
    seconds: float
    throughput: float  # answered requests per second
    p50_ms: float
    p99_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


class Connection:
    """One keep-alive HTTP/1.1 connection; `ask` sends a request and reads its answer."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def ask(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Length: {len(body)}\r\n")
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self):
        if self.writer is not None:
            self.writer.close()


class Target:
    """What requests can name on a running service: its users, its most rated films, its
    rating scale."""

    def __init__(self, url: str, seed: int = 0):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.rng = random.Random(seed)

    async def get(self, path: str) -> dict:
        c = Connection(self.host, self.port)
        await c.open()
        try:
            status, body = await c.ask("GET", path)
        finally:
            c.close()
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)

    async def prepare(self) -> None:
        served = await self.get("/v1/models")
        self.models = {m["name"]: m for m in served["models"]}
        self.scale = served["scale"] or [1, 1]
        self.users = (await self.get("/v1/users?limit=10000"))["users"]
        self.films = [f["item"] for f in (await self.get("/v1/items?limit=500"))["items"]]

    def request(self, model: str, kind: str, ratings: int) -> tuple[str, str, bytes]:
        if kind == "known":
            user = self.rng.choice(self.users)
            return "GET", f"/v1/users/{user}/recommendations?model={model}&k=10", b""
        low, high = self.scale
        values = [v / 2 for v in range(int(2 * low), int(2 * high) + 1)]
        body = {"model": model, "k": 10,
                "ratings": [{"item": i, "rating": self.rng.choice(values)}
                            for i in self.rng.sample(self.films, ratings)]}
        return "POST", "/v1/recommendations", json.dumps(body).encode()


async def level(target: Target, model: str, kind: str, clients: int, requests: int,
                limit_s: float, ratings: int = 20) -> Level:
    """`requests` requests of one kind from `clients` concurrent connections (or as many as
    `limit_s` allows)."""
    latencies: list[float] = []
    errors = 0
    left = requests
    deadline = time.perf_counter() + limit_s

    async def client():
        nonlocal left, errors
        c = Connection(target.host, target.port)
        await c.open()
        try:
            while left > 0 and time.perf_counter() < deadline:
                left -= 1
                method, path, body = target.request(model, kind, ratings)
                t0 = time.perf_counter()
                status, _ = await c.ask(method, path, body)
                latencies.append(time.perf_counter() - t0)
                errors += status != 200
        finally:
            c.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - started
    ms = sorted(1000 * t for t in latencies)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))] if ms else float("nan")
    return Level(model, kind, clients, len(ms), errors, seconds, len(ms) / seconds,
                 statistics.median(ms) if ms else float("nan"), p99)


async def soak(target: Target, models: list[str], clients: int, seconds: float,
               every_s: float = 10.0, ratings: int = 20) -> dict:
    """Mixed requests (every model, both kinds) for `seconds`; the server's resident memory
    sampled every `every_s` seconds. Growth is the last sample over the first, taken after
    one round of warm-up."""
    samples = []
    done = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for model in models:
            for kind in KINDS:
                if kind == "fold-in" and not target.models[model]["folds_in"]:
                    continue
                result = await level(target, model, kind, clients, 10**9,
                                     min(every_s / 4, max(0.0, end - time.perf_counter())),
                                     ratings)
                done += result.requests
        samples.append({"t": round(seconds - (end - time.perf_counter()), 1),
                        "rss_bytes": (await target.get("/healthz"))["rss_bytes"],
                        "requests": done})
    first, last = samples[0]["rss_bytes"], samples[-1]["rss_bytes"]
    return {"seconds": seconds, "clients": clients, "requests": done, "samples": samples,
            "rss_first_mb": first / 2**20, "rss_last_mb": last / 2**20,
            "rss_max_mb": max(s["rss_bytes"] for s in samples) / 2**20,
            "growth": last / first - 1}


async def run(url: str, models: list[str], kinds: list[str], clients: list[int],
              requests: int, limit_s: float, ratings: int, soak_s: float,
              warmup: int = 50) -> dict:
    target = Target(url)
    await target.prepare()
    unknown = [m for m in models if m not in target.models]
    if unknown:
        raise ValueError(f"{url} does not serve {', '.join(unknown)}; it serves "
                         f"{', '.join(target.models)}")
    levels = []
    for model in models:
        for kind in kinds:
            if kind == "fold-in" and not target.models[model]["folds_in"]:
                continue
            await level(target, model, kind, 4, warmup, limit_s, ratings)  # warm caches
            for n in clients:
                levels.append(await level(target, model, kind, n, requests, limit_s, ratings))
    out = {"url": url, "levels": [x.as_dict() for x in levels]}
    if soak_s:
        out["soak"] = await soak(target, models, max(clients), soak_s, ratings=ratings)
    return out


def markdown(result: dict, command: str = "") -> str:
    """The figures of one load test as a markdown page (the table `load-test` prints)."""
    from tabulate import tabulate

    rows = [{"model": x["model"], "request": x["kind"], "clients": x["clients"],
             "requests": x["requests"], "errors": x["errors"],
             "requests/s": f"{x['throughput']:.0f}", "p50 ms": f"{x['p50_ms']:.1f}",
             "p99 ms": f"{x['p99_ms']:.1f}"} for x in result["levels"]]
    out = [f"Load test of {result['url']}" + (f": `{command}`" if command else ""), ""]
    out.append(tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True))
    if "soak" in result:
        s = result["soak"]
        out += ["", f"Soak: {s['requests']} mixed requests in {s['seconds']:.0f} s at "
                f"{s['clients']} clients; the server's resident memory "
                f"{s['rss_first_mb']:.0f} MB after the first round, {s['rss_last_mb']:.0f} MB "
                f"at the end ({100 * s['growth']:+.1f}%), at most {s['rss_max_mb']:.0f} MB."]
    return "\n".join(out) + "\n"


START, END = "<!-- load:start -->", "<!-- load:end -->"
PUBLISHED = ("load-main", "load-fold-in", "load-known-mf", "load-soak")


def published_block(folder: Path) -> str:
    """The docs' block of the published load figures: each table of `folder`, as written."""
    return "\n".join((folder / f"{name}.md").read_text(encoding="utf-8")
                     for name in PUBLISHED if (folder / f"{name}.md").is_file()).strip()


if __name__ == "__main__":  # python -m aebench.bench.service.load results/service docs/service.md
    import sys

    from aebench.bench.reports.blocks import replace_block

    folder, page = Path(sys.argv[1]), Path(sys.argv[2])
    page.write_text(replace_block(page.read_text(encoding="utf-8"), START, END,
                                  published_block(folder)), encoding="utf-8")
    print(f"wrote {page}")
