#!/usr/bin/env python3
"""Attack measurements against a running tokenmint (see bench/README.md).

Usage: hardening.py BASE_URL CLI_ENV_JSON
  BASE_URL      http://127.0.0.1:PORT of a running server
  CLI_ENV_JSON  the environment (JSON object) that points `tokenmint` at
                the server's store, for making clients

Three scenarios, each printing one JSON line:
  lockout      wrong secrets for a client's id from 20 other addresses,
               then that client (never verified) asks from its own address
  starvation   100 addresses flood wrong secrets (made-up ids and a real
               id) while new, never-verified clients ask for tokens
  connections  2,000 idle and 2,000 slowloris connections held open while a
               client asks for tokens; then how many the server closed
Only the standard library: sockets bound to 127.0.0.x act as many addresses.
"""

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse

BASE = sys.argv[1]
ENV = json.loads(sys.argv[2])
BIN = os.environ.get("TOKENMINT_BIN", "target/release/tokenmint")
HOST, PORT = urllib.parse.urlsplit(BASE).hostname, urllib.parse.urlsplit(BASE).port


def create_client(client_id):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENMINT_")}
    env.update(ENV)
    out = subprocess.run([BIN, "client", "create", client_id, "--scope", "a", "--json"],
                         env=env, capture_output=True, check=True)
    return json.loads(out.stdout)["client_secret"]


def basic(client_id, secret):
    q = urllib.parse.quote
    raw = f"{q(client_id, safe='')}:{q(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def token(client_id, secret, source="127.0.0.1", timeout=30):
    """One token request on its own connection: (status, seconds)."""
    started = time.monotonic()
    body = "grant_type=client_credentials"
    request = (f"POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(client_id, secret)}\r\n"
               f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
               f"Connection: close\r\n\r\n{body}").encode()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, PORT, local_addr=(source, 0)), timeout)
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readline(), timeout)
        writer.close()
        status = int(head.split()[1]) if head else 0
    except (OSError, asyncio.TimeoutError, IndexError, ValueError):
        status = 0
    return status, time.monotonic() - started


def summary(samples):
    times = sorted(t for _, t in samples)
    ok = sum(1 for s, _ in samples if s == 200)
    p = lambda q: round(1000 * times[min(len(times) - 1, int(q * len(times)))], 1)
    return {"requests": len(samples), "ok": ok, "p50_ms": p(0.5), "p99_ms": p(0.99),
            "max_ms": round(1000 * times[-1], 1)}


async def flood(sources, targets, seconds, counts):
    stop = time.monotonic() + seconds

    async def one(source, n):
        i = 0
        while time.monotonic() < stop:
            i += 1
            target = targets[i % len(targets)] or f"ghost-{n}-{i}"
            status, _ = await token(target, "guess", source, timeout=15)
            counts[status] = counts.get(status, 0) + 1
    await asyncio.gather(*(one(s, n) for n, s in enumerate(sources)))


async def lockout():
    secret = create_client("bench-victim")
    counts = {}
    await flood([f"127.0.2.{n}" for n in range(1, 21)], ["bench-victim"], 5, counts)
    samples = [await token("bench-victim", secret) for _ in range(20)]
    return {"scenario": "lockout", "attacker_answers": counts, "victim": summary(samples)}


async def starvation():
    create_client("bench-real")
    fresh = [(f"bench-new-{i}", create_client(f"bench-new-{i}")) for i in range(30)]
    counts = {}
    attack = asyncio.create_task(
        flood([f"127.0.3.{n}" for n in range(1, 101)], [None, "bench-real"], 12, counts))
    await asyncio.sleep(2)
    samples = []
    for client_id, secret in fresh:
        samples.append(await token(client_id, secret))
        await asyncio.sleep(0.3)
    await attack
    return {"scenario": "starvation", "attacker_answers": counts, "new_clients": summary(samples)}


async def connections():
    secret = create_client("bench-conn")
    held = []
    for i in range(4000):
        reader, writer = await asyncio.open_connection(
            HOST, PORT, local_addr=(f"127.0.4.{1 + i % 200}", 0))
        if i % 2:
            writer.write(b"POST /token HTTP/1.1\r\nHost: x\r\n")
        held.append((reader, writer))
    samples = [await token("bench-conn", secret) for _ in range(100)]
    await asyncio.sleep(12)
    closed = 0
    for reader, _ in held[:200]:
        try:
            data = await asyncio.wait_for(reader.read(1024), 0.5)
            closed += data == b"" or data.startswith(b"HTTP/1.1 408")
        except (OSError, asyncio.TimeoutError):
            pass
    for _, writer in held:
        writer.close()
    return {"scenario": "connections", "held": len(held), "client": summary(samples),
            "closed_of_200_sampled_after_12s": closed}


async def main():
    which = os.environ.get("SCENARIOS", "lockout starvation connections").split()
    for name in which:
        result = await {"lockout": lockout, "starvation": starvation, "connections": connections}[name]()
        print(json.dumps(result), flush=True)


asyncio.run(main())
