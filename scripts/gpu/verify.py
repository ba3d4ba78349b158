#!/usr/bin/env python3
"""The parts of scripts/gpu/verify.sh that are easier in Python: judging the
error paths and parity, talking HTTP without curl, and the report.

    verify.py tag RECORDS key=value ...          JSON lines on stdin, tagged, appended
    verify.py expect-failure [--env K=V ...] RECORDS NAME NEEDLE -- COMMAND ...
    verify.py parity RECORDS MODEL REF_JSONL DEV_JSONL DEVICE DTYPE BOUND
    verify.py get URL                            body to stdout; exit 1 unless 200
    verify.py wait-ready URL SECONDS PID         until URL answers 200 (or PID exits)
    verify.py post-image URL FILE                one predict request; exit 1 unless 200
    verify.py batch-stats URL MODEL              "<images> <batches>" from /metrics
    verify.py http RECORDS LOADGEN_JSON key=value ... --before 'S C' --after 'S C'
    verify.py finish OUT                         OUT/report.json and OUT/report.md

Standard library only (the GPU machine has no venv, and none of this needs
torch). Values given as key=value are parsed as JSON when they parse.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

# The JSON-lines helpers of make bench; beside this script in the bundle too.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
from record import append, parse_fields  # noqa: E402

# Targets for seresnext50 on an H100/H200-class GPU (issue 10).
TARGET_INPROCESS_FP16 = 6000.0
TARGET_HTTP_IMG_S = 4000.0
TARGET_HTTP_P99_MS = 50.0
TARGET_BATCH1_P50_MS = 5.0
MAIN_MODEL = "gluon_seresnext50_32x4d"
# Markers of a C++ exception or a Rust panic reaching the user.
LEAKS = re.compile(r"backtrace|Exception raised from", re.IGNORECASE)


def read_jsonl(path):
    try:
        lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        line = line.strip()
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return records


def cmd_tag(args):
    fields = parse_fields(args.fields)
    count = 0
    for raw in sys.stdin:
        line = raw.strip()
        if not line.startswith("{"):
            print(line, flush=True)
            continue
        record = {**json.loads(line), **fields}
        append(args.records, record)
        print(json.dumps(record), flush=True)
        count += 1
    if not count:
        sys.exit(f"verify.py tag: no JSON lines on stdin for {fields}")


def cmd_expect_failure(args):
    """Runs a command that must fail fast with NEEDLE in its message and no
    C++ backtrace or panic."""
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    env = dict(os.environ)
    for pair in args.env:
        key, _, value = pair.partition("=")
        env[key] = value
    started = time.monotonic()
    try:
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=args.timeout)
        rc, output = done.returncode, done.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as expired:
        rc, output = None, (expired.output or b"").decode(errors="replace")
    seconds = time.monotonic() - started
    problems = []
    if rc is None:
        problems.append(f"still running after {args.timeout} s")
    elif rc == 0:
        problems.append("exited 0")
    if seconds > args.quick:
        problems.append(f"took {seconds:.1f} s (> {args.quick} s)")
    if args.needle not in output:
        problems.append(f"no {args.needle!r} in the message")
    if LEAKS.search(output):
        problems.append("a backtrace or C++ exception text in the message")
    # The first lines say what went wrong (a backtrace follows them).
    message = " | ".join(output.strip().splitlines()[:3])
    record = {"check": args.name, "env": " ".join(args.env), "rc": rc,
              "seconds": round(seconds, 2), "needle": args.needle,
              "passed": not problems, "problems": problems, "message": message[:400]}
    append(args.records, record)
    print(f"{'PASS' if not problems else 'FAIL'} {args.name}: rc {rc}, {seconds:.1f} s"
          f"{'; ' + '; '.join(problems) if problems else ''}\n    {message[:300]}", flush=True)
    sys.exit(0 if not problems else 1)


def top1_by_image(path):
    lines = {}
    for record in read_jsonl(path):
        lines[record["image"]] = record
    return lines


def cmd_parity(args):
    reference, device = top1_by_image(args.reference), top1_by_image(args.device_lines)
    photos, matched, worst, problems = 0, 0, 0.0, []
    for image, ref in reference.items():
        photos += 1
        got = device.get(image)
        if not ref.get("top_k") or not got or not got.get("top_k"):
            problems.append(f"{image}: no result ({(got or {}).get('error', 'missing')})")
            continue
        want = ref["top_k"][0]
        scores = {score["class_id"]: score["probability"] for score in got["top_k"]}
        if got["top_k"][0]["class_id"] == want["class_id"]:
            matched += 1
        else:
            problems.append(f"{image}: top-1 {got['top_k'][0]['class_id']} "
                            f"instead of {want['class_id']}")
        # The reference top-1's probability; 1.0 when it left the device's top-k.
        delta = abs(scores[want["class_id"]] - want["probability"]) \
            if want["class_id"] in scores else 1.0
        worst = max(worst, delta)
    if photos == 0:
        problems.append("no reference results")
    if worst > args.bound:
        problems.append(f"max |dp| {worst:.5f} > {args.bound}")
    record = {"model": args.model, "device": args.device, "dtype": args.dtype,
              "photos": photos, "top1_matches": matched, "max_abs_dp": round(worst, 6),
              "bound": args.bound, "passed": not problems, "problems": problems}
    append(args.records, record)
    print(f"{'PASS' if not problems else 'FAIL'} parity {args.model} {args.device} {args.dtype}: "
          f"top-1 {matched}/{photos}, max |dp| {worst:.5f} (bound {args.bound})"
          f"{'; ' + '; '.join(problems) if problems else ''}", flush=True)
    sys.exit(0 if not problems else 1)


def fetch(url, data=None, content_type=None, timeout=30.0):
    request = urllib.request.Request(url, data=data)
    if content_type:
        request.add_header("content-type", content_type)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def cmd_get(args):
    try:
        status, body = fetch(args.url)
    except (urllib.error.URLError, OSError) as error:
        sys.exit(f"GET {args.url}: {error}")
    sys.stdout.write(body.decode(errors="replace"))
    sys.exit(0 if status == 200 else 1)


def cmd_wait_ready(args):
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            if fetch(args.url, timeout=2.0)[0] == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        try:
            os.kill(args.pid, 0)
        except ProcessLookupError:
            sys.exit(f"the server (pid {args.pid}) exited while starting")
        time.sleep(0.25)
    sys.exit(f"{args.url} not ready after {args.seconds} s")


def cmd_post_image(args):
    try:
        status, body = fetch(args.url, pathlib.Path(args.file).read_bytes(), "image/jpeg")
    except urllib.error.HTTPError as error:
        sys.exit(f"POST {args.url}: {error.code} {error.read()[:300]!r}")
    except (urllib.error.URLError, OSError) as error:
        sys.exit(f"POST {args.url}: {error}")
    print(body.decode(errors="replace")[:600])
    sys.exit(0 if status == 200 else 1)


def batch_stats(url, model):
    """(images, batches) of seresnext_batch_size for one model."""
    wanted = {"sum": 0.0, "count": 0.0}
    text = fetch(url)[1].decode()
    for line in text.splitlines():
        match = re.match(r"seresnext_batch_size_(sum|count)\{([^}]*)\}\s+(\S+)", line)
        if match and f'model="{model}"' in match.group(2).split(","):
            wanted[match.group(1)] = float(match.group(3))
    return wanted["sum"], wanted["count"]


def cmd_batch_stats(args):
    try:
        images, batches = batch_stats(args.url, args.model)
    except (urllib.error.URLError, OSError):
        images, batches = 0.0, 0.0
    print(f"{images:.0f} {batches:.0f}")


def cmd_http(args):
    runs = read_jsonl(args.loadgen)
    if not runs:
        sys.exit(f"verify.py http: no loadgen result in {args.loadgen}")
    record = {**runs[-1], **parse_fields(args.fields)}
    before, after = args.before.split(), args.after.split()
    if len(before) == 2 and len(after) == 2:
        images, batches = float(after[0]) - float(before[0]), float(after[1]) - float(before[1])
        record["mean_batch_size"] = round(images / batches, 2) if batches > 0 else None
        record["batches"] = int(batches)
    append(args.records, record)
    print(f"c={record.get('concurrency')}: {record.get('images_per_second', 0):.1f} img/s, "
          f"p50 {record.get('p50_ms', float('nan')):.1f} ms, p99 {record.get('p99_ms', float('nan')):.1f} ms, "
          f"mean batch {record.get('mean_batch_size')}, errors {record.get('errors')} "
          f"{record.get('statuses')}", flush=True)


# ------------------------------------------------------------------ report
def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def steps_of(out):
    steps = []
    path = out / "steps.tsv"
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 5:
                steps.append({"step": parts[0], "status": parts[1], "rc": int(parts[2]),
                              "seconds": int(parts[3]), "limit_s": int(parts[4])})
    return steps


def targets_of(device, in_process, http):
    fp16 = [r for r in in_process if r.get("impl") == "ours" and r.get("dtype") == "fp16"
            and r.get("model") == MAIN_MODEL]
    best_fp16 = max((r["images_per_second"] for r in fp16), default=None)
    within = [r for r in http if (r.get("p99_ms") or 1e9) <= TARGET_HTTP_P99_MS
              and not r.get("errors")]
    best_http = max(within, key=lambda r: r["images_per_second"], default=None)
    single = next((r for r in http if r.get("concurrency") == 1), None)
    batch1 = next((r for r in fp16 if r.get("batch_size") == 1), None)
    rows = [
        {"target": f"in process, fp16, best batch: >= {TARGET_INPROCESS_FP16:,.0f} img/s",
         "figure": best_fp16, "unit": "img/s",
         "met": best_fp16 is not None and best_fp16 >= TARGET_INPROCESS_FP16},
        {"target": f"HTTP, JPEG: >= {TARGET_HTTP_IMG_S:,.0f} img/s at p99 <= {TARGET_HTTP_P99_MS:.0f} ms",
         "figure": best_http and best_http["images_per_second"], "unit": "img/s",
         "detail": best_http and f"at {best_http['concurrency']} clients, "
                                 f"p99 {best_http['p99_ms']:.1f} ms",
         "met": best_http is not None and best_http["images_per_second"] >= TARGET_HTTP_IMG_S},
        {"target": f"batch-1 p50 <= {TARGET_BATCH1_P50_MS:.0f} ms (HTTP, 1 client, JPEG)",
         "figure": single and single.get("p50_ms"), "unit": "ms",
         "detail": batch1 and f"in process fp16 batch 1: p50 {batch1['p50_ms']:.2f} ms",
         "met": single is not None and single.get("p50_ms", 1e9) <= TARGET_BATCH1_P50_MS},
    ]
    if device != "cuda":
        for row in rows:
            row["met"] = None  # the targets are for a GPU; a CPU rehearsal only shows figures
    return rows


def cmd_finish(args):
    out = pathlib.Path(args.out)
    env = {}
    if (out / "env.json").exists():
        env = json.loads((out / "env.json").read_text())
    bundle = {}
    bundle_file = pathlib.Path(args.bundle) / "BUNDLE.json"
    if bundle_file.exists():
        bundle = json.loads(bundle_file.read_text())
    steps = steps_of(out)
    errors = read_jsonl(out / "errors.jsonl")
    parity = read_jsonl(out / "parity.jsonl")
    in_process = read_jsonl(out / "inprocess.jsonl")
    http = read_jsonl(out / "http.jsonl")
    passed = bool(steps) and all(step["status"] == "passed" for step in steps)
    targets = targets_of(args.device, in_process, http)
    report = {
        "device": args.device, "passed": passed, "seconds": args.seconds,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "bundle": bundle, "environment": env, "steps": steps, "error_paths": errors,
        "parity": parity, "parity_note": None if args.device == "cuda" else
        "DEVICE=cpu: cpu fp32 against cpu fp32 only; fp16/bf16 are GPU precisions, skipped",
        "in_process": in_process, "http": http, "targets": targets,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")

    md = [f"# GPU verification: {'all checks passed' if passed else 'SOME CHECKS FAILED'}", ""]
    gpus = env.get("gpus") or []
    md += [f"- Device under test: `{args.device}`; {len(gpus)} GPU(s)"
           + (": " + "; ".join(gpus) if gpus else ""),
           f"- torch {env.get('torch', '?')} (CUDA {env.get('torch_cuda', '?')}), "
           f"timm {env.get('timm', '?')}, driver {env.get('driver', '–')}, "
           f"{env.get('cpus', '?')} CPUs",
           f"- Binary: {bundle.get('version', '?')} at commit {bundle.get('commit', '?')}, "
           f"built {bundle.get('built', '?')}",
           f"- Finished {report['finished']} in {args.seconds} s", ""]
    md += ["## Steps", ""]
    md += table(["step", "result", "seconds", "limit s"],
                [[s["step"], s["status"], s["seconds"], s["limit_s"]] for s in steps])
    md += ["", "## Error paths", ""]
    md += table(["check", "env", "exit", "seconds", "result", "message (start)"],
                [[e["check"], e["env"] or "–", e["rc"], e["seconds"],
                  "pass" if e["passed"] else "FAIL: " + "; ".join(e["problems"]),
                  "`" + e["message"][:160].replace("|", "/").replace("`", "'") + "`"]
                 for e in errors])
    md += ["", "## Parity against CPU fp32 (classify, top-5, every photo)", ""]
    if report["parity_note"]:
        md += [report["parity_note"] + ".", ""]
    md += table(["model", "device", "dtype", "top-1 match", "max abs dp (top-1)", "bound", "result"],
                [[p["model"], p["device"], p["dtype"], f"{p['top1_matches']}/{p['photos']}",
                  f"{p['max_abs_dp']:.5f}", p["bound"],
                  "pass" if p["passed"] else "FAIL: " + "; ".join(p["problems"])]
                 for p in parity])

    md += ["", f"## In process, {MAIN_MODEL}: img/s (p50 ms)", ""]
    columns = []
    for record in in_process:
        key = (record.get("impl"), record.get("dtype"))
        if key not in columns:
            columns.append(key)
    batches = sorted({r["batch_size"] for r in in_process})
    cell = {(r.get("impl"), r.get("dtype"), r["batch_size"]): r for r in in_process}
    names = {("timm", "fp16"): "timm AMP fp16", ("timm", "fp32"): "timm fp32"}
    header = ["batch"] + [names.get(c, f"{c[0]} {c[1]}") for c in columns]
    has_ratio = ("ours", "fp16") in columns and ("timm", "fp16") in columns
    if has_ratio:
        header.append("ours fp16 / timm AMP")
    rows = []
    for batch in batches:
        row = [batch]
        for impl, dtype in columns:
            r = cell.get((impl, dtype, batch))
            row.append(f"{r['images_per_second']:,.1f} ({r['p50_ms']:.2f})" if r else "–")
        if has_ratio:
            a, b = cell.get(("ours", "fp16", batch)), cell.get(("timm", "fp16", batch))
            row.append(f"{a['images_per_second'] / b['images_per_second']:.2f}x" if a and b else "–")
        rows.append(row)
    md += table(header, rows)
    if in_process:
        r = in_process[0]
        md += ["", f"timm: channels_last, cuDNN benchmark {'on' if args.device == 'cuda' else 'n/a'}"
               f"{', autocast fp16' if args.device == 'cuda' else ''}; ours: the `bench` command "
               f"(u8 crops -> normalize -> forward -> softmax -> host), {r.get('iterations')} timed passes."]

    md += ["", "## HTTP, JPEG bodies, project's load generator (examples/loadgen.rs)", ""]
    if http:
        h = http[0]
        md += [f"One model ({MAIN_MODEL}), device {h.get('device')}, dtype {h.get('dtype')}, "
               f"max_batch_size {h.get('max_batch_size')}, max_batch_delay_ms {h.get('batch_delay_ms')}, "
               f"{h.get('level_seconds')} s per level.", ""]
    memory_header = "GPU memory used MiB" if args.device == "cuda" else "server RSS MiB"
    md += table(["clients", "img/s", "p50 ms", "p99 ms", "mean batch", "errors", memory_header],
                [[r.get("concurrency"), fmt(r.get("images_per_second")), fmt(r.get("p50_ms"), 2),
                  fmt(r.get("p99_ms"), 2), fmt(r.get("mean_batch_size"), 2),
                  f"{r.get('errors')} {r.get('statuses') if r.get('errors') else ''}".strip(),
                  fmt(r.get("memory_mib"), 0)] for r in http])

    md += ["", "## Targets (H100/H200 class, seresnext50)", ""]
    if args.device != "cuda":
        md += ["A CPU rehearsal: the figures are shown, the targets do not apply.", ""]
    md += table(["target", "figure", "met"],
                [[t["target"], f"{fmt(t['figure'])} {t['unit']}"
                  + (f" ({t['detail']})" if t.get("detail") else ""),
                  {True: "yes", False: "**no**", None: "n/a"}[t["met"]]] for t in targets])
    (out / "report.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    sys.exit(0 if passed else 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True)
    tag = commands.add_parser("tag")
    tag.add_argument("records")
    tag.add_argument("fields", nargs="*")
    tag.set_defaults(func=cmd_tag)
    failure = commands.add_parser("expect-failure")
    failure.add_argument("records")
    failure.add_argument("name")
    failure.add_argument("needle")
    failure.add_argument("--env", action="append", default=[])
    failure.add_argument("--timeout", type=float, default=60.0)
    failure.add_argument("--quick", type=float, default=20.0, help="seconds a failure may take")
    failure.add_argument("command", nargs=argparse.REMAINDER)
    failure.set_defaults(func=cmd_expect_failure)
    parity = commands.add_parser("parity")
    for name in ("records", "model", "reference", "device_lines", "device", "dtype"):
        parity.add_argument(name)
    parity.add_argument("bound", type=float)
    parity.set_defaults(func=cmd_parity)
    get = commands.add_parser("get")
    get.add_argument("url")
    get.set_defaults(func=cmd_get)
    wait = commands.add_parser("wait-ready")
    wait.add_argument("url")
    wait.add_argument("seconds", type=float)
    wait.add_argument("pid", type=int)
    wait.set_defaults(func=cmd_wait_ready)
    post = commands.add_parser("post-image")
    post.add_argument("url")
    post.add_argument("file")
    post.set_defaults(func=cmd_post_image)
    stats = commands.add_parser("batch-stats")
    stats.add_argument("url")
    stats.add_argument("model")
    stats.set_defaults(func=cmd_batch_stats)
    http = commands.add_parser("http")
    http.add_argument("records")
    http.add_argument("loadgen")
    http.add_argument("fields", nargs="*")
    http.add_argument("--before", default="")
    http.add_argument("--after", default="")
    http.set_defaults(func=cmd_http)
    finish = commands.add_parser("finish")
    finish.add_argument("out")
    finish.add_argument("--device", default="cuda")
    finish.add_argument("--seconds", type=int, default=0)
    finish.add_argument("--bundle", default=".")
    finish.set_defaults(func=cmd_finish)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
