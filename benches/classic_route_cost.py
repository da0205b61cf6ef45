#!/usr/bin/env python3
"""What the classic simulator's Python loop spends per datagram and per request.

kvsim's classic timing (crates/kvsim/src/scenario/timing.rs) holds its loop this long for each
datagram it routes and each request it makes, as the classic's select loop takes. This
does the same work in CPython on loopback UDP: for a datagram, a select over five
sockets, one recvfrom, json.loads, the checks of the four header fields (IDs as four hex
digits), a drop draw and a sendto; for a request, a random MID, key and value, a dict,
json.dumps and a sendto. Run it on the machine in question:

    python3 benches/classic_route_cost.py
"""
import json
import random
import select
import socket
import string
import time

REPLICAS = 5
ROUNDS = 20_000
CHARS = string.ascii_uppercase + string.digits


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


sim = [udp() for _ in range(REPLICAS)]
replicas = [udp() for _ in range(REPLICAS)]
append = json.dumps({
    "src": "0001", "dst": "0002", "leader": "0001", "type": "ae", "term": 3,
    "prev": [12, 3], "c": 11, "t": 123456789, "e": [[3, "K" * 32, "v" * 32]],
}).encode()


def valid_id(a):
    if type(a) is not str or len(a) != 4:
        return False
    try:
        int(a, 16)
    except ValueError:
        return False
    return True


def route(sock):
    raw, _ = sock.recvfrom(65535)
    msg = json.loads(raw)
    if type(msg) is not dict:
        return
    for field in ("src", "dst", "leader", "type"):
        if field not in msg:
            return
    if not (valid_id(msg["leader"]) and valid_id(msg["dst"]) and valid_id(msg["src"])):
        return
    if random.random() >= 0.0:
        sim[2].sendto(raw, replicas[2].getsockname())


def request():
    mid = "".join(random.choice(CHARS) for _ in range(16))
    key = "".join(random.choice(CHARS) for _ in range(32))
    value = "".join(random.choice("0123456789abcdef") for _ in range(32))
    m = {"src": "0015", "dst": "0002", "leader": "0002", "type": "put",
         "MID": mid, "key": key, "value": value}
    sim[2].sendto(json.dumps(m).encode(), replicas[2].getsockname())


def per_round_us(body):
    began = time.perf_counter()
    for _ in range(ROUNDS):
        body()
    return (time.perf_counter() - began) / ROUNDS * 1e6


def routed():
    replicas[1].sendto(append, sim[1].getsockname())
    for s in select.select(sim, [], [], 0.1)[0]:
        route(s)
    replicas[2].recvfrom(65535)


def harness_only():
    # The replica's side of `routed`, without the simulator's work in between.
    replicas[1].sendto(append, sim[1].getsockname())
    sim[1].recvfrom(65535)
    sim[2].sendto(append, replicas[2].getsockname())
    replicas[2].recvfrom(65535)


def requested():
    request()
    replicas[2].recvfrom(65535)


route_us = per_round_us(routed) - per_round_us(harness_only) / 2
request_us = per_round_us(requested)
print(f"routing one datagram: {route_us:.1f} us; making and sending one request: {request_us:.1f} us")
