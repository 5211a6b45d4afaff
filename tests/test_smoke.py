from adledger.service import accounts


def test_an_account_can_be_created_and_read_back(db):
    acct = db.run(accounts.create_account, name="Main", currency="USD")
    assert db.read(accounts.get_account, acct["id"])["currency"] == "USD"


def test_the_app_answers_health_and_refuses_a_missing_key(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    r = api.client.get("/v1/accounts")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert api.admin.get("/v1/accounts").status_code == 200
