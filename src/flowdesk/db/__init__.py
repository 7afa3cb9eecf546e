"""Storage: SQLAlchemy models, the engine and session factory, and migrations.

Data-access helpers here never commit; the caller (a service function) owns the
transaction through `Database.transaction()`.
"""

from flowdesk.db.session import Database

__all__ = ["Database"]
