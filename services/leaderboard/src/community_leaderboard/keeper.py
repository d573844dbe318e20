"""Keeps the Redis boards whole while the service runs.

Redis holds the boards as a projection of Postgres. When Redis restarts empty
(no persistence), nothing else would notice: reads would serve empty boards,
and the consumers would put back only the students who happen to move. The
keeper checks the boards' generation marker (boards.py) every
`boards_check_seconds`, and at once when a read or a move found it missing, and
rebuilds the boards from Postgres when it is gone. Meanwhile reads and moves
answer 503 (`BoardsMissing`) and `/ready` says why (`problem`).

Guarantees: after Redis comes back, the boards are whole again within about
`boards_check_seconds` plus one rebuild, without a restart. Not kept across a
Redis restart: rank moves kept during a backlog (`lb:pending_moves`), which
are then not announced.
"""

from __future__ import annotations

import asyncio
import logging

from community_shared.tasks import stop_tasks, wait_set

from community_leaderboard.service import LeaderboardService

log = logging.getLogger(__name__)


class BoardKeeper:
    def __init__(
        self, service: LeaderboardService, *, check_seconds: float, rebuild_first: bool = False
    ) -> None:
        self._service = service
        self._check_seconds = check_seconds
        self._rebuild_first = rebuild_first
        self._task: asyncio.Task[None] | None = None
        self.problem: str | None = "not checked yet"
        """Why the boards cannot be served now (for `/ready`); None when whole."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="leaderboard-board-keeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_tasks(task)

    def _rebuilding(self) -> None:
        self.problem = "Redis lost the boards; rebuilding them from Postgres"
        log.warning("the boards are missing from Redis; rebuilding them from Postgres")

    async def check(self) -> None:
        """Rebuild the boards if they are missing (or if the last start-up could not)."""
        boards = self._service.boards
        boards.lost.clear()
        if self._rebuild_first:
            self.problem = "rebuilding the boards from Postgres"
            await self._service.resync()
            self._rebuild_first = False
        else:
            await self._service.jobs.restore_lost_boards(on_rebuild=self._rebuilding)
        self.problem = None

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as exc:
                self.problem = f"cannot check the boards: {str(exc) or type(exc).__name__}"
                log.warning("board keeper: %s", self.problem)
            await wait_set(self._service.boards.lost, self._check_seconds)
