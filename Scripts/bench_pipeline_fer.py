#!/usr/bin/env python3
"""Python side of Scripts/bench_pipeline.sh (the whole-pipeline benchmark of issue 7).

  bench_pipeline_fer.py measure --label L --out RESULTS.jsonl -- CMD ARGS...
        runs CMD as a child process and appends one JSON line: whole-process wall seconds, user+sys CPU seconds
        and peak resident memory (getrusage(RUSAGE_CHILDREN).ru_maxrss: the largest process of the tree), the
        exit code and the load average before and after. Standard library only (runs on any python3).
  bench_pipeline_fer.py fer INPUT WORKDIR [--no-save-frames]
        the peer: `fer` 25.10.3's Video.analyze with its defaults (Haar cascade detector, TFLite model, annotated
        frames saved and zipped, annotated video written), run inside WORKDIR (it writes data.csv to the current
        folder). Needs the venv with fer; writes WORKDIR/fer-info.json (frames analysed, frames with a face, output).
  bench_pipeline_fer.py probe FILE [--label L]
        one JSON line: video frames (packets of the first video stream), duration, whether it has audio (ffprobe);
        for a .csv (our timeline) the frames, rows and frames with a face it holds.
  bench_pipeline_fer.py report RESULTS.jsonl
        the side-by-side table (medians over the repeats) with the ratios and the goals of issue 7.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def load_average():
    try:
        with open("/proc/loadavg") as handle:
            return [float(value) for value in handle.read().split()[:3]]
    except OSError:
        return None


def busy_processes(exclude=()):
    """Processes using more than 20% of a core over the last second, other than `exclude` pids."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cpu_busy import busy_processes as sample
    return sample(exclude=set(exclude))


# --- measure ------------------------------------------------------------------------------------------------------

def command_measure(args):
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    load_before = load_average()
    started = time.perf_counter()
    with open(args.log, "ab") if args.log else open(os.devnull, "wb") as log:
        process = subprocess.run(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    record = dict(kind="run", label=args.label, repeat=args.repeat, command=command, rc=process.returncode,
                  wall_s=round(wall, 4), cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
                  peak_rss_mb=round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
                  load_before=load_before, load_after=load_average())
    with open(args.out, "a") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    status = "ok" if process.returncode == 0 else f"FAILED (exit {process.returncode}, log {args.log})"
    print(f"    {args.label:<26} {wall:8.2f} s wall {record['cpu_s']:8.2f} s cpu {record['peak_rss_mb']:8.1f} MB  "
          f"{status}", file=sys.stderr, flush=True)
    return process.returncode


# --- fer ----------------------------------------------------------------------------------------------------------

def command_fer(args):
    source = os.path.abspath(args.input)
    os.makedirs(args.workdir, exist_ok=True)
    os.chdir(args.workdir)  # Video.to_csv writes data.csv to the current folder
    # The package's own __init__ pulls in nothing useful; the classes live in these modules (issue 7's notes).
    from fer.fer import FER
    from fer.classes import Video

    detector = FER()  # defaults: Haar cascade, TFLite emotion model
    video = Video(source, outdir="output")
    options = dict(display=False)
    if args.no_save_frames:
        options.update(save_frames=False, zip_images=False)
    data = video.analyze(detector, **options)
    root, ext = os.path.splitext(os.path.basename(source))
    info = dict(frames_analysed=video.frameCount, frames_with_face=len(data), options=options,
                output=os.path.abspath(os.path.join("output", f"{root}_output{ext}")))
    with open("fer-info.json", "w") as handle:
        json.dump(info, handle)
    return 0


# --- probe --------------------------------------------------------------------------------------------------------

def probe(path):
    try:
        text = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                               "stream=index,codec_type,codec_name,width,height,nb_read_packets,avg_frame_rate:"
                               "format=duration", "-of", "json", path],
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        return dict(path=path, error=str(error))
    info = json.loads(text)
    streams = info.get("streams", [])
    videos = [stream for stream in streams if stream.get("codec_type") == "video"]
    result = dict(path=path, audio=any(stream.get("codec_type") == "audio" for stream in streams),
                  duration_s=float(info.get("format", {}).get("duration", "nan")))
    if videos:
        video = videos[0]
        result.update(frames=int(video.get("nb_read_packets", 0)), codec=video.get("codec_name"),
                      width=video.get("width"), height=video.get("height"), frame_rate=video.get("avg_frame_rate"))
    return result


