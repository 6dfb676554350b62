#!/usr/bin/env python3
"""Bytes written to the terminal on the Feature maps tab of a TUI training, in the 256-colour
palette and in 24-bit colour (issue 12, item 2), with the pacing limit as configured
(ui.refresh_kb_per_sec, default 256). The TUI runs in tmux at 200x60 without COLORTERM, as
over SSH; --color picks the depth. Measures the bytes per second while training (epoch-end
refreshes) and, paused, the bytes of one new probe image (`n`).

usage: scripts/measure_colors.py [--bin target/release/convscope] [--seconds 20]
"""
import argparse, os, subprocess, tempfile, time

def tmux(*a):
    return subprocess.run(["tmux", "-L", "measure-colors", *a], capture_output=True, text=True)

def screen():
    return tmux("capture-pane", "-p", "-t", "m").stdout

def wait(pred, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        time.sleep(0.05)
    raise TimeoutError

def measure(exe, color, seconds, extra, old):
    tmp = tempfile.mkdtemp(prefix="convscope-colors-")
    log = os.path.join(tmp, "pipe.log")
    run = os.path.join(tmp, "run")
    env = {k: v for k, v in os.environ.items() if k not in ("COLORTERM", "TMUX")}
    tmux("kill-server")
    if old:
        # A build from before --color: the depth came from COLORTERM alone.
        flag = "COLORTERM=truecolor " if color == "truecolor" else ""
        cmd = f"{flag}{exe} demo --run {run} {extra}; sleep 600"
    else:
        cmd = f"{exe} demo --run {run} --color {color} {extra}; sleep 600"
    subprocess.run(["tmux", "-L", "measure-colors", "-f", "/dev/null", "new-session", "-d", "-s", "m",
                    "-x", "200", "-y", "60", cmd], env=env, check=True)
    wait(lambda: "best val accuracy" in screen())
    tmux("send-keys", "-t", "m", "4")
    wait(lambda: "(x-mean)/std" in screen())
    time.sleep(2)
    tmux("pipe-pane", "-o", "-t", "m", f"cat >> {log}")
    size = lambda: os.path.getsize(log) if os.path.exists(log) else 0
    time.sleep(1)
    b0, t0 = size(), time.time()
    time.sleep(seconds)
    rate = (size() - b0) / (time.time() - t0)
    # The probe alone: paused, no epoch-end pictures come meanwhile.
    tmux("send-keys", "-t", "m", " ")
    wait(lambda: "● paused" in screen())
    time.sleep(1)
    b1 = size()
    tmux("send-keys", "-t", "m", "n")
    time.sleep(3)
    probe = size() - b1
    tmux("kill-server")
    return rate, probe

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/convscope")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--extra", default="", help="more flags for `convscope demo`")
    ap.add_argument("--old", action="store_true",
                    help="a build without --color: set COLORTERM for truecolor instead")
    a = ap.parse_args()
    exe = os.path.abspath(a.bin)
    for color in ["256", "truecolor"]:
        rate, probe = measure(exe, color, a.seconds, a.extra, a.old)
        print(f"--color {color:9}: {rate / 1000:7.1f} KB/s on Feature maps while training, "
              f"{probe / 1000:7.1f} KB for a new probe image (n)")

if __name__ == "__main__":
    main()
