"""Constants of the Capsule CRM API v2."""

#: Capsule's API origin; the connector's paths start with `/api/v2`
DEFAULT_BASE_URL = "https://api.capsulecrm.com"
PER_PAGE = 100
#: statuses the tasks endpoint filters on; without them only open tasks come back
TASK_STATUSES = "open,completed,pending"
#: entities that have their own tags and custom field definitions
TAGGED_ENTITIES = ("parties", "kases", "opportunities")
#: `since` is strict (`updatedAt > since`) and second-precise: asking from one second
#: before the stored maximum keeps records changed in that same second
SINCE_LAG_SECONDS = 1
#: Capsule allows 4,000 requests an hour per user (about 66 a minute); the pacer uses 90%
#: of it, about 3,560 an hour, so a long sync stays under the hourly budget. The default
#: pace, for when the budget headers are absent
REQUESTS_PER_MINUTE = 66
#: every response reports the window: requests allowed, left, and the epoch second the
#: window resets; the pacer goes at full speed above the reserve and spreads what is left
#: below it evenly until the reset
LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"
RESET_HEADER = "X-RateLimit-Reset"
#: the real window is an hour; a reset further away than two is not believed (the
#: default pace applies instead)
MAX_WINDOW_SECONDS = 2 * 3600.0


def typed(**data_types: str) -> dict[str, dict[str, str]]:
    """Column hints: each column's dlt data type."""
    return {name: {"data_type": data_type} for name, data_type in data_types.items()}


# the columns of fields Capsule documents, typed from its spec: date-only fields
# (`"2015-10-01"`) and the time of day (`dueTime`, `"18:30:00"`: "without a date
# element", in the user's time zone), which dlt infers as text, and scalar fields a
# record carries as null while unset, which dlt gives no column while every row of a
# sync holds null. Nested references (`team`, `opportunity`, ...) are not declared:
# their columns depend on the load path (`team__id` flattened, or one JSON column
# `team` with `arrow_pages`). Keys are dlt's snake_case names.
PARTY_COLUMNS = typed(title="text", job_title="text", last_contacted_at="timestamp")
TASK_COLUMNS = typed(detail="text", due_on="date", due_time="time", completed_at="timestamp")
PROJECT_COLUMNS = typed(description="text", closed_on="date", last_contacted_at="timestamp")
OPPORTUNITY_COLUMNS = typed(
    description="text",
    expected_close_on="date",
    duration="bigint",
    closed_on="date",
    last_contacted_at="timestamp",
)
