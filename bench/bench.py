#!/usr/bin/env python3
"""Custody's benchmark harness.

Every figure is a ratio or a percentile measured in one run, against a
baseline run side by side (interleaved rounds, median of each), because the
machine is shared and noisy. Build first: cargo build --release -p custody.

    bench/bench.py fingerprint   # file and directory hashing vs openssl, sha256sum, dirhash
    bench/bench.py ingest        # generic attestations/s over HTTP, p99 latency (wrk), SQLite
    bench/bench.py ingest-postgres  # the same against a throwaway local PostgreSQL
    bench/bench.py rss           # server RSS idle, and its growth during a 1 GiB upload
    bench/bench.py junit         # 30 MB JUnit report parsed and summarised vs Python junitparser (lxml)
    bench/bench.py reports       # 50 MB SARIF and SBOM, and a 10,000-component SBOM, ingested end to end
    bench/bench.py runtime       # reports of a 1,000-workload environment; 10,000 environments at ~170 reports/s
    bench/bench.py controls      # policies over 1,000 running artifacts, assert latency, webhook latency and fan-out
    bench/bench.py hostile       # the normal path with the limits on, side by side with a baseline binary
                                 # (CUSTODY_BASELINE=path), and one org's writes while another's policy runs at its budget
    bench/bench.py request-rss   # peak server RSS for one large SBOM summary and one oversized user_data
    bench/bench.py pages         # every web page over 1,000,000 change events and a flow of 10,000 trails
    bench/bench.py soak          # 10 minutes at 1,000 mixed requests/s (SQLite); soak-postgres: two replicas on PostgreSQL

The history queries over 10 million change events are a Rust benchmark:
    cargo bench -p custody-store --bench runtime_history
"""
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUSTODY = os.path.join(ROOT, "target", "release", "custody")
WORK = os.environ.get("CUSTODY_BENCH_DIR", "/tmp/custody-bench")
TOKEN = "bench-bootstrap-token-0123456789"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw).stdout.strip()


def timed(cmd):
    t = time.perf_counter()
    out = subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out


def compare(named_cmds, rounds):
    """Runs the commands interleaved, `rounds` times; returns median seconds and first output of each."""
    times = {n: [] for n, _ in named_cmds}
    outs = {}
    for _ in range(rounds):
        for name, cmd in named_cmds:
            dt, out = timed(cmd)
            times[name].append(dt)
            outs.setdefault(name, out)
    return {n: statistics.median(v) for n, v in times.items()}, outs


def make_big_file(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(os.urandom(n))
            left -= n


def make_tree(root, files, total):
    if os.path.isdir(root) and sum(len(f) for _, _, f in os.walk(root)) == files:
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(42)
    per = total // files
    for i in range(files):
        d = os.path.join(root, f"d{i % 40:02d}", f"s{(i // 40) % 25:02d}")
        os.makedirs(d, exist_ok=True)
        size = max(1, int(per * rng.uniform(0.5, 1.5)))
        with open(os.path.join(d, f"file{i:05d}.dat"), "wb") as f:
            f.write(rng.randbytes(size))


def warm(path):
    subprocess.run(f"find {path} -type f -print0 | xargs -0 cat > /dev/null", shell=True, check=True)


def bench_fingerprint():
    os.makedirs(WORK, exist_ok=True)
    big = os.path.join(WORK, "big.bin")
    tree = os.path.join(WORK, "tree")
    make_big_file(big, 1 << 30)
    make_tree(tree, 20000, 200 * 1000 * 1000)
    warm(big)
    warm(tree)

    print("## file: 1 GiB, page cache warm, median of 5 interleaved rounds")
    med, outs = compare(
        [
            ("custody", f"{CUSTODY} fingerprint {big} --artifact-type file"),
            ("openssl", f"openssl dgst -sha256 -r {big}"),
            ("sha256sum", f"sha256sum {big}"),
        ],
        5,
    )
    digests = {n: o.split()[0] for n, o in outs.items()}
    assert len(set(digests.values())) == 1, digests
    for n, t in med.items():
        print(f"  {n:10s} {t:7.3f} s  {1.0 / t:6.2f} GiB/s")
    print(f"  speed vs openssl   {med['openssl'] / med['custody']:.2f}x (target >= 0.8)")
    print(f"  speed vs sha256sum {med['sha256sum'] / med['custody']:.2f}x (target >= 6)")

    files = sum(len(f) for _, _, f in os.walk(tree))
    size = int(sh(f"du -sb {tree}").split()[0])
    print(f"\n## dir: {files} files, {size / 1e6:.0f} MB, page cache warm, median of 3 interleaved rounds")
    med, outs = compare(
        [
            ("custody", f"{CUSTODY} fingerprint {tree} --artifact-type dir"),
            ("dirhash", f"dirhash -a sha256 --allow-cyclic-links {tree}"),
            ("find|xargs sha256sum", f"find {tree} -type f -print0 | xargs -0 sha256sum"),
        ],
        3,
    )
    assert outs["custody"].strip() == outs["dirhash"].strip(), (outs["custody"], outs["dirhash"])
    for n, t in med.items():
        print(f"  {n:22s} {t:7.3f} s")
    print(f"  speed vs dirhash              {med['dirhash'] / med['custody']:.1f}x (target >= 8)")
    print(f"  speed vs find|xargs sha256sum {med['find|xargs sha256sum'] / med['custody']:.1f}x (target >= 4)")


class Server:
    def __init__(self, data_dir, extra=(), binary=None):
        self.binary = binary or CUSTODY
        env = dict(os.environ, CUSTODY_BOOTSTRAP_TOKEN=TOKEN, RUST_LOG="warn")
        self.p = subprocess.Popen(
            [self.binary, "server", "--listen", "127.0.0.1:0", "--data-dir", data_dir, *extra],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for line in self.p.stdout:
            m = re.match(r"custody server listening on (\S+)", line)
            if m:
                self.url = m.group(1)
                break
        else:
            raise SystemExit("server did not start")

    def custody(self, *args):
        env = dict(os.environ, CUSTODY_HOST=self.url, CUSTODY_API_TOKEN=TOKEN, CUSTODY_NO_CI_DETECT="1")
        return subprocess.run([self.binary, *args], check=True, capture_output=True, text=True, env=env).stdout

    def rss_kb(self, field="VmRSS"):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError(field)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=30)


def latency(wrk_out, pct):
    m = re.search(pct.replace("%", r"%") + r"\s+([\d.]+)(us|ms|s)", wrk_out)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]


