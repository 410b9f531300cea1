#!/usr/bin/env python3
"""Prints bench/run.sh's summary (Markdown) from its results.tsv and facts.txt.

results.tsv: one row per measured wrk run (target, round, scenario, connections, figures).
facts.txt: the probes' "NAME key=value ..." lines (CHECK, VERIFY, RSS, DELAY).
Each Umbra figure is compared with the ceiling's reference scenario of the same round; the
table shows medians over the rounds (of the per-round ratios for the ratio).
"""
import csv
import statistics
import sys

# (scenario, connections) -> (ceiling scenario it is compared with, minimum ratio, max p99 ms)
TARGETS = {
    ("introspect", 32): ("introspect", 4.0, 10.0),
    ("introspect", 128): ("introspect", 3.0, None),
    ("introspect_nocache", 32): ("introspect", 1.1, None),
    ("client_credentials", 32): ("client_credentials", 1.5, 20.0),
    ("revmix", 32): ("introspect", 3.0, None),
}
# Umbra-only scenarios are compared with the ceiling's plain introspection.
REFERENCE = {"introspect_nocache": "introspect", "revmix": "introspect"}
RSS_LIMIT_MIB = 64.0


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def read_facts(path):
    facts = {}
    with open(path) as f:
        for line in f:
            name, *pairs = line.split()
            facts.setdefault(name, []).append(dict(p.split("=", 1) for p in pairs if "=" in p))
    return facts


def main(results_path, facts_path):
    with open(results_path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        for k in ("rps", "p50", "p99", "cpu", "pgcpu", "wrkcpu", "other", "peak_mib"):
            r[k] = float(r[k])
        r["hit"] = None if r["hit"] == "-" else float(r["hit"])
    facts = read_facts(facts_path)

    print("### Every run")
    print()
    print("| target | round | scenario | conns | req/s | p50 ms | p99 ms | non-2xx | sock err | peak RSS MiB"
          " | CPU cores: server / postgres / wrk / other | cache hits |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        hit = "-" if r["hit"] is None else f"{r['hit']:.1f} %"
        print(f"| {r['target']} | {r['round']} | {r['scenario']} | {r['conns']} | {r['rps']:.0f} | {r['p50']:.2f}"
              f" | {r['p99']:.2f} | {r['non2xx']} | {r['sockerr']} | {r['peak_mib']:.1f}"
              f" | {r['cpu']:.2f} / {r['pgcpu']:.2f} / {r['wrkcpu']:.2f} / {r['other']:.2f} | {hit} |")
    print()

    ceiling = {(r["round"], r["scenario"], r["conns"]): r for r in rows if r["target"] == "ceiling"}
    groups = {}
    for r in rows:
        if r["target"] == "umbra":
            groups.setdefault((r["scenario"], int(r["conns"])), []).append(r)
    if not groups:
        groups = {(r["scenario"], int(r["conns"])): [] for r in rows}

    # Revoked tokens answered active:true, by the checker or by the verifier after the run.
    stale = sum(int(c["violations"]) for c in facts.get("CHECK", []) + facts.get("VERIFY", []))
    rounds = len({r["round"] for r in rows})
    print(f"### Umbra against the ceiling (medians of {rounds} round(s))")
    print()
    print("| scenario | conns | Umbra req/s | ceiling req/s | ratio | Umbra p99 ms | ceiling p99 ms"
          " | CPU Umbra: server / pg / wrk | CPU ceiling: server / pg / wrk | cache hits | target | met? |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|")
    for (scenario, conns), runs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "introspect", kv[0])):
        ref_name = REFERENCE.get(scenario, scenario)
        refs = [ceiling.get((r["round"], ref_name, str(conns))) for r in runs] if runs else [
            c for (rnd, s, c_conns), c in ceiling.items() if s == ref_name and c_conns == str(conns)]
        ratios = [r["rps"] / c["rps"] for r, c in zip(runs, refs) if c and c["rps"] > 0]
        ratio = median(ratios) if runs else None
        u_rps, u_p99 = median([r["rps"] for r in runs]), median([r["p99"] for r in runs])
        c_rps = median([c["rps"] for c in refs if c])
        c_p99 = median([c["p99"] for c in refs if c])

        def cpu(rs):
            rs = [x for x in rs if x]
            if not rs:
                return "-"
            return " / ".join(f"{median([x[k] for x in rs]):.2f}" for k in ("cpu", "pgcpu", "wrkcpu"))

        hit = median([r["hit"] for r in runs])
        target, met = "-", "-"
        if (scenario, conns) in TARGETS:
            _, min_ratio, max_p99 = TARGETS[(scenario, conns)]
            target = f">= {min_ratio}x" + (f", p99 <= {max_p99:g} ms" if max_p99 else "")
            if scenario == "revmix":
                target += ", no stale answer"
            if ratio is None:
                met = "?"
            else:
                ok = ratio >= min_ratio and (max_p99 is None or u_p99 <= max_p99)
                if scenario == "revmix":
                    ok = ok and stale == 0
                met = "**yes**" if ok else "**no**"
        ref_label = "" if ref_name == scenario else f" (vs {ref_name})"
        print(f"| {scenario}{ref_label} | {conns} | {fmt(u_rps, '.0f')} | {fmt(c_rps, '.0f')}"
              f" | {fmt(ratio, '.2f')}{'' if ratio is None else 'x'} | {fmt(u_p99, '.2f')} | {fmt(c_p99, '.2f')}"
              f" | {cpu(runs)} | {cpu(refs)} | {'-' if hit is None else f'{hit:.1f} %'} | {target} | {met} |")
    print()

    lines = []
    for c in facts.get("CHECK", []):
        lines.append(f"- revocation checker (fresh token: introspect, revoke, introspect again) during"
                     f" revmix round {c.get('round', '?')}: {c['trials']} trials, {c['violations']}"
                     f" stale answers, {c['errors']} errors")
    for v in facts.get("VERIFY", []):
        lines.append(f"- tokens wrk revoked in revmix round {v.get('round', '?')}: {v['checked']} checked,"
                     f" {v['inactive']} inactive, {v['violations']} active although revoked,"
                     f" {v['never_revoked']} never reached the server (in flight when wrk stopped)")
    for s in facts.get("RSS", []):
        peak = float(s["peak_mib"])
        verdict = "**yes**" if peak <= RSS_LIMIT_MIB else "**no**"
        lines.append(f"- RSS with {s['tokens']} tokens introspected once each (cache entries"
                     f" {s['entries']}): peak {peak:.1f} MiB (VmHWM {s['hwm_mib']} MiB, VmRSS after"
                     f" {s['rss_mib']} MiB); target <= {RSS_LIMIT_MIB:g} MiB: met? {verdict}")
    for d in facts.get("DELAY", []):
        lines.append(f"- cross-instance revocation delay (introspected at B, revoked at A, B polled):"
                     f" {d['trials']} trials, p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms, max"
                     f" {d['max_ms']} ms; {d['stale_first_polls']} trials saw at least one stale"
                     f" answer (at most {d['max_polls']} polls), {d['timeouts']} timeouts; B's cache"
                     f" lookups: {d.get('b_hit', '-')} hits, {d.get('b_miss', '-')} misses,"
                     f" {d.get('b_bypass', '-')} bypasses")
    if lines:
        print("### Revocation, memory and the second instance")
        print()
        print("\n".join(lines))
        print()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
