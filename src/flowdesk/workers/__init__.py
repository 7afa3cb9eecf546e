"""Worker processes that run `python` step code outside the server process.

`python_worker` is the program a worker runs; it imports only the standard
library and never flowdesk, so that step code cannot reach the server's
settings, database or secret key through it. `sandbox`, loaded by the worker
by file name and likewise standard library only, confines each worker with
Landlock before it runs step code. `pool` keeps warm workers for the engine's
`python` step. Nothing here may import `db`, `web`, `runs` or `settings`.
"""
