"""A bookable building in any stack (isolated ones included): a verified resident and free blocks."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.stack import Stack
from tests.support.world import make_residents, new_block, new_spot


def bookable_building(stack: Stack, blocks: int) -> tuple[dict[str, str], list[str]]:
    """A resident's auth headers and ``blocks`` available block ids (one spot, 12 h apart)."""
    client = stack.client()
    admin = stack.login(stack.create_user(role="platform_admin"))
    org = client.post("/v1/organizations", json={"name": f"Org {uuid.uuid4().hex[:6]}"}, headers=admin)
    assert org.status_code == 201, org.get_json()
    building = client.post(
        f"/v1/organizations/{org.get_json()['id']}/buildings",
        json={
            "name": "Fairness tower",
            "address": "Calle Larga 1",
            "contact_email": "ops@example.test",
            "max_upcoming_bookings_per_resident": 1000,
        },
        headers=admin,
    )
    assert building.status_code == 201, building.get_json()
    building_id = building.get_json()["id"]
    unit = client.post(f"/v1/buildings/{building_id}/units", json={"unit_number": "1"}, headers=admin)
    assert unit.status_code == 201, unit.get_json()
    resident = make_residents(stack, building_id, 1)[0]
    spot = new_spot(stack, admin, building_id)
    block_ids = [new_block(stack, admin, spot, starts_in_minutes=60 * 24 + i * 12 * 60) for i in range(blocks)]
    return stack.login(resident), block_ids


def booking_body(block_id: str) -> dict[str, Any]:
    return {"availability_block_id": block_id, "visitor_name": "Visita", "vehicle_plate": "BBCL12"}
