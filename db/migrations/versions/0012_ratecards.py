"""rate cards: the platform's price list for each partner (issue 10, two price layers)

Revision ID: 0012
Revises: 0013

Creates `rate_cards` and `rate_card_versions`, then moves existing data forward (see `_move_data`):
partner-level plans assigned to partners and the credit rates inside partners' client plans become
partner rate-card versions. Nothing is deleted: the plans, their versions, assignments and every
statement (final ones above all) stay exactly as they are.
"""
from __future__ import annotations

import json
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_cards',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind in ('standard','partner')", name=op.f('ck_rate_cards_kind')),
    sa.CheckConstraint('length(btrim(name)) > 0', name=op.f('ck_rate_cards_name_not_empty')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_rate_cards_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_rate_cards')),
    sa.UniqueConstraint('partner_id', 'kind', 'currency', name='uq_rate_cards_one_per_currency')
    )
    op.create_table('rate_card_versions',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('card_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('spec', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_rate_card_versions_version_positive')),
    sa.ForeignKeyConstraint(['partner_id', 'card_id'], ['rate_cards.partner_id', 'rate_cards.id'], name='fk_rate_card_versions_card'),
    sa.PrimaryKeyConstraint('partner_id', 'card_id', 'version', name=op.f('pk_rate_card_versions'))
    )
    # the platform's monthly commission statement to a partner (revenue share on its customer-pays clients)
    op.drop_constraint(op.f('ck_statements_kind'), 'statements', type_='check')
    op.create_check_constraint(op.f('ck_statements_kind'), 'statements',
                               "kind in ('statement','collective','credit_note','commission')")
    _move_data()


def _rows(conn, sql: str, **params):
    return conn.execute(sa.text(sql), params).mappings().all()


def _in_force(rows, day, key="effective_from"):
    """The newest row effective on or before `day` (rows sorted oldest first); the first covers earlier days."""
    current = rows[0] if rows else None
    for r in rows:
        if r[key] <= day:
            current = r
    return current