class Postgres:
    """A throwaway PostgreSQL in a temporary directory (as scripts/test starts one)."""

    def __init__(self):
        pg_bin = sorted(d for d in (os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")))[-1]
        self.pg_ctl = os.path.join(pg_bin, "pg_ctl")
        self.dir = tempfile.mkdtemp(prefix="custody-pg-")
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_pg:
            shutil.chown(self.dir, "postgres")
        port = free_port()
        subprocess.run([*self.as_pg, os.path.join(pg_bin, "initdb"), "-D", f"{self.dir}/data", "-A", "trust",
                        "-U", "postgres", "--no-sync"], check=True, capture_output=True)
        subprocess.run([*self.as_pg, self.pg_ctl, "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {self.dir} -c max_connections=200", "start"],
                       check=True, capture_output=True)
        self.url = f"postgres://postgres@127.0.0.1:{port}/postgres"

    def stop(self):
        subprocess.run([*self.as_pg, self.pg_ctl, "-D", f"{self.dir}/data", "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_ingest_postgres():
    pg = Postgres()
    try:
        bench_ingest(["--database", pg.url], "PostgreSQL (local, fsync on)")
    finally:
        pg.stop()


def attest_lua(data):
    """A wrk script posting generic attestations (50 names, each request a
    new one), written into `data`; returns its path."""
    lua = os.path.join(data, "attest.lua")
    with open(lua, "w") as f:
        f.write(
            'wrk.method = "POST"\n'
            f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            'counter = 0\n'
            'request = function()\n'
            '  counter = counter + 1\n'
            '  local body = string.format(\'{"name":"check-%d","type":"generic","compliant":true,'
            '"annotations":{"run":"%d"}}\', counter % 50, counter)\n'
            '  return wrk.format(nil, nil, nil, body)\n'
            'end\n'
        )
    return lua


def bench_ingest(extra=(), backend="SQLite"):
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    data = tempfile.mkdtemp(prefix="custody-ingest-")
    s = Server(data, extra)
    try:
        s.custody("create", "flow", "load")
        s.custody("begin", "trail", "t", "--flow", "load")
        lua = attest_lua(data)
        url = f"{s.url}/api/v1/orgs/default/flows/load/trails/t/attestations"
        duration = os.environ.get("CUSTODY_BENCH_SECONDS", "20")
        print(f"## ingest: generic attestations over HTTP (JSON), {backend}, one node; load from wrk (1 thread) on loopback")
        total = 0
        for conns in (16, 32):
            out = sh(f"wrk -t1 -c{conns} -d{duration}s --latency -s {lua} {url}")
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            p50 = latency(out, "50%")
            p99 = latency(out, "99%")
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            total += int(re.search(r"(\d+) requests in", out).group(1))
            print(f"  {conns} connections: {rps:6.0f} attestations/s (target >= 2000), "
                  f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (target <= 25), errors {non2xx.group(1) if non2xx else 0}")
        print(f"  {total} attestations written, each with its ledger entry")
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)


def bench_rss():
    os.makedirs(WORK, exist_ok=True)
    big = os.path.join(WORK, "big.bin")
    make_big_file(big, 1 << 30)
    data = tempfile.mkdtemp(prefix="custody-rss-")
    s = Server(data)
    try:
        time.sleep(2)
        idle = s.rss_kb()
        s.custody("create", "flow", "f")
        s.custody("begin", "trail", "t", "--flow", "f")
        before = s.rss_kb()
        peak_before = s.rss_kb("VmHWM")
        t = time.perf_counter()
        s.custody("attest", "generic", "--name", "big", "--flow", "f", "--trail", "t", "--attachments", big)
        dt = time.perf_counter() - t
        peak = s.rss_kb("VmHWM")
        print("## server memory (release build, SQLite, embedded blob directory)")
        print(f"  idle RSS                      {idle / 1024:6.1f} MiB (target <= 60)")
        print(f"  RSS before upload             {before / 1024:6.1f} MiB (peak so far {peak_before / 1024:.1f})")
        print(f"  peak RSS during 1 GiB upload  {peak / 1024:6.1f} MiB: +{(peak - before) / 1024:.1f} MiB (target <= +32)")
        print(f"  upload took {dt:.1f} s ({1 / dt:.2f} GiB/s end to end through the CLI)")
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)


def make_junit(path, cases=200_000, per_suite=100):
    if os.path.exists(path):
        return
    rng = random.Random(7)
    with open(path, "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="load">\n')
        for s in range(cases // per_suite):
            f.write(f'  <testsuite name="com.example.module{s % 40}.Service{s}Test" tests="{per_suite}" '
                    f'timestamp="2026-10-01T10:{s % 60:02d}:00" time="{rng.uniform(1, 9):.3f}">\n')
            for c in range(per_suite):
                i = s * per_suite + c
                head = (f'    <testcase classname="com.example.module{s % 40}.Service{s}Test" '
                        f'name="test_{i}_handles_the_request_under_concurrent_load" time="{rng.uniform(0, 0.2):.4f}"')
                r = rng.random()
                if r < 0.01:
                    f.write(head + '>\n      <failure message="expected 200 but was 500" type="AssertionError">'
                            'AssertionError: expected 200 but was 500\n\tat Service.call(Service.java:42)</failure>\n'
                            '    </testcase>\n')
                elif r < 0.03:
                    f.write(head + '><skipped message="slow"/></testcase>\n')
                else:
                    f.write(head + '/>\n')
            f.write('  </testsuite>\n')
        f.write('</testsuites>\n')


JUNITPARSER = """
import sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
t = f = e = s = 0
for suite in xml:
    for case in suite:
        t += 1
        kinds = {type(r) for r in case.result}
        if Error in kinds: e += 1
        elif Failure in kinds: f += 1
        elif Skipped in kinds: s += 1
print(t, t - f - e - s, f, e, s)
"""


def peak_rss_kb(cmd):
    """Peak RSS of one run of cmd, in KiB."""
    wrapper = ("import resource, subprocess, sys; "
               "subprocess.run(sys.argv[1], shell=True, stdout=subprocess.DEVNULL, check=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    return int(sh(f"python3 -c '{wrapper}' {json.dumps(cmd)}"))


def bench_junit():
    os.makedirs(WORK, exist_ok=True)
    d = os.path.join(WORK, "junit")
    os.makedirs(d, exist_ok=True)
    report = os.path.join(d, "report.xml")
    make_junit(report)
    script = os.path.join(WORK, "junitparser_summary.py")
    with open(script, "w") as f:
        f.write(JUNITPARSER)
    size = os.path.getsize(report) / 1e6
    rounds = int(os.environ.get("CUSTODY_BENCH_ROUNDS", "5"))
    times, outs = compare([
        ("custody", f"{CUSTODY} parse junit --results-dir {d} --output json"),
        ("junitparser", f"python3 {script} {report}"),
    ], rounds)
    got = json.loads(outs["custody"])["data"]["results"]["totals"]
    want = outs["junitparser"].split()
    same = [str(got[k]) for k in ("tests", "passed", "failed", "errored", "skipped")] == want
    small = os.path.join(WORK, "junit-small")
    os.makedirs(small, exist_ok=True)
    make_junit(os.path.join(small, "report.xml"), cases=20_000)
    rss = peak_rss_kb(f"{CUSTODY} parse junit --results-dir {d} --output json")
    rss_small = peak_rss_kb(f"{CUSTODY} parse junit --results-dir {small} --output json")
    print(f"## junit: {size:.1f} MB, {got['tests']} test cases, parsed and summarised (median of {rounds})")
    print(f"  custody parse junit   {times['custody']:.3f} s")
    print(f"  junitparser (lxml)    {times['junitparser']:.3f} s")
    print(f"  ratio {times['junitparser'] / times['custody']:.1f}x (target >= 10x); same counts: {same}")
    print(f"  peak RSS {rss / 1024:.1f} MiB for {size:.0f} MB, {rss_small / 1024:.1f} MiB for a tenth of it (streaming)")


def make_sarif(path, target_mb=50):
    if os.path.exists(path):
        return
    rng = random.Random(11)
    rules = [{"id": f"rule/{i:03d}", "shortDescription": {"text": f"Rule {i}"},
              "defaultConfiguration": {"level": rng.choice(["error", "warning", "note"])}} for i in range(200)]
    results = []
    size = 0
    i = 0
    while size < target_mb * 1_000_000:
        r = {"ruleId": f"rule/{i % 200:03d}", "ruleIndex": i % 200,
             "message": {"text": f"Possible issue number {i}: " + "tainted data reaches a sensitive sink " * 3},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": f"src/module{i % 97}/file{i % 1013}.py"},
                                                 "region": {"startLine": i % 800 + 1, "endLine": i % 800 + 3}}}],
             "partialFingerprints": {"primaryLocationLineHash": f"{rng.getrandbits(64):016x}:1"}}
        if i % 10 == 0:
            r["level"] = "warning"
        results.append(r)
        size += len(json.dumps(r)) + 2
        i += 1
    doc = {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
           "runs": [{"tool": {"driver": {"name": "BenchScanner", "version": "1.0", "rules": rules}},
                     "invocations": [{"executionSuccessful": True}], "results": results}]}
    with open(path, "w") as f:
        json.dump(doc, f)


def make_cyclonedx(path, components=None, target_mb=None):
    if os.path.exists(path):
        return
    rng = random.Random(13)
    comps = []
    i = 0
    size = 0
    while (components and i < components) or (target_mb and size < target_mb * 1_000_000):
        name = f"package-{i}"
        c = {"type": "library", "bom-ref": f"pkg:npm/{name}@1.{i % 50}.{i % 7}", "name": name,
             "version": f"1.{i % 50}.{i % 7}", "purl": f"pkg:npm/{name}@1.{i % 50}.{i % 7}",
             "description": "A library used by the benchmark. " * 4,
             "hashes": [{"alg": "SHA-256", "content": f"{rng.getrandbits(256):064x}"},
                        {"alg": "SHA-512", "content": f"{rng.getrandbits(512):0128x}"}],
             "licenses": [{"license": {"id": rng.choice(["MIT", "Apache-2.0", "BSD-3-Clause", "ISC"])}}]}
        comps.append(c)
        size += 620
        i += 1
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6",
           "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79", "version": 1,
           "metadata": {"component": {"type": "application", "name": "bench-app", "bom-ref": "bench-app"}},
           "components": comps}
    with open(path, "w") as f:
        json.dump(doc, f)


def bench_reports():
    os.makedirs(WORK, exist_ok=True)
    sarif = os.path.join(WORK, "big.sarif")
    make_sarif(sarif)
    bom10k = os.path.join(WORK, "bom-10k.cdx.json")
    make_cyclonedx(bom10k, components=10_000)
    bom50 = os.path.join(WORK, "bom-50mb.cdx.json")
    make_cyclonedx(bom50, target_mb=50)
    data = tempfile.mkdtemp(prefix="custody-reports-")
    s = Server(data)
    rounds = int(os.environ.get("CUSTODY_BENCH_ROUNDS", "3"))
    try:
        s.custody("create", "flow", "f")
        s.custody("begin", "trail", "t", "--flow", "f")
        base = f"--flow f --trail t --host {s.url} --api-token {TOKEN}"
        print(f"## tool reports ingested end to end (CLI parse, upload, server judge and store), "
              f"release build, SQLite; median of {rounds}; baseline: the same file as a plain attachment")
        for label, kind, flag, path, target in [
            ("SARIF", "sarif", "--scan-results", sarif, 2.0),
            ("CycloneDX SBOM, 10,000 components", "sbom", "--file", bom10k, 1.0),
            ("CycloneDX SBOM", "sbom", "--file", bom50, 2.0),
        ]:
            mb = os.path.getsize(path) / 1e6
            times, _ = compare([
                ("report", f"{CUSTODY} attest {kind} --name r {flag} {path} {base}"),
                ("plain", f"{CUSTODY} attest generic --name g --attachments {path} {base}"),
            ], rounds)
            print(f"  {label}, {mb:.1f} MB: {times['report']:.2f} s (target <= {target:.0f} s); "
                  f"plain upload {times['plain']:.2f} s, ratio {times['report'] / times['plain']:.2f}x")
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)


def workloads(versions):
    """A Kubernetes environment's report body: one workload of one pod per
    entry of `versions`, at that version (a new version, a new fingerprint)."""
    arts = []
    for i, v in enumerate(versions):
        fp = f"{(i * 2654435761 + v * 0x9E3779B97F4A7C15) & 0xffffffffffffffff:016x}" * 4
        arts.append({
            "name": f"registry.example.com/team/svc-{i}:1.0.{v}",
            "fingerprint": fp,
            "instances": [{"id": f"svc-{i}-5f7d8c9b6-x2x9k", "started_at": 1700000000000,
                           "attributes": {"namespace": "prod", "owner": f"ReplicaSet/svc-{i}-5f7d8c9b6",
                                          "node": "node-a", "container": "app"}}],
        })
    return {"type": "k8s", "artifacts": arts, "interval_s": 60, "reporter": "bench"}


class Http:
    """Keep-alive JSON requests to the server, timed. A connection the
    server closed while idle (it closes those after --header-timeout) is
    opened again."""

    def __init__(self, url, token=TOKEN):
        import urllib.parse
        self.url = urllib.parse.urlparse(url)
        self.token = token
        self.connect()

    def connect(self):
        import http.client
        self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=600)

    def put(self, path, body, method="PUT"):
        import http.client
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        for attempt in (0, 1):
            t = time.perf_counter()
            try:
                self.conn.request(method, path, body=data, headers={
                    "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
                r = self.conn.getresponse()
                out = r.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                if attempt:
                    raise
                self.conn.close()
                self.connect()
        dt = time.perf_counter() - t
        if r.status >= 300:
            raise RuntimeError(f"{path}: {r.status} {out[:200]}")
        return dt, json.loads(out)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round((len(v) - 1) * p)))]


