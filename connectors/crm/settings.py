"""Constants of the CRM API (../shared/api-contracts/crm.md)."""

DEFAULT_BASE_URL = "https://api.example.com"
PER_PAGE = 100
#: statuses the tasks endpoint filters on; without them only open tasks come back
TASK_STATUSES = "open,completed,pending"
#: entities that have their own tags and custom field definitions
TAGGED_ENTITIES = ("parties", "kases", "opportunities")
#: `since` is strict (`updatedAt > since`) and second-precise: asking from one second
#: before the stored maximum keeps records changed in that same second
SINCE_LAG_SECONDS = 1
#: the API's documented default rate limit, used when the source gets no other value
REQUESTS_PER_MINUTE = 120
