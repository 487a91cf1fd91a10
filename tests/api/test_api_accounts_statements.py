"""Provisioning and statements through the API (real uvicorn): the same services, rules and audit."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text

from tests.api.conftest import auth
from tests.api.cycle_helpers import month_to_bill
from tests.statements_helpers import MONTH, generate


def test_create_account_with_first_manager_add_user_suspend(world, client, make_key, db):
    a = world.a
    h = auth(make_key(a.staff, ["accounts:write"]))
    r = client.post("/v1/accounts", headers=h, json={
        "name": "Fjord Analytics AS", "country": "NO", "billing_email": "invoices@fjord.example",
        "manager": {"email": "boss@fjord.example", "display_name": "Boss"}})
    assert r.status_code == 201, r.text
    body = r.json()
    acc = body["account"]
    assert (acc["name"], acc["currency"], acc["status"]) == ("Fjord Analytics AS", "EUR", "active")
    assert body["manager"]["role"] == "manager" and len(body["manager"]["one_time_password"]) > 10
    r = client.post(f"/v1/accounts/{acc['id']}/users", headers=h,
                    json={"email": "dev@fjord.example", "display_name": "Dev", "role": "annotator"})
    assert r.status_code == 201 and r.json()["role"] == "annotator"
    assert client.post(f"/v1/accounts/{acc['id']}/suspend", headers=h).json()["status"] == "suspended"
    r = client.post(f"/v1/accounts/{acc['id']}/suspend", headers=h)
    assert r.status_code == 409 and r.json()["type"] == "/problems/conflict"
    assert client.post(f"/v1/accounts/{acc['id']}/reactivate", headers=h).json()["status"] == "active"
    listed = client.get("/v1/accounts", headers=h, params={"search": "fjord"}).json()["accounts"]
    assert [(x["name"], x["users"]) for x in listed] == [("Fjord Analytics AS", 2)]
    with db.connect() as c:
        audited = c.execute(text("SELECT action, entity, actor_email FROM audit_log WHERE account_id = :a "
                                 "ORDER BY id"), {"a": acc["id"]}).all()
    assert [(x.action, x.entity) for x in audited] == [
        ("create", "customer_account"), ("create", "user"), ("create", "user"),
        ("status:suspended", "customer_account"), ("status:active", "customer_account")]
    assert {x.actor_email for x in audited} == {audited[0].actor_email} and audited[0].actor_email.startswith("api-key:")


def test_refused_values_have_field_pointers_and_write_nothing(world, client, make_key, db):
    h = auth(make_key(world.a.staff, ["accounts:write"]))
    r = client.post("/v1/accounts", headers=h, json={"name": "", "country": "XX",
                                                     "manager": {"email": "not-an-email", "display_name": "M"}})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    pointers = {e["pointer"] for e in r.json()["errors"]}
    assert "#/name" in pointers and "#/country" in pointers
    r = client.post("/v1/accounts", headers=h, json={"name": "Ok AS", "country": "NO",
                                                     "manager": {"email": "not-an-email", "display_name": "M"}})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/manager/email"
    r = client.post("/v1/accounts", headers=h, json={"name": "Ok AS", "country": "NO", "colour": "red"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/colour"
    r = client.post("/v1/accounts", headers=h, json={"country": "NO"})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/name"
    with db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM customer_accounts WHERE name = 'Ok AS'")).scalar() == 0


def test_another_partners_account_is_not_found_or_forbidden(world, client, make_key):
    h = auth(make_key(world.a.staff, ["accounts:write"]))
    r = client.post(f"/v1/accounts/{world.b.account_id}/suspend", headers=h)
    assert r.status_code in (403, 404)
    assert client.get(f"/v1/accounts/{world.b.account_id}", headers=h).status_code in (403, 404)


def test_idempotent_account_creation(world, client, make_key, db):
    h = {**auth(make_key(world.a.staff, ["accounts:write"])), "Idempotency-Key": "acc-1"}
    first = client.post("/v1/accounts", headers=h, json={"name": "Once AS", "country": "NO"})
    again = client.post("/v1/accounts", headers=h, json={"name": "Once AS", "country": "NO"})
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    with db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM customer_accounts WHERE name = 'Once AS'")).scalar() == 1


def test_statements_list_json_and_pdf(world, client, make_key, db):
    a = world.a
    month_to_bill(world, db)
    generate(db, a.staff, a.partner_id, MONTH)
    h = auth(make_key(a.staff, ["statements:read"]))
    rows = client.get("/v1/statements", headers=h, params={"month": MONTH}).json()["statements"]
    assert [(s["kind"], s["status"], s["account_id"], s["total"]) for s in rows] == [
        ("statement", "draft", a.account_id, "206.00")]
    sid = rows[0]["id"]
    doc = client.get(f"/v1/statements/{sid}", headers=h).json()
    assert Decimal(doc["total"]) == Decimal("206") and doc["lines"][0]["label"] == "pages"  # the core's document
    pdf = client.get(f"/v1/statements/{sid}/pdf", headers=h)
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert client.get(f"/v1/statements/{sid}", headers={**h, "Accept": "application/pdf"}).content.startswith(b"%PDF")
    bad = client.get("/v1/statements", headers=h, params={"month": "October"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "#/month"
    other = auth(make_key(world.b.staff, ["statements:read"]))
    assert client.get(f"/v1/statements/{sid}", headers=other).status_code in (403, 404)


def test_openapi_page_is_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/usage/events" in paths and "/v1/statements/{statement_id}/pdf" in paths