def db_counts(data_dir):
    import sqlite3
    db = sqlite3.connect(os.path.join(data_dir, "custody.db"))
    out = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
           for t in ("env_snapshots", "env_intervals", "runtime_artifacts", "env_coverage", "ledger")}
    db.close()
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_runtime():
    data = tempfile.mkdtemp(prefix="custody-runtime-")
    s = Server(data)
    n = int(os.environ.get("CUSTODY_BENCH_REPORTS", "300"))
    try:
        h = Http(s.url)
        path = "/api/v1/orgs/default/environments/big"
        h.put(path, {"type": "k8s"})
        versions = [0] * 1000
        base = json.dumps(workloads(versions)).encode()
        h.put(path + "/report", base)
        print(f"## runtime reports: one environment of 1,000 workloads ({len(base) // 1024} KiB JSON), "
              f"SQLite, one node; sequential requests on loopback, {n} each (latency seen by the client)")
        before = db_counts(data)
        times = [h.put(path + "/report", base)[0] * 1000 for _ in range(n)]
        after = db_counts(data)
        grew = {k: after[k] - before[k] for k in after if after[k] != before[k]}
        print(f"  unchanged: p50 {pct(times, .5):.2f} ms, p99 {pct(times, .99):.2f} ms (target <= 5 ms); "
              f"rows added: {grew} (one heartbeat ledger entry per report, nothing else)")
        # One redeploy per report: one workload stops, its next version starts.
        times = []
        for i in range(n):
            versions[i % 1000] += 1
            dt, r = h.put(path + "/report", workloads(versions))
            assert len(r["changes"]) == 2, r["changes"]
            times.append(dt * 1000)
        print(f"  one workload redeployed: p50 {pct(times, .5):.2f} ms, p99 {pct(times, .99):.2f} ms (target <= 50 ms)")
        times = []
        for i in range(max(n // 10, 10)):
            versions = [v + 1 for v in versions]
            dt, r = h.put(path + "/report", workloads(versions))
            assert len(r["changes"]) == 2000, len(r["changes"])
            times.append(dt * 1000)
        print(f"  all 1,000 redeployed: p50 {pct(times, .5):.2f} ms, p99 {pct(times, .99):.2f} ms")
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)
    bench_fleet()


def bench_fleet():
    import threading
    envs = int(os.environ.get("CUSTODY_BENCH_ENVS", "10000"))
    seconds = float(os.environ.get("CUSTODY_BENCH_SECONDS", "60"))
    rate = envs / 60.0
    data = tempfile.mkdtemp(prefix="custody-fleet-")
    s = Server(data)
    try:
        h = Http(s.url)
        bodies = [json.dumps(workloads([v] + [0] * 19)).encode() for v in range(2)]
        for e in range(envs):
            h.put(f"/api/v1/orgs/default/environments/env-{e}", {"type": "k8s"})
            h.put(f"/api/v1/orgs/default/environments/env-{e}/report", bodies[0])
        print(f"## fleet: {envs} environments of 20 workloads, each reporting every 60 s "
              f"({rate:.0f} reports/s, 1% of them changes) for {seconds:.0f} s, SQLite, one node")
        threads = 4
        lat, errors, sent = [], [], [0]
        lock = threading.Lock()
        start = time.perf_counter() + 0.5
        cpu0 = cpu_seconds(s.p.pid)

        def worker(k):
            c = Http(s.url)
            i = k
            while True:
                due = start + i / rate
                if due - start > seconds:
                    return
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                e = i % envs
                changed = (i // envs) % 2 if i % 100 == 0 else 0
                try:
                    dt, _ = c.put(f"/api/v1/orgs/default/environments/env-{e}/report", bodies[changed])
                    with lock:
                        lat.append(dt * 1000)
                        sent[0] += 1
                except Exception as x:
                    with lock:
                        errors.append(str(x))
                i += threads

        ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(s.p.pid) - cpu0
        print(f"  {sent[0] / wall:.0f} reports/s sustained, p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms, "
              f"errors {len(errors)}; server CPU {cpu / wall * 100:.0f}% of one core (target < 100%)")
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)


POLICY = """_schema: https://docs.kosli.com/schemas/policy/v1
artifacts:
  provenance:
    required: true
    exceptions:
      - if: ${{ matches(artifact.name, "^registry.example.com/vendor/.*") }}
  trail-compliance:
    required: true
  attestations:
    - name: unit-tests
      type: generic
      if: ${{ flow.tags.risk-level == "high" }}
"""


def with_provenance(h, versions, flow):
    """Reports every workload's fingerprint into its own trail of `flow`,
    with a compliant unit-tests attestation."""
    org = "/api/v1/orgs/default"
    h.put(f"{org}/flows", {"name": flow})
    h.put(f"{org}/flows/{flow}/tags", {"set": {"risk-level": "high"}}, method="PATCH")
    for a in workloads(versions)["artifacts"]:
        t = a["name"].rsplit("/", 1)[1].replace(":", "-")
        h.put(f"{org}/flows/{flow}/trails", {"name": t})
        h.put(f"{org}/flows/{flow}/trails/{t}/artifacts", {"name": "svc", "fingerprint": a["fingerprint"]}, method="POST")
        h.put(f"{org}/flows/{flow}/trails/{t}/attestations",
              {"name": "unit-tests", "type": "generic", "fingerprint": a["fingerprint"]}, method="POST")


def bench_controls():
    """Environment policies over 1,000 running artifacts, assert latency,
    and notification latency and fan-out."""
    import http.server
    import threading
    data = tempfile.mkdtemp(prefix="custody-controls-")
    s = Server(data)
    n = int(os.environ.get("CUSTODY_BENCH_REPORTS", "100"))
    org = "/api/v1/orgs/default"
    try:
        h = Http(s.url)
        versions = [0] * 1000
        for env in ("judged", "unjudged"):
            h.put(f"{org}/environments/{env}", {"type": "k8s"})
            h.put(f"{org}/environments/{env}/report", json.dumps(workloads(versions)).encode())
        with_provenance(h, versions, "svc")
        h.put(f"{org}/policies/prod", {"content": POLICY})
        h.put(f"{org}/environments/judged/policies", {"policy_names": ["prod"]}, method="POST")
        print(f"## controls: an environment of 1,000 running artifacts, each with its own trail, "
              f"judged by a policy v1 (provenance, trail compliance, one conditional attestation); SQLite, one node")
        # Side by side: the same redeploy into an environment without a
        # policy (the baseline) and one with (a full evaluation each time).
        judged, unjudged = [], []
        for i in range(n):
            for env, out in (("judged", judged), ("unjudged", unjudged)):
                v = list(versions)
                v[i % 1000] = 0 if i % 2 else 1
                dt, r = h.put(f"{org}/environments/{env}/report", workloads(v))
                out.append(dt * 1000)
        extra = [a - b for a, b in zip(judged, unjudged)]
        print(f"  one redeploy, report latency: with policy p50 {pct(judged, .5):.1f} ms p99 {pct(judged, .99):.1f} ms; "
              f"without p50 {pct(unjudged, .5):.1f} ms p99 {pct(unjudged, .99):.1f} ms; "
              f"judging the new snapshot adds p50 {pct(extra, .5):.1f} ms p99 {pct(extra, .99):.1f} ms")
        r = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{s.url}{org}/environments/judged/compliance", headers={"Authorization": f"Bearer {TOKEN}"})).read())
        fails = sum(1 for p in r["policies"] for a in p["artifacts"] if not a["compliant"])
        print(f"  last evaluation: {r['status']}, {fails} of 1000 artifacts failing")
        # Judging the whole environment (what any input but a snapshot
        # causes): re-allowlisting a fingerprint, timed side by side with
        # the same request on the environment without a policy.
        whole, base = [], []
        for i in range(max(n // 5, 10)):
            for env, out in (("judged", whole), ("unjudged", base)):
                dt, _ = h.put(f"{org}/environments/{env}/allowlist",
                              {"fingerprint": "ab" * 32, "reason": f"round {i}"}, method="POST")
                out.append(dt * 1000)
        extra = [a - b for a, b in zip(whole, base)]
        print(f"  whole environment judged (1,000 artifacts read and evaluated): p50 {pct(whole, .5):.1f} ms "
              f"p99 {pct(whole, .99):.1f} ms; the same write without a policy p50 {pct(base, .5):.1f} ms; "
              f"evaluation adds p50 {pct(extra, .5):.1f} ms p99 {pct(extra, .99):.1f} ms (target <= 100 ms)")
        fps = [a["fingerprint"] for a in workloads(versions)["artifacts"]]
        lat = []
        for i in range(1000):
            dt, r = h.put(f"{org}/assert/artifact", {"fingerprint": fps[i], "environment": "judged"}, method="POST")
            lat.append(dt * 1000)
        print(f"  assert artifact --environment (policy evaluated on the request): p50 {pct(lat, .5):.2f} ms, "
              f"p99 {pct(lat, .99):.2f} ms (target <= 10 ms), client-side over loopback")
        lat = []
        for i in range(1000):
            dt, r = h.put(f"{org}/assert/artifact", {"fingerprint": fps[i], "flow": "svc"}, method="POST")
            lat.append(dt * 1000)
        print(f"  assert artifact --flow: p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms")

        # Notifications: arrival time at a loopback receiver minus the
        # moment the report that caused it was answered.
        arrivals = []
        lock = threading.Lock()

        class Hook(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    arrivals.append((time.perf_counter(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        hook = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        h.put(f"{org}/environments/small", {"type": "k8s"})
        h.put(f"{org}/actions/latency", {"environments": ["small"], "triggers": ["artifact-started"],
                                         "target": {"type": "webhook", "url": hook}, "secret": "k"})
        lat = []
        for i in range(200):
            arrivals.clear()
            dt, r = h.put(f"{org}/environments/small/report", workloads([i]))
            sent = time.perf_counter()
            deadline = sent + 5
            while not arrivals and time.perf_counter() < deadline:
                time.sleep(0.0005)
            lat.append((arrivals[0][0] - sent) * 1000)
        print(f"  webhook, report answered -> body at the receiver: p50 {pct(lat, .5):.1f} ms, "
              f"p99 {pct(lat, .99):.1f} ms (target p50 <= 100 ms)")
        # Fan-out: 20 actions on one environment, 100 changing reports.
        for k in range(20):
            h.put(f"{org}/actions/fan-{k}", {"environments": ["small"], "triggers": ["artifact-stopped"],
                                            "target": {"type": "webhook", "url": hook}})
        arrivals.clear()
        t0 = time.perf_counter()
        reports = 100
        for i in range(reports):
            h.put(f"{org}/environments/small/report", workloads([1000 + i]))
        want = reports * 20
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            with lock:
                got = sum(1 for _, b in arrivals if b["trigger"] == "artifact-stopped")
            if got >= want:
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        print(f"  fan-out: {reports} reports x 20 actions = {want} webhook deliveries in {wall:.2f} s "
              f"= {want / wall:.0f} deliveries/s end to end (target >= 1,000 events/s)")
        srv.shutdown()
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)


# A Rego policy that runs to the sandbox's time limit on every artifact
# (nested loops: CPU without memory), guarded so that the empty-input check
# at creation passes.
HEAVY_REGO = """package policy

import rego.v1

allow if {
    input.artifact.name
    count([1 | some i in numbers.range(1, 20000); some j in numbers.range(1, 20000); i * j < 0]) > 0
}
"""


def bench_hostile():
    """Issue 11's budgets on the normal path, side by side with a baseline
    binary (CUSTODY_BASELINE, e.g. a build of the commit before): ingest,
    a 1,000-workload heartbeat, a whole-environment judgement. Then one
    organisation's writes while another's Rego policy runs at its budget."""
    import threading
    baseline = os.environ.get("CUSTODY_BASELINE")
    binaries = [("this build", CUSTODY)] + ([("baseline", baseline)] if baseline else [])
    if not baseline:
        print("  (CUSTODY_BASELINE not set: no side-by-side baseline)")
    rounds = int(os.environ.get("CUSTODY_BENCH_ROUNDS", "3"))
    secs = os.environ.get("CUSTODY_BENCH_SECONDS", "8")
    org = "/api/v1/orgs/default"
    servers = {}
    try:
        for name, binary in binaries:
            data = tempfile.mkdtemp(prefix="custody-hostile-")
            s = Server(data, binary=binary)
            h = Http(s.url)
            s.custody("create", "flow", "load")
            s.custody("begin", "trail", "t", "--flow", "load")
            versions = [0] * 1000
            for env in ("beat", "judged"):
                h.put(f"{org}/environments/{env}", {"type": "k8s"})
                h.put(f"{org}/environments/{env}/report", json.dumps(workloads(versions)).encode())
            with_provenance(h, versions, "svc")
            h.put(f"{org}/policies/prod", {"content": POLICY})
            h.put(f"{org}/environments/judged/policies", {"policy_names": ["prod"]}, method="POST")
            lua = attest_lua(data)
            servers[name] = (s, h, data, lua, json.dumps(workloads(versions)).encode())
        results = {name: {"rps": [], "ingest_p99": [], "beat": [], "whole": []} for name, _ in binaries}
        print(f"## hostile: the normal path with every limit on, {rounds} interleaved rounds per build (SQLite)")
        for r in range(rounds):
            for name, _ in binaries:
                s, h, data, lua, beat = servers[name]
                url = f"{s.url}{org}/flows/load/trails/t/attestations"
                out = sh(f"wrk -t1 -c16 -d{secs}s --latency -s {lua} {url}")
                results[name]["rps"].append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
                results[name]["ingest_p99"].append(latency(out, "99%"))
                results[name]["whole"] += [h.put(f"{org}/environments/judged/allowlist",
                                                 {"fingerprint": "ab" * 32, "reason": f"round {r} {i}"},
                                                 method="POST")[0] * 1000 for i in range(10)]
        # Heartbeats: many, interleaved in small rounds, for a stable p99.
        for r in range(20):
            for name, _ in binaries:
                s, h, data, lua, beat = servers[name]
                results[name]["beat"] += [h.put(f"{org}/environments/beat/report", beat)[0] * 1000
                                          for _ in range(100)]
        for name, _ in binaries:
            x = results[name]
            print(f"  {name}: ingest {statistics.median(x['rps']):.0f} attestations/s (target >= 2000), "
                  f"p99 {statistics.median(x['ingest_p99']):.1f} ms (target <= 25); "
                  f"1,000-workload heartbeat p50 {pct(x['beat'], .5):.2f} ms p99 {pct(x['beat'], .99):.2f} ms (target <= 5); "
                  f"whole environment judged p50 {pct(x['whole'], .5):.1f} ms p99 {pct(x['whole'], .99):.1f} ms (target <= 100)")
        if baseline:
            a, b = results["this build"], results["baseline"]
            print(f"  ratios this build / baseline: ingest rate {statistics.median(a['rps']) / statistics.median(b['rps']):.2f}x, "
                  f"heartbeat p99 {pct(a['beat'], .99) / pct(b['beat'], .99):.2f}x, "
                  f"whole judgement p99 {pct(a['whole'], .99) / pct(b['whole'], .99):.2f}x")

        # Fairness: org "default" keeps an environment of 200 artifacts
        # judged by a policy that runs every artifact to its time limit;
        # org "other" makes ordinary writes meanwhile.
        print("## hostile: org 'other' writes while org 'default' runs a Rego policy at its budget (SQLite)")
        for name, _ in binaries:
            s, h, data, lua, beat = servers[name]
            key = json.loads(s.custody("create", "org", "other", "--output", "json"))["api_key"]
            o = Http(s.url, key)
            o.put("/api/v1/orgs/other/flows", {"name": "web"})
            o.put("/api/v1/orgs/other/flows/web/trails", {"name": "t"})
            pol = os.path.join(data, "heavy.rego")
            with open(pol, "w") as f:
                f.write(HEAVY_REGO)
            s.custody("create", "policy", "heavy", pol, "--type", "rego")
            h.put(f"{org}/environments/heavy", {"type": "k8s"})
            h.put(f"{org}/environments/heavy/policies", {"policy_names": ["heavy"]}, method="POST")
            stop = threading.Event()
            judged = [0]

            def tenant():
                hh = Http(s.url)
                v = [0] * 200
                while not stop.is_set():
                    v[judged[0] % 200] += 1
                    hh.put(f"{org}/environments/heavy/report", workloads(v))
                    judged[0] += 1

            t = threading.Thread(target=tenant, daemon=True)
            t.start()
            time.sleep(1)
            lat = []
            t0 = time.perf_counter()
            window = float(os.environ.get("CUSTODY_BENCH_WINDOW", "30"))
            i = 0
            while time.perf_counter() - t0 < window:
                i += 1
                dt, _ = o.put("/api/v1/orgs/other/flows/web/trails/t/attestations",
                              {"name": f"check-{i % 20}", "type": "generic"}, method="POST")
                lat.append(dt * 1000)
            stop.set()
            print(f"  {name}: {len(lat)} writes by 'other' in {window:.0f} s while 'default' had {judged[0]} snapshot(s) "
                  f"judged; p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms, max {max(lat):.0f} ms (target p99 <= 50 ms)")
        bench_request_rss(binaries)
    finally:
        for s, h, data, lua, beat in servers.values():
            try:
                s.stop()
            except Exception:
                s.p.kill()
            shutil.rmtree(data, ignore_errors=True)


def pages_fingerprint(i, v):
    return workloads([0] * i + [v])["artifacts"][i]["fingerprint"]


def bench_pages():
    """The web UI's pages, timed over a history of 1,000,000 change events
    in one environment and a flow of 10,000 trails, side by side with
    /healthz (the server's floor: routing, one connection, no store)."""
    import http.client
    import threading
    import urllib.parse
    services = 100
    reports = int(os.environ.get("CUSTODY_BENCH_PAGE_REPORTS", "10000"))
    trails = int(os.environ.get("CUSTODY_BENCH_TRAILS", "10000"))
    rounds = int(os.environ.get("CUSTODY_BENCH_ROUNDS", "40"))
    # Each report redeploys half the services to their next version: 50
    # stop and 50 start, 100 change events. Versions cycle through 100,
    # so 10,000 fingerprints run again and again; each is built by a trail.
    cycle = 100
    data = tempfile.mkdtemp(prefix="custody-pages-")
    s = Server(data)
    org = "/api/v1/orgs/default"
    try:
        h = Http(s.url)
        t0 = time.perf_counter()
        h.put(f"{org}/flows", {"name": "big"})
        commit_time = int(time.time()) - 86400

        failed = []

        def build(k):
            try:
                build_half(k)
            except Exception as x:
                failed.append(x)

        def build_half(k):
            c = Http(s.url)
            for n in range(k, trails, 2):
                i, v = n % services, (n // services) % cycle
                t = f"svc-{i}-v{n // services}"
                sha = f"{n:040x}"
                c.put(f"{org}/flows/big/trails", {"name": t, "git_commit_info": {
                    "sha1": sha, "message": f"change {n}", "author": "Dev <dev@example.com>",
                    "timestamp": commit_time + n, "branch": "main"}})
                c.put(f"{org}/flows/big/trails/{t}/artifacts", {
                    "name": "image", "fingerprint": pages_fingerprint(i, v),
                    "git_commit": sha}, method="POST")

        ts = [threading.Thread(target=build, args=(k,)) for k in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if failed:
            raise failed[0]
        built = time.perf_counter() - t0
        h.put(f"{org}/environments/prod", {"type": "k8s"})
        versions = [0] * services
        t0 = time.perf_counter()
        events = 0
        for r in range(reports + 1):
            if r:
                half = (r % 2) * (services // 2)
                for i in range(half, half + services // 2):
                    versions[i] += 1
            body = workloads([v % cycle for v in versions])
            _, got = h.put(f"{org}/environments/prod/report", body)
            events += len(got["changes"])
        reported = time.perf_counter() - t0
        h.put(f"{org}/policies/provenance", {"content": POLICY})
        h.put(f"{org}/environments/prod/policies", {"policy_names": ["provenance"]}, method="POST")
        print(f"## web pages: prod has {events:,} change events in {reports:,} snapshots of {services} services; "
              f"flow 'big' has {trails:,} trails (built in {built:.0f} s, reported in {reported:.0f} s); SQLite, release build")

        # Signed in as a browser is: the sign-in form's CSRF cookie, then the key.
        u = urllib.parse.urlparse(s.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        conn.request("GET", "/signin")
        r = conn.getresponse()
        r.read()
        csrf = re.search(r"custody_signin=([^;]+)", r.getheader("Set-Cookie")).group(1)
        form = urllib.parse.urlencode({"api_key": TOKEN, "csrf": csrf}).encode()
        conn.request("POST", "/signin", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"custody_signin={csrf}"})
        r = conn.getresponse()
        r.read()
        session = re.search(r"custody_session=([^;]+)", r.getheader("Set-Cookie")).group(1)
        cookie = {"Cookie": f"custody_session={session}"}

        def get(path):
            t = time.perf_counter()
            conn.request("GET", path, headers=cookie)
            r = conn.getresponse()
            body = r.read()
            dt = (time.perf_counter() - t) * 1000
            if r.status not in (200, 303):
                raise RuntimeError(f"{path}: {r.status} {body[:300]}")
            return dt, body

        if os.environ.get("CUSTODY_BENCH_HOLD"):  # keep it up, to look into a slow page
            print(f"  holding: {s.url} in {data}, cookie custody_session={session}", flush=True)
            time.sleep(float(os.environ["CUSTODY_BENCH_HOLD"]))
        size = h.put(f"{org}/ledger/entries?from=0&to=0", b"", method="GET")[1]["size"]
        n = trails // 2 + 7
        trail, fp = f"svc-{n % services}-v{n // services}", pages_fingerprint(n % services, (n // services) % cycle)
        w = "/orgs/default"
        mid = reports // 2
        pages = [
            ("environments overview", f"{w}/environments"),
            ("environment now (running, timeline, changes, policies)", f"{w}/environments/prod"),
            (f"environment at snapshot #{mid}", f"{w}/environments/prod?snapshot={mid}"),
            ("environment, a week's timeline", f"{w}/environments/prod?from=7.days.ago"),
            ("change log, first page", f"{w}/environments/prod/events"),
            ("change log, page 10,000 (deepest)", f"{w}/environments/prod/events?page={events // 100}"),
            ("snapshots, page 100", f"{w}/environments/prod/snapshots?page=100"),
            (f"diff #{reports // 10} with #{reports - 1}", f"{w}/environments/prod/diff?first={reports // 10}&second={reports - 1}"),
            ("flows", f"{w}/flows"),
            ("flow of 10,000 trails, page 1", f"{w}/flows/big"),
            ("flow of 10,000 trails, last page", f"{w}/flows/big?page={trails // 50}"),
            ("trail", f"{w}/flows/big/trails/{trail}"),
            ("artifact (provenance, runs across environments)", f"{w}/artifacts/{fp}"),
            ("search by fingerprint prefix", f"{w}/search?q={fp[:12]}"),
            ("search by artifact name", f"{w}/search?q=registry.example.com/team/svc-{n % services}"),
            ("DORA metrics, 30 days", f"{w}/dora"),
            ("controls", f"{w}/controls"),
            ("policy", f"{w}/policies/provenance"),
            ("ledger", f"{w}/ledger"),
            (f"ledger entry {size // 2} with its inclusion proof", f"{w}/ledger/{size // 2}"),
        ]
        times = {name: [] for name, _ in pages}
        floor = []
        for _, path in pages:  # warm the page cache once
            get(path)
        for _ in range(rounds):
            for name, path in pages:
                floor.append(get("/healthz")[0])
                times[name].append(get(path)[0])
        f50, f99 = pct(floor, .5), pct(floor, .99)
        print(f"  {rounds} rounds, pages interleaved with /healthz (p50 {f50:.2f} ms, p99 {f99:.2f} ms); "
              "latency seen by the client over loopback, an upper bound of server time")
        print("  | Page | p50 ms | p99 ms | p50 / healthz | target p99 |")
        print("  |---|---|---|---|---|")
        worst = 0
        for name, _ in pages:
            p50, p99 = pct(times[name], .5), pct(times[name], .99)
            worst = max(worst, p99)
            print(f"  | {name} | {p50:.1f} | {p99:.1f} | {p50 / f50:.0f}x | {'✅' if p99 <= 50 else '❌'} ≤ 50 |")
        print(f"  slowest p99: {worst:.1f} ms")
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)


def bench_request_rss(binaries):
    """Peak server RSS growth for one large request, on a fresh server each:
    a legitimate SBOM summary of ~65 MB, and an attestation whose
    free-form user_data is ~32 MB of small values (refused by this build)."""
    import http.client
    import urllib.parse
    n = int(os.environ.get("CUSTODY_BENCH_COMPONENTS", "900000"))
    comps = ",".join(
        f'{{"name":"pkg-{i}","version":"1.{i % 97}.{i % 13}","purl":"pkg:npm/pkg-{i}@1.{i % 97}.{i % 13}"}}'
        for i in range(n))
    sbom = (f'{{"name":"app.sbom","type":"sbom","results":{{"format":"cyclonedx","encoding":"json",'
            f'"spec_version":"1.5","component_count":{n},"components":[{comps}]}}}}').encode()
    # Many small values: what a generic JSON tree costs most for.
    zeros = "[" + "0," * (len(sbom) // 4) + "0]"
    user = f'{{"name":"g","type":"generic","user_data":{{"blob":{zeros}}}}}'.encode()
    print(f"## hostile: peak server RSS growth for one request (SQLite, a fresh server each)")
    for name, binary in binaries:
        for what, body in (("SBOM summary", sbom), ("user_data", user)):
            data = tempfile.mkdtemp(prefix="custody-rss-")
            s = Server(data, binary=binary)
            try:
                s.custody("create", "flow", "f")
                s.custody("begin", "trail", "t", "--flow", "f")
                before = s.rss_kb("VmHWM")
                u = urllib.parse.urlparse(s.url)
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
                t = time.perf_counter()
                c.request("POST", "/api/v1/orgs/default/flows/f/trails/t/attestations", body=body,
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                dt = time.perf_counter() - t
                grew = (s.rss_kb("VmHWM") - before) * 1024
                print(f"  {name}, {what} of {len(body) / 2**20:.0f} MiB: HTTP {r.status} in {dt:.1f} s; "
                      f"peak RSS grew {grew / 2**20:.0f} MiB = {grew / len(body):.2f}x the body (target <= 3x)")
            finally:
                s.stop()
                shutil.rmtree(data, ignore_errors=True)


# Trails of builds; the first SOAK_RUNNING of them are what the
# environments run, so about one attestation in five is about a running
# artifact (late evidence) and the rest about new builds.
SOAK_TRAILS = 1000
SOAK_RUNNING = 200
SOAK_ENVS = 10
SOAK_WORKLOADS = 50


def soak_fp(trail):
    return f"{(trail * 0x9E3779B97F4A7C15 + 12345) & 0xffffffffffffffff:016x}" * 4


def soak_report(env, k):
    """Environment `env`'s report for slot `k`: its 50 workloads, one of
    them redeployed (to another trail's artifact) each time."""
    arts = []
    for i in range(SOAK_WORKLOADS):
        trail = (env * SOAK_WORKLOADS + i + (k // SOAK_ENVS if i == k % SOAK_WORKLOADS else 0)) % SOAK_RUNNING
        arts.append({"name": f"registry.example.com/team/svc-{i}:{trail}", "fingerprint": soak_fp(trail),
                     "instances": [{"id": f"svc-{i}-{trail}", "started_at": 1700000000000,
                                    "attributes": {"namespace": "prod", "node": "node-a", "container": "app"}}]})
    return json.dumps({"type": "k8s", "artifacts": arts, "interval_s": 60, "reporter": "soak"}).encode()


# One slot in twenty of each kind (the mix): the kinds a pipeline, a
# reporter, a gate and a person looking cause.
SOAK_MIX = (["attest"] * 6 + ["snapshot"] * 1 + ["assert-env", "assert-flow"] * 2
            + ["get-trail", "get-snapshot", "what-ran-at", "search", "list-trails"] * 2 + ["healthz"])


def soak_request(k, started):
    org = "/api/v1/orgs/default"
    only = os.environ.get("CUSTODY_BENCH_SOAK_ONLY")
    kind = only or SOAK_MIX[(k * 7) % len(SOAK_MIX)]
    trail = (k * 31) % SOAK_TRAILS
    env = (k * 13) % SOAK_ENVS
    if kind == "attest":
        body = json.dumps({"name": f"check-{k % 20}", "type": "generic", "fingerprint": soak_fp(trail),
                           "compliant": k % 17 != 0, "annotations": {"slot": str(k)}}).encode()
        return kind, "POST", f"{org}/flows/soak/trails/t{trail}/attestations", body
    if kind == "snapshot":
        return kind, "PUT", f"{org}/environments/prod-{env}/report", soak_report(env, k)
    if kind == "assert-env":
        body = json.dumps({"fingerprint": soak_fp(trail % SOAK_RUNNING), "environment": f"prod-{env}"}).encode()
        return kind, "POST", f"{org}/assert/artifact", body
    if kind == "assert-flow":
        return kind, "POST", f"{org}/assert/artifact", json.dumps({"fingerprint": soak_fp(trail), "flow": "soak"}).encode()
    if kind == "get-trail":
        return kind, "GET", f"{org}/flows/soak/trails/t{trail}", None
    if kind == "get-snapshot":
        return kind, "GET", f"{org}/environments/prod-{env}/snapshot", None
    if kind == "what-ran-at":
        ago = 1 + k % max(1, int(time.time() - started) or 1)
        return kind, "GET", f"{org}/environments/prod-{env}/snapshot?at=%40%7B{ago}.seconds.ago%7D", None
    if kind == "search":
        return kind, "GET", f"{org}/search/{soak_fp(trail)}", None
    if kind == "list-trails":
        return kind, "GET", f"{org}/flows/soak/trails?page={1 + k % 4}&per_page=50", None
    return kind, "GET", "/healthz", None


def soak_worker(urls, rate, seconds, first, stride, threads, t0, out_path):
    """One load process: `threads` threads, open loop. Slot k is due at
    t0 + k/rate; its latency counts from when it was due, so a slow answer
    delays the slots queued behind it and shows (no coordinated omission)."""
    import http.client
    import threading
    import urllib.parse
    results = []
    lock = threading.Lock()

    def run(offset):
        conns = {}
        mine = []
        k = first + offset * stride
        step = stride * threads
        while True:
            due = t0 + k / rate
            if due - t0 >= seconds:
                break
            now = time.time()
            if due > now:
                time.sleep(due - now)
            u = urllib.parse.urlparse(urls[k % len(urls)])
            kind, method, path, body = soak_request(k, t0)
            status = 0
            sent = time.time()
            for attempt in (0, 1):
                c = conns.get(u.port) or http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                conns[u.port] = c
                try:
                    c.request(method, path, body=body, headers={
                        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    status = r.status
                    break
                except (OSError, http.client.HTTPException):
                    c.close()
                    conns.pop(u.port, None)
                    if attempt:
                        status = -1
            done = time.time()
            mine.append((kind, int(due - t0), (done - due) * 1000, (done - sent) * 1000, status, k % len(urls)))
            k += step
        with lock:
            results.extend(mine)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with open(out_path, "w") as f:
        json.dump(results, f)


def soak_setup(url):
    h = Http(url)
    org = "/api/v1/orgs/default"
    h.put(f"{org}/flows", {"name": "soak"})
    for t in range(SOAK_TRAILS):
        h.put(f"{org}/flows/soak/trails", {"name": f"t{t}"})
        h.put(f"{org}/flows/soak/trails/t{t}/artifacts", {"name": "svc", "fingerprint": soak_fp(t)}, method="POST")
    h.put(f"{org}/policies/prod", {"content": POLICY})
    for e in range(SOAK_ENVS):
        h.put(f"{org}/environments/prod-{e}", {"type": "k8s"})
        h.put(f"{org}/environments/prod-{e}/policies", {"policy_names": ["prod"]}, method="POST")
        h.put(f"{org}/environments/prod-{e}/report", soak_report(e, 0))


def soak_run(servers, label):
    """Drives `servers` (one or more replicas of one store) for
    CUSTODY_BENCH_SOAK_SECONDS (600) at CUSTODY_BENCH_SOAK_RATE (1,000)
    requests/s from two load processes, sampling each server's RSS."""
    import multiprocessing
    seconds = int(os.environ.get("CUSTODY_BENCH_SOAK_SECONDS", "600"))
    rate = int(os.environ.get("CUSTODY_BENCH_SOAK_RATE", "1000"))
    procs, threads = 2, 32
    urls = [s.url for s in servers]
    soak_setup(urls[0])
    t0 = time.time() + 1
    outs = [os.path.join(WORK, f"soak-{i}.json") for i in range(procs)]
    os.makedirs(WORK, exist_ok=True)
    ps = [multiprocessing.Process(target=soak_worker, args=(urls, rate, seconds, i, procs, threads, t0, outs[i]))
          for i in range(procs)]
    for p in ps:
        p.start()
    rss = []  # (second, [kB per server])
    cpu0 = [cpu_seconds(s.p.pid) for s in servers]
    while any(p.is_alive() for p in ps):
        time.sleep(5)
        rss.append((time.time() - t0, [s.rss_kb() for s in servers]))
    for p in ps:
        p.join()
    cpu = [cpu_seconds(s.p.pid) - c for s, c in zip(servers, cpu0)]
    load_cpu = os.times().children_user + os.times().children_system
    results = []
    for o in outs:
        with open(o) as f:
            results.extend(json.load(f))
    total = len(results)
    errors = [r for r in results if not 200 <= r[4] < 300]
    print(f"## soak: {label}; {rate} requests/s for {seconds} s from {procs} load processes x {threads} threads, "
          f"open loop (latency counted from each request's due time)")
    print(f"  {total} requests ({total / seconds:.0f}/s achieved), errors {len(errors)}; "
          f"the load processes used {load_cpu / seconds * 100:.0f}% of one core (the machine has {os.cpu_count()})"
          + (f" (first: {errors[0]})" if errors else ""))
    print(f"  {'kind':13s} {'count':>7s} {'p50 ms':>8s} {'p99 ms':>8s} {'p99.9':>8s} {'max':>8s}")
    kinds = sorted({r[0] for r in results}, key=lambda k: SOAK_MIX.index(k) if k in SOAK_MIX else 0)
    for kind in kinds + ["all"]:
        lat = [r[2] for r in results if kind in ("all", r[0])]
        print(f"  {kind:13s} {len(lat):7d} {pct(lat, .5):8.2f} {pct(lat, .99):8.2f} {pct(lat, .999):8.2f} {max(lat):8.1f}")
    print("  p99 of all requests by minute: " + ", ".join(
        f"{pct([r[2] for r in results if r[1] // 60 == m], .99):.1f}" for m in range(max(1, seconds // 60))))
    for i, s in enumerate(servers):
        series = [kb[i] for t, kb in rss]
        settled = [kb[i] for t, kb in rss if t >= 60] or series
        growth = (settled[-1] - settled[0]) / settled[0] * 100
        print(f"  server {i + 1}: RSS after the first minute {settled[0] / 1024:.1f} MiB, at the end "
              f"{settled[-1] / 1024:.1f} MiB ({growth:+.1f}%, target <= +10%), peak {max(series) / 1024:.1f} MiB; "
              f"CPU {cpu[i] / seconds * 100:.0f}% of one core")
    return results


def bench_soak():
    data = tempfile.mkdtemp(prefix="custody-soak-")
    s = Server(data)
    try:
        soak_run([s], "SQLite, one server")
        print(f"  ledger after the soak: {db_counts(data)['ledger']} entries")
    finally:
        s.stop()
        shutil.rmtree(data, ignore_errors=True)


def bench_soak_postgres():
    pg = Postgres()
    data = [tempfile.mkdtemp(prefix="custody-soak-") for _ in range(2)]
    servers = []
    try:
        blobs = f"file://{data[0]}/shared-blobs"
        first = Server(data[0], ["--database", pg.url, "--blob-store", blobs])
        servers.append(first)
        servers.append(Server(data[1], ["--database", pg.url, "--blob-store", blobs,
                                        "--secret-key-file", f"{data[0]}/secret.key",
                                        "--signing-key", f"{data[0]}/ledger-signing.key"]))
        soak_run(servers, "PostgreSQL (local, fsync on), two replicas, each request to one of them in turn")
    finally:
        for s in servers:
            s.stop()
        pg.stop()
        for d in data:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if not os.path.exists(CUSTODY):
        raise SystemExit("build first: cargo build --release -p custody")
    which = sys.argv[1:] or ["fingerprint", "ingest", "rss"]
    for w in which:
        {
            "fingerprint": bench_fingerprint,
            "ingest": bench_ingest,
            "ingest-postgres": bench_ingest_postgres,
            "rss": bench_rss,
            "junit": bench_junit,
            "reports": bench_reports,
            "runtime": bench_runtime,
            "fleet": bench_fleet,
            "controls": bench_controls,
            "hostile": bench_hostile,
            "pages": bench_pages,
            "soak": bench_soak,
            "soak-postgres": bench_soak_postgres,
            "request-rss": lambda: bench_request_rss(
                [("this build", CUSTODY)]
                + ([("baseline", os.environ["CUSTODY_BASELINE"])] if os.environ.get("CUSTODY_BASELINE") else [])),
        }[w]()
        print()
