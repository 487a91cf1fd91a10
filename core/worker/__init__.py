"""The worker (`python -m core.worker`, started by `make run`): what happens without anyone clicking.

- the outbox: e-mails through SMTP when configured (statement PDFs attached), else marked "not sent: no
  SMTP"; webhook deliveries with back-off (core.notify);
- the billing cycle per partner (cycle): drafts on the 1st, finalised after the review window, each final
  statement e-mailed once (mail);
- periodic jobs (jobs): wallet automatic-purchase retries, lot expiry, payment-intent reconciliation,
  clean-up of old Idempotency-Key answers.

Every unit of work is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` in the transaction that does it,
so any number of workers can run at once without doing anything twice.

May import: everything in core and db (it is the top layer of core, like bootstrap).
"""
