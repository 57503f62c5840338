"""``browserstack.video``: a running worker's video, grabbed from its own display, or
encoded from its screenshots where it has none here (a Grid's browser)."""
from __future__ import annotations

import logging
import os
import subprocess
import threading

from browserfarm.browsers.display import client_env
from browserfarm.browsers.handles import Handle

log = logging.getLogger(__name__)

VIDEO_FPS = 2  # screenshots a second, each a round trip to the browser
GRAB_FPS = 5  # frames a second grabbed from a display: no cost to the browser


def display_env(handle: Handle) -> dict | None:
    """What reaches the worker's own display (DISPLAY, XAUTHORITY); None without one."""
    name = getattr(handle, "display", None)
    if not name:
        return None
    return client_env(name, getattr(handle, "xauthority", None))


class Recorder:
    """The worker's video, encoded by ffmpeg into ``<data dir>/videos/<id>.mp4``:
    ``display`` (display_env()) grabbed by ffmpeg's x11grab, GRAB_FPS a second; without
    one, its screenshots (``shoot()``), VIDEO_FPS a second. ``env``: what ffmpeg's
    environment gains (the runner's mark, so a restarted runner finds it)."""

    def __init__(self, farm, worker_id: int, shoot, env: dict, display: dict | None = None):
        self.worker_id, self.shoot, self.env, self.display = worker_id, shoot, env, display
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
        partial = self.data.prepare(self.data.video_partial(self.worker_id))
        if self.display:
            source = ["-f", "x11grab", "-draw_mouse", "0", "-framerate", str(GRAB_FPS),
                      "-i", self.display["DISPLAY"]]
        else:
            source = ["-f", "image2pipe", "-framerate", str(VIDEO_FPS), "-c:v", "png",
                      "-i", "-"]
        encoder = subprocess.Popen(
            ["ffmpeg", "-loglevel", "error", "-y", *source, "-c:v", "libx264", "-preset",
             "veryfast", "-pix_fmt", "yuv420p", "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
             "-movflags", "+faststart", str(partial)],
            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
            env=os.environ | self.env | (self.display or {}),
            start_new_session=True)  # a Ctrl-C to the runner's group must not cut the video
        try:
            frames = self._grab(encoder) if self.display else self._feed(encoder)
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

    def _grab(self, encoder: subprocess.Popen) -> int:
        """ffmpeg grabs until the worker ends; then "q" on its input ends the video."""
        self.done.wait()
        try:
            encoder.stdin.write(b"q")
        except OSError:  # ffmpeg ended by itself (its display went): a failed video
            return 0
        return 1

    def _feed(self, encoder: subprocess.Popen) -> int:
        """Screenshots to ffmpeg until the worker ends; how many."""
        frames = 0
        while not self.done.is_set():
            try:
                encoder.stdin.write(self.shoot())
                frames += 1
            except (BrokenPipeError, OSError):
                break
            except Exception:  # noqa: BLE001 - a missed frame; the browser may be ending
                pass
            self.done.wait(1 / VIDEO_FPS)
        return frames
