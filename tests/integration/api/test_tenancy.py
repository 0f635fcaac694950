"""Organizations, buildings, units, spots, blocks and residents through the API."""


def test_the_world_builds(world):
    a = world.a
    me = world.call("get", "/v1/me", a.headers["building_admin"]).get_json()
    assert me["memberships"][0]["role"] == "building_admin"
    assert me["memberships"][0]["building_ids"] == [a.buildings["A1"]]
    resident = world.call("get", "/v1/me", a.headers["resident"]).get_json()["resident"]
    assert resident["status"] == "verified" and resident["unit_number"] == "101"
    assert resident["rut"].endswith(a.people["resident"]["rut"][-1])
    assert resident["phone"] == "+56912345678"
