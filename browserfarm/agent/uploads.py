"""The profiles on their way to the cloud. A closed window's profile is zipped (the
spec's close answer) and marked pending (``pending-uploads/<uuid>``); every pending
profile is sent at the next open or close, so a cloud that can't be reached loses
nothing.

Owns: the pending marks, the local ZIPs, and a lock under which one thread sends at a
time (two would send the same profile and race for its mark)."""
from __future__ import annotations

import logging
import threading
from collections.abc import Container
from pathlib import Path

from browserfarm.agent import profile_sync
from browserfarm.agent.cloud import Cloud
from browserfarm.datadir import DataDir
from browserfarm.errors import UpstreamError

log = logging.getLogger(__name__)


class Uploads:
    def __init__(self, data: DataDir, cloud: Cloud, agent_name: str,
                 in_use: Container[str]):
        self.data, self.cloud, self.agent_name = data, cloud, agent_name
        self.in_use = in_use  # uuids of windows open here: sent at their close
        self._sending = threading.Lock()

    def archive(self, uuid: str, profile_dir: Path) -> dict:
        """Zip the stopped window's profile and send it (the close answer's part)."""
        zip_path = self.data.prepare(self.data.profile_zip(uuid))
        size = profile_sync.zip_profile(profile_dir, zip_path)
        self.mark(uuid)
        self.send_pending()
        return {"profileZipPath": str(zip_path), "profileZipName": zip_path.name,
                "profileZipSize": size,
                "synced": not self.data.pending_upload(uuid).exists()}

    def mark(self, uuid: str) -> None:
        """The window's profile is to be sent."""
        self.data.prepare(self.data.pending_upload(uuid)).touch()

    def send_pending(self) -> list[str]:
        """Send every profile still waiting for the cloud; the ones sent."""
        sent = []
        with self._sending:
            folder = self.data.pending_uploads
            for marker in sorted(folder.glob("*")) if folder.exists() else ():
                uuid = marker.name
                if uuid in self.in_use:
                    continue
                try:
                    profile_sync.push(self.cloud, uuid, self.data.window_profile(uuid),
                                      self.agent_name)
                except UpstreamError as exc:
                    log.warning("profile %s waits for the cloud: %s", uuid, exc.msg)
                    continue
                marker.unlink()
                sent.append(uuid)
        return sent
