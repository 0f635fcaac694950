def test_ping_job_succeeds_in_one_long_poll(worker, auth):
    client = worker.client()
    accepted = client.post("/v1/system/ping", json={}, headers=auth)
    assert accepted.status_code == 202
    job = client.get(f"{accepted.get_json()['status_url']}?wait=10", headers=auth).get_json()
    assert job["status"] == "succeeded"
    assert job["result"] == {"pong": True}
