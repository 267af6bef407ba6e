"""Constants of My API."""

#: where the first sync of orders starts: orders updated at or after this instant
INITIAL_UPDATED_AFTER = "2024-01-01T00:00:00Z"
#: pace requests under this rate unless the source is given another one
REQUESTS_PER_MINUTE = 60
