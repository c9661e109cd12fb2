"""The service's overhead, throughput and memory, against the library call in the same run.

Targets (issue 10), on a 640 x 480 JPEG over HTTP on loopback (``salience serve`` as a subprocess):

* median latency of ``POST /api/v1/map`` (Itti, gray PNG out) at most 1.25x the library call
  ``salience.saliency_map(load_image(jpeg), "itti")`` on the same bytes; Grad-CAM likewise against
  ``salience.explain`` (plus the preprocessing and the resize back that the map needs).  The HTTP figure
  includes the upload, decoding, PNG encoding and the reply, i.e. everything a client waits for.
* throughput of the Itti endpoint with 2 workers at least 1.7x that with 1 worker (``--clients``
  concurrent clients; on a machine with fewer idle cores than workers this cannot hold);
* the server's resident memory flat (within 10%) over ``--requests`` requests (default 1,000, after a
  warm-up of 50).

Rounds alternate between HTTP and the library call so that a noisy, shared machine slows both alike.

    python benchmarks/bench_serve.py [--repeat 15] [--requests 1000] [--clients 8]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _jpeg(w: int = 640, h: int = 480) -> bytes:
    import cv2
    from PIL import Image

    try:
        from skimage.data import astronaut

        rgb = astronaut()
    except ImportError:
        rng = np.random.default_rng(0)
        rgb = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, workers: int) -> None:
        import httpx

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, "-m", "salience", "serve", "--port", str(self.port),
                                      "--workers", str(workers), "--queue", "64", "--log-level", "warning"],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(self.base + "/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("salience serve did not start")
            time.sleep(0.2)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _throughput(server: Server, data: bytes, clients: int, total: int) -> tuple[float, float, float]:
    """Requests per second, and the cores the server and this client process kept busy meanwhile."""
    import httpx

    base = server.base

    left = [total]
    lock = threading.Lock()
    errors = []

    def client() -> None:
        with httpx.Client(timeout=300) as c:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                r = c.post(base + "/api/v1/map", files={"image": ("p.jpg", data)}, data={"method": "itti"})
                if r.status_code != 200:
                    errors.append(r.status_code)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0, s0, c0 = time.perf_counter(), server.cpu_s(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"throughput run got errors: {errors[:5]}")
    wall = time.perf_counter() - t0
    return total / wall, (server.cpu_s() - s0) / wall, (time.process_time() - c0) / wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15, help="calls per contender per round (default 15)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    ap.add_argument("--requests", type=int, default=1000, help="requests of the memory run (default 1000)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients of the throughput runs")
    ap.add_argument("--throughput-requests", type=int, default=48, help="requests per throughput run")
    args = ap.parse_args(argv)

    import httpx
    import torch

    import salience

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; torch threads {torch.get_num_threads()}")
    from salience.web.allocator import keep_freed_memory

    # the server process keeps freed memory mapped (salience serve does); so does this one, so that the
    # library calls it is compared with do not pay page faults the server does not
    print(f"allocator: freed memory kept mapped in both processes: {keep_freed_memory()}")
    data = _jpeg()
    lm = salience.load_model()

    def lib_itti() -> None:
        salience.saliency_map(salience.load_image(data), "itti")

    def lib_gradcam_explain() -> None:
        img = salience.load_image(data)
        salience.explain(lm, lm.preprocess(img, crop=False), "gradcam")

    def lib_gradcam_map() -> None:
        salience.saliency_map(salience.load_image(data), "gradcam", model=lm)

    server = Server(workers=2)
    try:
        client = httpx.Client(timeout=300)

        def http(method: str):
            def call() -> None:
                r = client.post(server.base + "/api/v1/map", files={"image": ("p.jpg", data)},
                                data={"method": method})
                assert r.status_code == 200, r.text

            return call

        contenders = {"itti: library": lib_itti, "itti: HTTP": http("itti"),
                      "gradcam: salience.explain": lib_gradcam_explain,
                      "gradcam: salience.saliency_map": lib_gradcam_map, "gradcam: HTTP": http("gradcam")}
        for fn in contenders.values():  # warm-up (first model use, caches)
            fn()
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(args.rounds):
            for name, fn in contenders.items():
                times[name].append(_median(fn, args.repeat))
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        print("\nlatency, 640 x 480 JPEG, median ms")
        for k, v in med.items():
            print(f"  {k:<34} {v:8.1f}")
        print(f"  ratio itti HTTP / library         {med['itti: HTTP'] / med['itti: library']:8.2f}   (target <= 1.25)")
        print(f"  ratio gradcam HTTP / explain      {med['gradcam: HTTP'] / med['gradcam: salience.explain']:8.2f}"
              "   (target <= 1.25)")
        print(f"  ratio gradcam HTTP / saliency_map {med['gradcam: HTTP'] / med['gradcam: salience.saliency_map']:8.2f}")

        # memory over many requests (small image so that 1,000 requests take minutes, not hours)
        from PIL import Image

        small = io.BytesIO()
        Image.open(io.BytesIO(data)).resize((160, 120)).save(small, format="JPEG")
        small_b = small.getvalue()
        for _ in range(50):
            client.post(server.base + "/api/v1/map", files={"image": ("s.jpg", small_b)}, data={"method": "itti"})
        before = server.rss_mib()
        t0 = time.perf_counter()
        for i in range(args.requests):
            method = ("itti", "spectral-residual", "gradcam")[i % 3]
            r = client.post(server.base + "/api/v1/map", files={"image": ("s.jpg", small_b)}, data={"method": method})
            assert r.status_code == 200
        after = server.rss_mib()
        print(f"\nmemory: RSS {before:.1f} MiB after 50 warm-up requests, {after:.1f} MiB after {args.requests} more "
              f"(itti / spectral-residual / gradcam, 160 x 120, {time.perf_counter() - t0:.0f} s): "
              f"{100 * (after - before) / before:+.1f}%   (target within +-10%)")
        tp2, srv2, cli2 = _throughput(server, data, args.clients, args.throughput_requests)
        client.close()
    finally:
        server.stop()
    server1 = Server(workers=1)
    try:
        _throughput(server1, data, 2, 4)  # warm-up
        tp1, srv1, cli1 = _throughput(server1, data, args.clients, args.throughput_requests)
    finally:
        server1.stop()
    print(f"\nthroughput, itti 640 x 480, {args.clients} clients: 1 worker {tp1:.2f} req/s, 2 workers {tp2:.2f} req/s, "
          f"ratio {tp2 / tp1:.2f}   (target >= 1.7; needs 2 idle cores)")
    print(f"  cores kept busy: 1 worker: server {srv1:.2f}, this client {cli1:.2f}; "
          f"2 workers: server {srv2:.2f}, this client {cli2:.2f} (of {os.cpu_count()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
