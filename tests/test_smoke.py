from adledger.service import accounts


def test_an_account_can_be_created_and_read_back(db):
    acct = db.run(accounts.create_account, name="Main", currency="USD")
    assert db.read(accounts.get_account, acct["id"])["currency"] == "USD"
