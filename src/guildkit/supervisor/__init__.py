"""Run guildkit's processes as supervised children: restart on crash, prefixed output, ordered
start and stop. Nothing here knows what the children are; `guildkit.cli.run` decides that."""

from guildkit.supervisor.backoff import Backoff
from guildkit.supervisor.child import ChildSpec, SupervisedChild
from guildkit.supervisor.core import Supervisor
from guildkit.supervisor.lock import RunLock, RunLockHeld
from guildkit.supervisor.output import OutputSink

__all__ = [
    "Backoff",
    "ChildSpec",
    "OutputSink",
    "RunLock",
    "RunLockHeld",
    "SupervisedChild",
    "Supervisor",
]
