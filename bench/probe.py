#!/usr/bin/env python3
"""Revocation probes for bench/run.sh, Python 3 standard library only.

  check   while a load runs: take a fresh token, introspect it (so a cache holds it), revoke
          it, introspect it again at once; any active:true after the revocation is a violation.
  verify  after a load: every token in a file (sent for revocation by revmix.lua) must be
          inactive, unless the database shows that its revocation never ran (wrk was stopped
          with the request in flight).
  delay   two instances on one database: a token introspected at B, revoked at A, then B
          polled as fast as possible until it answers active:false; the delays in ms.

Credentials come from the environment as run.sh exports them: TOKEN_AUTH (the service client
that owns the tokens, base64 of "id:secret") and INTROSPECT_AUTH (the resource server).
Each prints one line "NAME key=value ..." and exits 1 on a violation or when it could not
measure anything.
"""
import argparse
import hashlib
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


class Client:
    """One keep-alive HTTP/1.1 connection to a server at http://host:port."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = None
        self.token_auth = "Basic " + os.environ["TOKEN_AUTH"]
        self.introspect_auth = "Basic " + os.environ["INTROSPECT_AUTH"]

    def post(self, path, auth, form):
        body = urllib.parse.urlencode(form)
        headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
        # A server may close an idle keep-alive connection: reconnect once, then give up.
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request("POST", path, body, headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def issue(self):
        status, body = self.post("/token", self.token_auth, {"grant_type": "client_credentials"})
        if status != 200:
            raise RuntimeError(f"POST /token answered {status}: {body[:200]!r}")
        return json.loads(body)["access_token"]

    def active(self, token):
        status, body = self.post("/introspect", self.introspect_auth, {"token": token})
        if status != 200:
            raise RuntimeError(f"POST /introspect answered {status}: {body[:200]!r}")
        return json.loads(body)["active"] is True

    def revoke(self, token):
        status, body = self.post("/revoke", self.token_auth, {"token": token})
        if status != 200:
            raise RuntimeError(f"POST /revoke answered {status}: {body[:200]!r}")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-p * len(sorted_values) // 100))
    return sorted_values[int(rank) - 1]


def check(args):
    deadline = time.monotonic() + args.seconds
    lock = threading.Lock()
    totals = {"trials": 0, "violations": 0, "errors": 0, "inactive_before": 0}
    first_error = []

    def worker():
        client = Client(args.url)
        while time.monotonic() < deadline:
            outcomes = ["trials"]
            try:
                token = client.issue()
                if not client.active(token):
                    outcomes = ["inactive_before"]
                else:
                    client.revoke(token)
                    if client.active(token):
                        outcomes.append("violations")
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                outcomes = ["errors"]
                with lock:
                    first_error.append(repr(e))
            with lock:
                for outcome in outcomes:
                    totals[outcome] += 1

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Its own CPU, which run.sh keeps out of the "other work" of the run it ran beside.
    totals["cpu_s"] = f"{time.process_time():.2f}"
    print("CHECK " + " ".join(f"{k}={v}" for k, v in totals.items()))
    if first_error:
        print(f"first error: {first_error[0]}", file=sys.stderr)
    bad = totals["violations"] or totals["errors"] or totals["inactive_before"]
    return 1 if bad or totals["trials"] == 0 else 0


def verify(args):
    with open(args.revoked_in_db) as f:
        revoked_in_db = {line.strip().lower() for line in f if line.strip()}
    with open(args.tokens) as f:
        tokens = [line.strip() for line in f if line.strip()]
    client = Client(args.url)
    counts = {"checked": 0, "inactive": 0, "never_revoked": 0, "violations": 0}
    for token in tokens:
        counts["checked"] += 1
        if not client.active(token):
            counts["inactive"] += 1
        elif hashlib.sha256(token.encode()).hexdigest() in revoked_in_db:
            counts["violations"] += 1
        else:
            counts["never_revoked"] += 1
    print("VERIFY " + " ".join(f"{k}={v}" for k, v in counts.items()))
    # Only requests in flight when wrk stopped can have been left unprocessed: one per connection.
    if counts["never_revoked"] > args.max_unprocessed:
        print(f"{counts['never_revoked']} tokens were neither revoked nor inactive", file=sys.stderr)
        return 1
    return 1 if counts["violations"] else 0


def delay(args):
    owner, other = Client(args.revoke_url), Client(args.poll_url)
    delays_ms, polls, timeouts = [], [], 0
    for _ in range(args.trials):
        token = owner.issue()
        if not other.active(token):
            raise RuntimeError("a fresh token was inactive at the polled instance")
        owner.revoke(token)
        revoked_at = time.monotonic()
        n = 0
        while True:
            n += 1
            if not other.active(token):
                delays_ms.append((time.monotonic() - revoked_at) * 1000)
                polls.append(n)
                break
            if time.monotonic() - revoked_at > args.timeout:
                timeouts += 1
                break
    delays_ms.sort()
    stale = sum(1 for n in polls if n > 1)
    print(
        f"DELAY trials={args.trials} p50_ms={percentile(delays_ms, 50):.1f} "
        f"p99_ms={percentile(delays_ms, 99):.1f} max_ms={(delays_ms or [float('nan')])[-1]:.1f} "
        f"stale_first_polls={stale} max_polls={max(polls, default=0)} timeouts={timeouts}"
    )
    return 1 if timeouts or not delays_ms else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check")
    p.add_argument("--url", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(run=check)
    p = sub.add_parser("verify")
    p.add_argument("--url", required=True)
    p.add_argument("--tokens", required=True, help="tokens sent for revocation, one a line")
    p.add_argument("--revoked-in-db", required=True, help="hex SHA-256 of the revoked rows")
    p.add_argument("--max-unprocessed", type=int, required=True)
    p.set_defaults(run=verify)
    p = sub.add_parser("delay")
    p.add_argument("--revoke-url", required=True, help="instance A, which revokes")
    p.add_argument("--poll-url", required=True, help="instance B, which is polled")
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before a trial fails")
    p.set_defaults(run=delay)
    args = parser.parse_args()
    sys.exit(args.run(args))


if __name__ == "__main__":
    main()
