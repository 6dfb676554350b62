#!/usr/bin/env python3
"""Terminal measurements of the real binary in tmux (needs tmux; run from the repo root after
`cargo build --release`):

  - render/key latency: key press -> screen change while training holds both cores (p50/p99)
  - attach time: `convscope view RUN` start -> first frame showing the live run
  - bytes written to the terminal per second while idle (paused run, Training tab)
  - bytes per feature-map refresh, half-blocks and sixel: `[` (same image, previous epoch's
    maps, as at every epoch end of a live run) and `n` (next probe image: new photo and maps)
  - bytes per second on the Feature maps tab of a run with 0.05 s epochs, epoch-end pictures
    paced to ui.refresh_kb_per_sec and unpaced

usage: scripts/measure_terminal.py [--bin target/release/convscope] [--keys 40]
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

def sh(*a, **k):
    return subprocess.run(a, check=True, capture_output=True, text=True, **k).stdout

def capture(s):
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", s], capture_output=True, text=True).stdout

def wait(pred, timeout=120, step=0.005):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if pred():
            return time.perf_counter() - t0
        time.sleep(step)
    raise TimeoutError

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/convscope")
    ap.add_argument("--keys", type=int, default=40)
    ap.add_argument("--sixel-max-kb", type=int, default=0,
                    help="passed to the sixel viewer (ui.sixel_max_kb); 0: no limit")
    a = ap.parse_args()
    exe = os.path.abspath(a.bin)
    tmp = tempfile.mkdtemp(prefix="convscope-measure-")
    procs = []
    def procs_append(p):
        procs.append(p)
        return p
    # A failed wait (TimeoutError) must not leave the trainer running or its run directory
    # (gigabytes of checkpoints) behind.
    try:
        run = os.path.join(tmp, "run")
        env = dict(os.environ, COLORTERM="truecolor")
        subprocess.run(["tmux", "kill-server"], capture_output=True)
        # A live run at the tutorial size keeps both cores busy.
        trainer = procs_append(subprocess.Popen([exe, "demo", "--headless", "--run", run, "--image-size", "150", "--epochs", "50",
                                    "--per-class", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        sock = os.path.join(run, "control.sock")
        wait(lambda: os.path.exists(sock) and os.path.exists(os.path.join(run, "checkpoints", "latest")), timeout=600)
        out = {}
        # Attach time.
        t0 = time.perf_counter()
        subprocess.run(["tmux", "new-session", "-d", "-s", "m", "-x", "200", "-y", "60", f"{exe} view {run}"], env=env, check=True)
        wait(lambda: "● running" in capture("m"))
        out["attach_s"] = round(time.perf_counter() - t0, 3)
        # Key-to-screen latency while training: alternate tabs 1 <-> 2, wait for the change.
        lat = []
        for i in range(a.keys):
            key, marker = ("2", "Output shape") if i % 2 == 0 else ("1", "best val accuracy")
            t0 = time.perf_counter()
            subprocess.run(["tmux", "send-keys", "-t", "m", key])
            wait(lambda: marker in capture("m"), timeout=10, step=0.001)
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        out["key_to_screen_ms_p50"] = round(statistics.median(lat), 1)
        out["key_to_screen_ms_p99"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1)
        # Idle bytes: pause the run (once two epochs are kept, for `[` below), sit on the Training tab.
        ckdir = os.path.join(run, "checkpoints")
        wait(lambda: len([n for n in os.listdir(ckdir) if n.startswith("epoch-") and "batch" not in n]) >= 2, timeout=600)
        subprocess.run(["tmux", "send-keys", "-t", "m", "1"])
        subprocess.run(["tmux", "send-keys", "-t", "m", "Space"])
        wait(lambda: "● paused" in capture("m"))
        time.sleep(1)
        log = os.path.join(tmp, "pipe.log")
        subprocess.run(["tmux", "pipe-pane", "-o", "-t", "m", f"cat >> {log}"])
        time.sleep(10)
        subprocess.run(["tmux", "pipe-pane", "-t", "m"])
        out["idle_bytes_per_s"] = round(os.path.getsize(log) / 10.0, 1) if os.path.exists(log) else 0.0
        # Feature-map refresh: switch to the tab, then n (next probe image) forces new maps.
        print(json.dumps(out), flush=True)
        prev = "m"
        for mode in ["halfblocks", "sixel"]:
            s = f"m-{mode}"
            # Start the new session before ending the old one: tmux exits with its last session.
            limit = f" --sixel-max-kb {a.sixel_max_kb}" if mode == "sixel" and a.sixel_max_kb else ""
            subprocess.run(["tmux", "new-session", "-d", "-s", s, "-x", "200", "-y", "60",
                            f"{exe} view {run} --graphics {mode}{limit}"], env=env, check=True)
            subprocess.run(["tmux", "kill-session", "-t", prev], capture_output=True)
            prev = s
            wait(lambda: "● paused" in capture(s))
            subprocess.run(["tmux", "send-keys", "-t", s, "4"])
            wait(lambda: "(x-mean)/std" in capture(s))
            time.sleep(4)
            # Two kinds of refresh: `[` shows the same image's maps at the previous epoch (what a
            # live run does at every epoch end), `n` switches to the next probe image (new photo too).
            for what, key in [("epoch", "["), ("image", "n")]:
                log = os.path.join(tmp, f"pipe-{mode}-{what}.log")
                subprocess.run(["tmux", "pipe-pane", "-o", "-t", s, f"cat >> {log}"])
                subprocess.run(["tmux", "send-keys", "-t", s, key])
                time.sleep(5)
                subprocess.run(["tmux", "pipe-pane", "-t", s])
                out[f"refresh_bytes_{what}_{mode}"] = os.path.getsize(log) if os.path.exists(log) else 0
                if os.environ.get("KEEP_LOGS") and os.path.exists(log):
                    shutil.copy(log, os.environ["KEEP_LOGS"])
                time.sleep(1)
            print(json.dumps(out), flush=True)
        subprocess.run(["tmux", "kill-server"], capture_output=True)
        print(json.dumps(out), flush=True)
        fast_epochs(exe, tmp, env, out, procs_append)
        print(json.dumps(out), flush=True)
        try:
            import socket
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(sock); c.sendall(b'{"command":"stop"}\n'); c.recv(100)
        except OSError:
            pass
        trainer.wait(timeout=300)
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        subprocess.run(["tmux", "kill-server"], capture_output=True)
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def fast_epochs(exe, tmp, env, out, procs_append):
    """Bytes a second on the Feature maps tab of a run whose epochs take ~0.05 s (a small
    dataset, or any on a GPU): epoch-end pictures paced to ui.refresh_kb_per_sec (default), and
    unpaced (--refresh-kb-per-sec 0)."""
    run = os.path.join(tmp, "fast")
    trainer = procs_append(subprocess.Popen([exe, "demo", "--headless", "--run", run, "--per-class", "30",
                                             "--epochs", "100000"], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, env=env))
    sock = os.path.join(run, "control.sock")
    wait(lambda: os.path.exists(sock) and os.path.exists(os.path.join(run, "checkpoints", "latest")), timeout=600)
    for mode in ["halfblocks", "sixel"]:
        for rate in [None, 0]:
            s = f"fast-{mode}-{rate}"
            flag = "" if rate is None else f" --refresh-kb-per-sec {rate}"
            subprocess.run(["tmux", "new-session", "-d", "-s", s, "-x", "200", "-y", "60",
                            f"{exe} view {run} --graphics {mode}{flag}"], env=env, check=True)
            wait(lambda: "● running" in capture(s))
            subprocess.run(["tmux", "send-keys", "-t", s, "4"])
            wait(lambda: "(x-mean)/std" in capture(s))
            time.sleep(3)
            log = os.path.join(tmp, f"pipe-{s}.log")
            subprocess.run(["tmux", "pipe-pane", "-o", "-t", s, f"cat >> {log}"])
            time.sleep(10)
            subprocess.run(["tmux", "pipe-pane", "-t", s])
            key = "paced" if rate is None else "unpaced"
            out[f"fast_epochs_bytes_per_s_{mode}_{key}"] = round(os.path.getsize(log) / 10.0) if os.path.exists(log) else 0
            subprocess.run(["tmux", "kill-session", "-t", s], capture_output=True)
    trainer.terminate()
    trainer.wait(timeout=120)


if __name__ == "__main__":
    main()
