"""Flow versions never change once stored, so their parsed definition and
compiled steps are kept per version id instead of being rebuilt per run.

A process talks to one database, so a version id names one version; tests that
open many databases in one process clear the cache between them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from flowdesk.db.models import FlowVersion
from flowdesk.engine import CompiledFlow, compile_flow
from flowdesk.flows.definition import FlowDefinition, definition_from_data
from flowdesk.inputs import declared_shape

CACHED_VERSIONS = 512


@dataclass(frozen=True)
class LoadedVersion:
    version_id: int
    definition: FlowDefinition
    compiled: CompiledFlow
    # The names the input schema declares, so that left-out optional inputs
    # read as None in expressions.
    input_shape: dict[str, Any]


class VersionCache:
    def __init__(self, size: int = CACHED_VERSIONS) -> None:
        self._size = size
        self._entries: OrderedDict[int, LoadedVersion] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, version_id: int, data: dict[str, Any]) -> LoadedVersion:
        entry = self._cached(version_id)
        if entry is not None:
            return entry

        definition = definition_from_data(data)
        entry = LoadedVersion(
            version_id,
            definition,
            compile_flow(definition.steps, definition.outputs),
            declared_shape(definition.input_schema),
        )
        with self._lock:
            self._entries[version_id] = entry
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entry

    def fetch(self, session: Session | Connection, version_id: int) -> LoadedVersion:
        """The version `version_id`, whose stored definition is read only
        when the cache does not hold it: decoding a large definition costs more
        than everything else a request does with it."""
        entry = self._cached(version_id)
        if entry is not None:
            return entry
        data = session.scalars(
            select(FlowVersion.definition).where(FlowVersion.id == version_id)
        ).one()
        return self.load(version_id, data)

    def _cached(self, version_id: int) -> LoadedVersion | None:
        with self._lock:
            entry = self._entries.get(version_id)
            if entry is not None:
                self._entries.move_to_end(version_id)
            return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


versions = VersionCache()
