"""The `connectors` command (`python -m connectors`) and the catalog tooling behind it.
No connector imports anything from here: a connector folder is whole without it.

One idea per module:

- `commands`: the command line (`list`, `show`, `run`, `demo`, `new`, `readme`).
- `explain`: a failed run in one line, naming what to set or install.
- `runner`: builds a catalog connector's source and pipeline and runs it, live or replayed
  from its cassettes (also what `orchestration/` schedules).
- `snippets`: the `.dlt/*.toml` and Python snippets `show` prints.
- `dango`: the `.dango/sources.yml` entry `show` prints for a Dango project.
- `progress`: requests, rows and pacing waits on stderr while a run goes.
- `scaffold`: a new connector from the template, or as a copy of another (`new`).
- `readme`: the README's connector table, generated from `catalog.yml` (`readme`).
- `serve`: a connector's sandbox API on 127.0.0.1, and the settings to sync against it
  (`serve`).
"""

from connectors.cli.commands import main

__all__ = ["main"]
