"""``browserstack.video``: a running worker's screenshots, encoded into a video."""
from __future__ import annotations

import logging
import os
import subprocess
import threading

log = logging.getLogger(__name__)

VIDEO_FPS = 2


class Recorder:
    """Screenshots of the running worker (``shoot()``), VIDEO_FPS a second, encoded by
    ffmpeg into ``<data dir>/videos/<id>.mp4``. ``env``: what ffmpeg's environment gains
    (the runner's mark, so a restarted runner finds it)."""

    def __init__(self, farm, worker_id: int, shoot, env: dict):
        self.worker_id, self.shoot, self.env = worker_id, shoot, env
        self.data = farm.settings.data
        self.path = self.data.video(worker_id)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._record, daemon=True,
                                       name=f"video-{worker_id}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(30)

    def _record(self) -> None:
        partial = self.data.prepare(self.path).with_suffix(".partial.mp4")
        encoder = subprocess.Popen(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "image2pipe", "-framerate",
             str(VIDEO_FPS), "-c:v", "png", "-i", "-", "-c:v", "libx264", "-preset",
             "veryfast", "-pix_fmt", "yuv420p", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
             "-movflags", "+faststart", str(partial)],
            stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ | self.env,
            start_new_session=True)  # a Ctrl-C to the runner's group must not cut the video
        frames = 0
        try:
            while not self.done.is_set():
                try:
                    encoder.stdin.write(self.shoot())
                    frames += 1
                except (BrokenPipeError, OSError):
                    break
                except Exception:  # noqa: BLE001 - a missed frame; the browser may be ending
                    pass
                self.done.wait(1 / VIDEO_FPS)
        finally:
            try:
                encoder.stdin.close()
            except OSError:  # ffmpeg is gone already
                pass
            try:
                encoder.wait(60)
            except subprocess.TimeoutExpired:
                encoder.kill()
        if frames and encoder.returncode == 0:
            os.replace(partial, self.path)
        else:
            log.warning("video of worker %s failed: %s", self.worker_id,
                        encoder.stderr.read().decode(errors="replace")[-500:])
            partial.unlink(missing_ok=True)
