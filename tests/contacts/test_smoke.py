def test_api_key_creates_and_finds_a_contact(api):
    client = api("admin")
    created = client.post(
        "/api/v1/contacts",
        {"name": "李四", "identities": [{"kind": "phone", "value": "13912345678"}]},
    )
    assert created.status_code == 201, created.content
    found = client.get("/api/v1/contacts", q="139 1234 5678").json()["items"]
    assert [c["id"] for c in found] == [created.json()["id"]]
