"""The rows a full sync of each connector loads from its sandbox fake, per table, counted
from the fake's own data (the end-to-end tests: `connectors serve` + `run`, Dango). A
connector made from the template counts its own: its fake's `expected_rows()`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def crm_rows(fake: Any) -> dict[str, int]:
    return fake.expected_rows()


def analytics_rows(fake: Any) -> dict[str, int]:
    # the entry's resources are the replay configuration's: events, users, page_views
    return {table: len(rows) for table, rows in fake.data.items()}


def hubspot_contacts_rows(fake: Any) -> dict[str, int]:
    return {"contacts": sum(not contact.get("archived") for contact in fake.contacts)}


def incident_analytics_rows(fake: Any) -> dict[str, int]:
    return {table: len(rows) for table, rows in fake.data.items()}


def project_tracker_rows(fake: Any) -> dict[str, int]:
    # a story need not belong to an epic or a group (the contract): count each list's own
    in_an_epic = [s for s in fake.stories if s["epic_id"] is not None]
    in_a_group = [s for s in fake.stories if s["group_id"] is not None]
    return {
        **{key: len(fake.lists[key]) for key in ("categories", "epics", "groups", "labels")},
        "epics_stories": len(in_an_epic),
        "epics_comments": sum(len(c) for c in fake.comments_by_epic.values()),
        "stories_comments": sum(len(c) for c in fake.comments_by_story.values()),
        "story_history": sum(len(h) for h in fake.history_by_story.values()),
        "groups_stories": len(in_a_group),
        "search_epics": len(fake.epics),
    }


EXPECTED_ROWS: dict[str, Callable[[Any], dict[str, int]]] = {
    "crm": crm_rows,
    "analytics": analytics_rows,
    "hubspot_contacts": hubspot_contacts_rows,
    "incident_analytics": incident_analytics_rows,
    "project_tracker": project_tracker_rows,
}


def expected_rows(name: str, fake: Any) -> dict[str, int]:
    """The rows a full sync of connector `name` loads from `fake`, per table."""
    counted = EXPECTED_ROWS.get(name)
    return counted(fake) if counted is not None else fake.expected_rows()
