"""Tenancy is structural: every public core function that takes a database session also takes the actor and
checks a permission (itself, or through a checked function it hands the actor to) - or it is on the
commented allow-list below. Pages call only actor-taking functions (apart from logging in itself)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKS = {"authorize", "allowed", "resolve_scope", "_authorize_on_user", "require_staff", "_authorize"}
SESSION_ARGS = {"session", "conn", "s"}

# Public, session-taking, no actor: each group says why that is safe. Shrink it; never grow it without a reason.
ALLOWED: dict[str, str] = {}
for _reason, _names in {
    # Establishing who the actor is: before these there is no actor (each checks a secret instead).
    "authentication": ["core.accounts.auth.signup", "core.accounts.auth.authenticate", "core.accounts.auth.load_actor",
                       "core.accounts.auth.confirm_email", "core.accounts.auth.reset_with_token",
                       "core.accounts.auth.resume", "core.accounts.auth.forget", "core.accounts.apikeys.authenticate",
                       "core.accounts.impersonation.impersonated_actor"],
    # Self-service on the actor's own login (the user and partner come from the actor, never from input).
    "self-service": ["core.accounts.auth.logout", "core.accounts.auth.remember", "core.accounts.impersonation.stop"],
    # Helpers of the services above, called only from core with ids the service already authorised.
    "account internals": ["core.accounts.accounts.house_partner", "core.accounts.accounts.get_partner",
                          "core.accounts.links.send", "core.accounts.links.end_sessions",
                          "core.accounts.links.issue_token", "core.accounts.links.use_token",
                          "core.accounts.links.send_reset_link", "core.accounts.audit.record",
                          "core.accounts.accounts.check_new_user", "core.accounts.accounts.insert_user",
                          "core.notify.webhooks.emit", "core.notify.webhooks.on_audit"],
    # Usage hooks and jobs run by the system (bootstrap wiring, monthly runs, schedulers), never by a page.
    "system hooks and jobs": ["core.billing.alerts.check_thresholds", "core.billing.alerts.threshold_accounts",
                              "core.billing.alerts.on_events_recorded", "core.billing.modes.settle_new_usage",
                              "core.billing.settlement.month_to_date_cost", "core.billing.settlement.on_events_recorded",
                              "core.billing.purchases.retry_due_auto_purchases", "core.billing.purchases.start_auto_buy",
                              "core.billing.purchases.open_auto_purchase", "core.billing.reconcile.reconcile",
                              "core.billing.wallet_lots.expire_lots", "core.billing.wallet_reading.verify_ledger",
                              "core.billing.wallet_lots.verify_lots", "core.billing.receipts.issue_receipt",
                              "core.billing.receipts.issue_charge_receipt",
                              "core.billing.wallet.draw", "core.notify.outbox.notify",
                              "core.worker.mail.attachments"],
    # Billing internals: called by authorised services (rating, statements, wallet, payments) with their ids.
    "billing internals": ["core.billing.modes.mode_row", "core.billing.modes.mode_at", "core.billing.modes.modes_in_period",
                          "core.billing.payments.engine_of", "core.billing.payments.find_charge",
                          "core.billing.payments.record_declined", "core.billing.payments.record_approved",
                          "core.billing.payments.default_method", "core.billing.plans.known_metrics",
                          "core.billing.plans.versions_of", "core.billing.plans.assignments_in_force",
                          "core.billing.rating.partner_active_clients", "core.billing.rating.segments_for",
                          "core.billing.wallet_base.price_steps", "core.billing.wallet_base.price_for",
                          "core.billing.wallet.find_wallet", "core.billing.purchases.intent_row",
                          "core.billing.usage_detail.with_detail", "core.billing.wallet_base.lock_wallet",
                          "core.billing.wallet_base.wallet_row", "core.billing.wallet_base.insert_entry",
                          "core.billing.wallet_base.set_wallet", "core.billing.wallet_base.reset_backoff",
                          "core.billing.wallet_base.after_credit_in", "core.billing.wallet_base.after_debit",
                          "core.billing.wallet_base.default_method",
                          "core.billing.wallet_lots.add_lot", "core.billing.wallet_lots.take_lots",
                          "core.billing.wallet_lots.take_from_lot", "core.billing.wallet_lots.open_lots",
                          "core.billing.wallet_lots.lots_used"],
    # Input checks against the global metric catalogue (reference data, no tenant data).
    "input checks": ["core.billing.plan_builder.check_charge"],
    # Statement internals: the planning/content/document steps of core.statements.lifecycle (which authorises).
    "statement internals": ["core.statements.content.credits_drawn", "core.statements.content.charged_on_demand",
                            "core.statements.content.involved_accounts", "core.statements.content.compute",
                            "core.statements.documents.fetch", "core.statements.documents.build_document",
                            "core.statements.documents.document",
                            "core.statements.planning.pieces_of", "core.statements.planning.billable_accounts",
                            "core.statements.planning.accounts_with_modes",
                            "core.statements.planning.check_key", "core.statements.settings.branding"],
    # Usage internals and the global metric catalogue (reference data, not tenant data).
    "usage internals": ["core.usage.aggregates.period_usage", "core.usage.aggregates.update_rollups", "core.usage.as_of.usable",
                        "core.usage.ranges.quiet",
                        "core.usage.metrics.list_metrics",
                        "core.usage.metrics.metric_keys", "core.usage.metrics.get_metrics",
                        "core.usage.periods.period_guard", "core.usage.periods.locked_ranges",
                        "core.usage.periods.lock_period", "core.usage.periods.is_locked",
                        "core.usage.reports.metric_names",
                        "core.usage.validation.check_events", "core.usage.validation.validate_batch",
                        # per-value aggregates of declared dimensions: ingestion's steps and rating's reads
                        "core.usage.dimensions.prepare",
                        "core.usage.dimensions.upsert", "core.usage.dimensions.declared",
                        "core.usage.dimensions.period_by_value", "core.usage.dimensions.period_events"],
    # Rate-card internals: the platform's prices for a partner, read by settlement (inside ingestion, which
    # authorised the usage), by statements and by margin reports (whose services authorise: ratecard.view /
    # margin.view); card_in_force/has_card are the reads those share.
    "rate-card internals": ["core.billing.ratecards.card_in_force", "core.billing.ratecards.has_card",
                            "core.billing.ratecards.partner_usage", "core.billing.ratecards.platform_cost",
                            "core.billing.ratecards.partner_fees", "core.billing.ratecards.credit_steps",
                            "core.billing.ratecards.revenue_share_percent", "core.billing.margin.compute_margins",
                            # called by plans.create_plan/new_version after they authorised plan.manage
                            "core.billing.platform_prices.check_platform_prices"],
    # Statement internals of the two price layers (core.statements.layers, planning), called by lifecycle.
    "two-layer statement internals": ["core.statements.layers.card_source", "core.statements.layers.card_section",
                                      "core.statements.layers.card_fee_lines", "core.statements.layers.unpriced_lines",
                                      "core.statements.layers.commission_lines"],
    # Row-level security: binds a session to the actor's own scope (their partner, or the platform for a platform
    # admin): it only narrows what the session may see, to what the actor's role already allows.
    "tenant scope": ["core.accounts.actor.bind_actor"],
    # A partner's public brand (name, logo text) for its clients' pages and its login page (?brand=…), which
    # is shown before anyone logs in: no tenant data beyond what the partner publishes on its statements.
    "public branding": ["core.overview.brand_for",
                        # the brand name an e-mail comes from (outbox delivery, the worker: no user acting)
                        "core.accounts.links.client_brand", "core.accounts.links.sender_name"],
}.items():
    ALLOWED.update(dict.fromkeys(_names, _reason))

# Pages may call these actor-less functions: they are how a page learns who is logged in.
PAGE_ALLOWED = {"core.billing.plan_builder.check_charge",  # validates a draft charge: no tenant data
                "core.accounts.auth.load_actor", "core.accounts.auth.resume", "core.accounts.auth.signup",
                "core.accounts.auth.confirm_email", "core.accounts.auth.reset_with_token",
                "core.accounts.impersonation.impersonated_actor"}


def _functions() -> dict[str, ast.FunctionDef]:
    out = {}
    for f in sorted((ROOT / "core").rglob("*.py")):
        module = f.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.FunctionDef):
                out[f"{module}.{node.name}"] = node
    return out


def _calls(node: ast.FunctionDef) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _passes_actor(call: ast.Call) -> bool:
    args = list(call.args) + [k.value for k in call.keywords]
    return any(isinstance(a, ast.Name) and a.id in ("actor", "staff") for a in args)


def _session_functions() -> tuple[dict[str, ast.FunctionDef], set[str]]:
    funcs = _functions()
    checked: set[str] = set()  # short names of functions that check a permission (directly or by delegation)
    changed = True
    while changed:
        changed = False
        for full, node in funcs.items():
            short = full.rsplit(".", 1)[1]
            if short in checked:
                continue
            denies = any(isinstance(n, ast.Raise) and n.exc is not None and "PermissionDenied" in ast.unparse(n.exc)
                         for n in ast.walk(node))  # its own role logic, ending in PermissionDenied
            for call in _calls(node) if not denies else [None]:
                name = _name(call) if call is not None else None
                if denies or name in CHECKS or (name in checked and _passes_actor(call)):
                    checked.add(short)
                    changed = True
                    break
    public = {}
    for full, node in funcs.items():
        args = [a.arg for a in node.args.args + node.args.kwonlyargs]
        if not node.name.startswith("_") and args and args[0] in SESSION_ARGS:
            public[full] = node
    return public, checked


def test_every_public_session_function_takes_the_actor_and_checks_or_is_allowed():
    public, checked = _session_functions()
    offenders = []
    for full, node in public.items():
        args = [a.arg for a in node.args.args + node.args.kwonlyargs]
        ok = "actor" in args and node.name in checked
        if not ok and full not in ALLOWED:
            offenders.append(full)
    assert offenders == [], "take the actor and authorize, make it private, or add it with a reason to ALLOWED"
    stale = [name for name in ALLOWED if name not in public or
             ("actor" in [a.arg for a in public[name].args.args + public[name].args.kwonlyargs]
              and public[name].name in checked)]
    assert stale == [], "no longer needs the allow-list"


def test_pages_call_only_actor_taking_core_functions():
    public, checked = _session_functions()
    actorless = {full for full, node in public.items()
                 if "actor" not in [a.arg for a in node.args.args + node.args.kwonlyargs]}
    used = []
    for f in [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(f.read_text())
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core"):
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in aliases:
                used.append(aliases[node.id])
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                used.append(f"{aliases[node.value.id]}.{node.attr}")
    bad = sorted({u for u in used if u in actorless and u not in PAGE_ALLOWED})
    assert bad == []
