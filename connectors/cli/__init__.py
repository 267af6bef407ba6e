"""The `connectors` command (`python -m connectors`) and the catalog tooling behind it.
No connector imports anything from here: a connector folder is whole without it.

One idea per module:

- `commands`: the command line (`list`, `show`, `run`, `demo`, `new`, `readme`), and
  the registration of the commands that live in a module of their own (below).
- `explain`: a failed run in one line, naming what to set or install.
- `runner`: builds a catalog connector's source and pipeline and runs it, live or replayed
  from its cassettes (also what `orchestration/` schedules).
- `snippets`: the `.dlt/*.toml` and Python snippets `show` prints.
- `dango`: the `.dango/sources.yml` entry `show` prints for a Dango project.
- `progress`: requests, rows and pacing waits on stderr while a run goes.
- `scaffold`: a new connector from the template, or as a copy of another (`new`).
- `readme`: the README's connector table, generated from `catalog.yml` (`readme`).
- `verify`: the source compared with the destination, read-only (`verify`).
- `check`: one request: are the credentials accepted and the API reachable (`check`).
- `schema`: every resource's tables, columns, types, keys and cursor (`schema`).
- `state`: the cursors a run stored, and dlt's command to reset one (`state`).
- `request_log`: requests, retries and answers by status, from the session's log.
- `run_report`: a run's outcome as one JSON object (`run --json`).
- `serve`: a connector's sandbox API on 127.0.0.1, and the settings to sync against it
  (`serve`).
"""

from connectors.cli.commands import main

__all__ = ["main"]