def _move_data() -> None:
    """Partner-level plans and the credit rates inside partners' client plans become partner rate cards.

    For every partner (not the house) with a partner-level plan assignment or a client plan carrying credit
    rates, one partner card is written, with one version per day on which any of those changed:

    - ``partner_fees``: the partner-level plan in force that day (its version in force, the assignment's
      overrides applied), keeping its `active_clients` charges and its fees;
    - ``credit_rates``: metric → credits per unit from the partner's client plan versions in force that day
      (the highest rate when two plans disagree: the platform's price was never meant to vary by client);
    - ``usage``: the client plans' money charges that priced credits (e.g. on demand at 0.009 per credit), so
      an on-demand partner is charged exactly what it was charged before;
    - ``credit_price_steps``: the partner's own credit price list, else the platform's default one.

    The partner's plans, versions and assignments stay as they were (statements already issued still match
    them) and no statement is touched. A partner whose currency has no credit price at all keeps the legacy
    settlement (no card is written for it)."""
    from core.pricing import apply_overrides, plan_from_dict, plan_to_dict

    conn = op.get_bind()
    partners = _rows(conn, "SELECT id, name, currency FROM partners WHERE NOT is_house ORDER BY id")
    for p in partners:
        pid, currency = p["id"], p["currency"]
        assigns = _rows(conn, """
            SELECT a.id, a.plan_partner_id, a.plan_id, a.effective_from, a.overrides FROM plan_assignments a
            WHERE a.partner_id = :p AND a.subject = 'partner' ORDER BY a.effective_from, a.id""", p=pid)
        fee_versions = {}
        for a in assigns:
            key = (a["plan_partner_id"], a["plan_id"])
            if key not in fee_versions:
                fee_versions[key] = _rows(conn, """
                    SELECT version, effective_from, spec FROM plan_versions
                    WHERE partner_id = :pp AND plan_id = :pl ORDER BY version""", pp=key[0], pl=key[1])
        client_versions = _rows(conn, """
            SELECT v.plan_id, v.version, v.effective_from, v.spec FROM plan_versions v
            JOIN plans pl ON pl.partner_id = v.partner_id AND pl.id = v.plan_id
            WHERE v.partner_id = :p AND pl.subject = 'account' AND pl.currency = :c
              AND jsonb_path_exists(v.spec, '$.charges[*] ? (@.credit_rate != null)')
            ORDER BY v.plan_id, v.version""", p=pid, c=currency)
        if not assigns and not client_versions:
            continue
        steps = _rows(conn, """SELECT min_credits, price_per_credit FROM partner_credit_price_steps
                               WHERE partner_id = :p AND currency = :c ORDER BY min_credits""", p=pid, c=currency) \
            or _rows(conn, """SELECT min_credits, price_per_credit FROM credit_price_steps WHERE currency = :c
                              ORDER BY min_credits""", c=currency)
        days = {a["effective_from"] for a in assigns}
        first_assign = min(days) if days else None
        for versions in fee_versions.values():
            days |= {v["effective_from"] for v in versions if first_assign and v["effective_from"] > first_assign}
        days |= {v["effective_from"] for v in client_versions}
        by_plan: dict = {}
        for v in client_versions:
            by_plan.setdefault(v["plan_id"], []).append(v)
        cards: list[tuple] = []
        for day in sorted(days):
            card = {"currency": currency, "tier_basis": "client", "usage": None, "credit_rates": {},
                    "credit_price_steps": [], "partner_fees": None, "revenue_share_percent": None}
            live = [a for a in assigns if a["effective_from"] <= day]
            if live:
                a = max(live, key=lambda r: (r["effective_from"], r["id"]))
                v = _in_force(fee_versions[(a["plan_partner_id"], a["plan_id"])], day)
                spec = apply_overrides(plan_from_dict(v["spec"]), dict(a["overrides"] or {}))
                d = plan_to_dict(spec)
                d["charges"] = [c for c in d["charges"] if c["metric"] == "active_clients"]
                card["partner_fees"] = d
            usage_charges = {}
            for versions in by_plan.values():
                live_versions = [x for x in versions if x["effective_from"] <= day]
                if not live_versions:
                    continue
                v = live_versions[-1]
                for c in v["spec"].get("charges", []):
                    if c.get("credit_rate") is None:
                        continue
                    m = c["metric"]
                    old = card["credit_rates"].get(m)
                    if old is None or Decimal(c["credit_rate"]) > Decimal(old):
                        card["credit_rates"][m] = c["credit_rate"]
                    if c.get("settle", "money") == "money" and m not in usage_charges:
                        usage_charges[m] = {**c, "id": m, "min_amount": None}
            if usage_charges:
                card["usage"] = {"currency": currency, "timing": "in_arrears", "charges": list(usage_charges.values()),
                                 "fees": [], "minimum_spend": None, "discounts": []}
            if card["credit_rates"] or card["usage"]:
                if not steps:
                    cards = []
                    break
                card["credit_price_steps"] = [{"min_credits": format(s["min_credits"].normalize(), "f"),
                                               "price_per_credit": format(s["price_per_credit"].normalize(), "f")}
                                              for s in steps]
            cards.append((day, card))
        if not cards:
            continue
        card_id = conn.execute(sa.text("""
            INSERT INTO rate_cards (partner_id, kind, name, currency) VALUES (:p, 'partner', :n, :c) RETURNING id"""),
            {"p": pid, "n": f"{p['name']} rate card"[:200], "c": currency}).scalar_one()
        for n, (day, card) in enumerate(cards, start=1):
            conn.execute(sa.text("""
                INSERT INTO rate_card_versions (partner_id, card_id, version, effective_from, spec, note)
                VALUES (:p, :card, :v, :d, CAST(:spec AS jsonb), :note)"""),
                {"p": pid, "card": card_id, "v": n, "d": day, "spec": json.dumps({"card": card}),
                 "note": "Moved forward by migration 0012 from the partner-level plan and the credit rates in "
                         "the partner's client plans."})


def downgrade() -> None:
    op.execute("DELETE FROM statement_lines l USING statements s WHERE l.partner_id = s.partner_id "
               "AND l.statement_id = s.id AND s.kind = 'commission' AND s.status = 'draft'")
    op.execute("DELETE FROM statements WHERE kind = 'commission' AND status = 'draft'")
    op.drop_constraint(op.f('ck_statements_kind'), 'statements', type_='check')
    op.create_check_constraint(op.f('ck_statements_kind'), 'statements',
                               "kind in ('statement','collective','credit_note')")
    op.drop_table('rate_card_versions')
    op.drop_table('rate_cards')
