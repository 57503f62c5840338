"""The live view's bridge caps the frame rate of a view nobody has taken over: it holds
a viewer's update request FRAME_EVERY after the one before, and not once a person's
input came (no server, no browser: a socket pair stands for the VNC server)."""
from __future__ import annotations

import queue
import socket
import struct
import threading
import time

from browserfarm.browsers import liveview

# RFB FramebufferUpdateRequest, incremental, the whole 1024x768 screen; a PointerEvent
UPDATE = struct.pack(">BBHHHH", 3, 1, 0, 0, 1024, 768)
POINTER = struct.pack(">BBHH", 5, 1, 100, 100)


def _arrivals(messages: list[bytes]) -> list[tuple[float, bytes]]:
    """When each message the viewer sends at once reaches the server, in order."""
    viewer, server = socket.socketpair()
    inbox: queue.Queue = queue.Queue()
    for message in messages:
        inbox.put(message)

    def receive(timeout):
        try:
            return inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    thread = threading.Thread(target=liveview.bridge, daemon=True,
                              args=(receive, lambda data: None, viewer),
                              kwargs={"frame_every": liveview.FRAME_EVERY})
    started = time.monotonic()
    thread.start()
    arrivals, wanted = [], sum(len(m) for m in messages)
    server.settimeout(5)
    buffer = b""
    while len(buffer) < wanted:
        buffer += server.recv(wanted - len(buffer))
        arrivals.append((time.monotonic() - started, buffer))
    server.close()  # the server leaves: the bridge ends
    thread.join(5)
    return arrivals


def test_a_watched_view_gets_at_most_one_update_per_frame_time():
    arrivals = _arrivals([UPDATE, UPDATE, UPDATE])
    assert arrivals[-1][1] == UPDATE * 3
    # the three requests, sent at once, span two frame times
    assert arrivals[-1][0] >= 2 * liveview.FRAME_EVERY * 0.9, arrivals


def test_a_view_taken_over_gets_updates_at_full_rate():
    arrivals = _arrivals([POINTER, UPDATE, UPDATE, UPDATE])
    assert arrivals[-1][1] == POINTER + UPDATE * 3
    assert arrivals[-1][0] < liveview.FRAME_EVERY, arrivals