def probe_csv(path):
    """Frames covered by one of our timeline CSVs (distinct `frame` values) and whether any face was seen."""
    import csv
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        return dict(path=path, error=str(error))
    return dict(path=path, frames=len({row["frame"] for row in rows}), rows=len(rows),
                frames_with_face=len({row["frame"] for row in rows if row.get("face_id")}))


def command_probe(args):
    found = probe_csv(args.file) if args.file.endswith(".csv") else probe(args.file)
    print(json.dumps(dict(kind="probe", label=args.label, **found), sort_keys=True))
    return 0


# --- report -------------------------------------------------------------------------------------------------------

ORDER = ["ffmpeg", "ours-video", "ours-video-every3", "ours-no-video", "fer"]
NAMES = {
    "ffmpeg": "ffmpeg libx264 transcode",
    "ours-video": "fer-annotate -o out.mp4",
    "ours-video-every3": "fer-annotate -o out.mp4 --detect-every 3",
    "ours-no-video": "fer-annotate --no-video --csv",
    "fer": "fer Video.analyze (PyPI)",
}


def command_report(args):
    records = [json.loads(line) for line in open(args.results) if line.strip()]
    meta = next((r for r in records if r.get("kind") == "meta"), {})
    source = next((r for r in records if r.get("kind") == "probe" and r.get("label") == "input"), {})
    outputs = {r["label"]: r for r in records if r.get("kind") == "probe" and r.get("label") != "input"}
    skipped = {r["label"]: r.get("reason", "") for r in records if r.get("kind") == "skip"}
    fer_info = next((r for r in records if r.get("kind") == "fer-info"), None)
    runs = {}
    for record in records:
        if record.get("kind") == "run":
            runs.setdefault(record["label"], []).append(record)

    frames = source.get("frames") or 0
    loads = [r["load_before"][0] for rs in runs.values() for r in rs if r.get("load_before")]
    load_end = load_average()
    cores = os.cpu_count() or 1
    print()
    print(f"input   {source.get('path')}: {source.get('width')}x{source.get('height')}, {frames} frames, "
          f"{source.get('duration_s', 0):.2f} s, audio {'yes' if source.get('audio') else 'no'}")
    print(f"preset  {meta.get('preset')} (fer-annotate's default, also given to ffmpeg); repeats {meta.get('repeats')}, "
          f"medians shown; fps = input frames / whole-process wall seconds")
    print(f"machine {meta.get('cpu')}, {cores} cores; load average at start {meta.get('load_start')}, "
          f"at end {load_end}")
    contended = bool(meta.get("busy"))
    if contended:
        print("CONTENDED: other work was using the CPU (" +
              ", ".join(f"{p['comm']} pid {p['pid']} {p['pcpu']:.0f}%" for p in meta.get("busy", [])) +
              "); wall times and fps are pessimistic and ratios between tools are only indicative."
              " Rerun on a quiet machine for clean numbers.")
    print()

    header = f"{'':42} {'wall s':>8} {'fps':>8} {'cpu s':>8} {'peak MB':>8} {'frames out':>10} {'audio':>6}"
    print(header)
    print("-" * len(header))
    summary = {}
    for label in ORDER:
        if label in skipped:
            print(f"{NAMES[label]:42} skipped: {skipped[label]}")
            continue
        rs = runs.get(label)
        if not rs:
            continue
        good = [r for r in rs if r["rc"] == 0]
        if not good:
            print(f"{NAMES[label]:42} FAILED (exit {rs[0]['rc']}; see the log folder)")
            continue
        wall = statistics.median(r["wall_s"] for r in good)
        cpu = statistics.median(r["cpu_s"] for r in good)
        rss = statistics.median(r["peak_rss_mb"] for r in good)
        fps = frames / wall if wall > 0 else float("nan")
        summary[label] = dict(wall=wall, cpu=cpu, rss=rss, fps=fps)
        out = outputs.get(label, {})
        frames_out = str(out.get("frames", "-")) if out else "-"
        audio = ("yes" if out.get("audio") else "no") if "audio" in out else "-"
        spread = ""
        if len(good) > 1:
            spread = f"  (wall {min(r['wall_s'] for r in good):.2f}-{max(r['wall_s'] for r in good):.2f})"
        failed = f"  [{len(rs) - len(good)} failed runs]" if len(good) < len(rs) else ""
        print(f"{NAMES[label]:42} {wall:8.2f} {fps:8.1f} {cpu:8.2f} {rss:8.1f} {frames_out:>10} {audio:>6}"
              f"{spread}{failed}")
    print()

    def ratio_line(text, value, goal, higher_is_better=True):
        verdict = ""
        if goal is not None:
            met = value >= goal if higher_is_better else value <= goal
            verdict = f"  goal {'>=' if higher_is_better else '<='} {goal:g}: {'met' if met else 'NOT met'}"
            if contended:
                verdict += " (contended)"
        print(f"  {text:58} {value:7.2f}{verdict}")

    print("ratios")
    ours, ffmpeg, fer, lean = (summary.get(k) for k in ("ours-video", "ffmpeg", "fer", "ours-no-video"))
    if ours and ffmpeg:
        ratio_line("ours with video fps / ffmpeg transcode fps", ours["fps"] / ffmpeg["fps"], 0.85)
        ratio_line("ours with video CPU s / ffmpeg transcode CPU s", ours["cpu"] / ffmpeg["cpu"], None)
    every3 = summary.get("ours-video-every3")
    if every3 and ffmpeg:
        ratio_line("ours --detect-every 3 fps / ffmpeg transcode fps", every3["fps"] / ffmpeg["fps"], None)
    if lean and ours:
        ratio_line("ours --no-video fps / ours with video fps", lean["fps"] / ours["fps"], None)
    if fer and ours:
        ratio_line("fer wall time / ours with video wall time", fer["wall"] / ours["wall"], 10)
    if fer and lean:
        ratio_line("fer wall time / ours --no-video wall time", fer["wall"] / lean["wall"], 10)
    if fer and every3:
        ratio_line("fer wall time / ours --detect-every 3 wall time", fer["wall"] / every3["wall"], None)
    if fer and ours:
        ratio_line("fer peak memory / ours with video peak memory", fer["rss"] / ours["rss"], None)
    if fer and lean:
        ratio_line("fer peak memory / ours --no-video peak memory", fer["rss"] / lean["rss"], None)
    if ours and (source.get("height") or 0) >= 1080:
        ratio_line("ours with video peak memory, MB (1080p and up)", ours["rss"], 400, higher_is_better=False)
    if "fer" in skipped:
        print("  (fer ratios not available: fer was skipped)")

    if fer_info is not None or "fer" in outputs:
        print()
        out = outputs.get("fer", {})
        analysed = fer_info.get("frames_analysed") if fer_info else None
        with_face = fer_info.get("frames_with_face") if fer_info else None
        print(f"fer output: decoded {analysed} of {frames} input frames; its results (data.csv) hold {with_face} "
              f"frames, those with a face, without frame index or time ({(analysed or 0) - (with_face or 0)} "
              f"left out); its video: {out.get('frames', '-')} frames, codec {out.get('codec', '-')}, "
              f"audio {'yes' if out.get('audio') else 'NO'}; called with {json.dumps(fer_info.get('options')) if fer_info else '?'}")
    ours_csv = outputs.get("ours-no-video", {})
    if "rows" in ours_csv:
        print(f"ours (--no-video CSV): {ours_csv['frames']} of {frames} frames, {ours_csv['frames_with_face']} with "
              f"a face, {ours_csv['rows']} rows")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="name", required=True)
    measure = commands.add_parser("measure")
    measure.add_argument("--label", required=True)
    measure.add_argument("--repeat", type=int, default=1)
    measure.add_argument("--out", required=True)
    measure.add_argument("--log")
    measure.add_argument("command", nargs=argparse.REMAINDER)
    fer = commands.add_parser("fer")
    fer.add_argument("input")
    fer.add_argument("workdir")
    fer.add_argument("--no-save-frames", action="store_true")
    probe_parser = commands.add_parser("probe")
    probe_parser.add_argument("file")
    probe_parser.add_argument("--label", default="input")
    busy = commands.add_parser("busy")
    busy.add_argument("--exclude", type=int, nargs="*", default=[])
    report = commands.add_parser("report")
    report.add_argument("results")
    args = parser.parse_args()
    if args.name == "measure":
        return command_measure(args)
    if args.name == "fer":
        return command_fer(args)
    if args.name == "probe":
        return command_probe(args)
    if args.name == "busy":
        print(json.dumps(busy_processes(exclude=set(args.exclude) | {os.getpid(), os.getppid()})))
        return 0
    return command_report(args)


if __name__ == "__main__":
    sys.exit(main())
