-- 0009_approval_binding: what an approval showed and how it was decided.
-- `shown` is the snapshot the operator is shown (summary, proposal, rationale,
-- why the policy asks, provenance, risk, cost so far) and `shown_hash` its
-- sha256: a decision naming another hash is refused. `channel`,
-- `decision_key` and `decided_hash` record how the decision came: through
-- which channel, under which idempotency key, naming which version.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- AlterTable
ALTER TABLE "approvals" ADD COLUMN "shown" JSONB,
ADD COLUMN "shown_hash" TEXT,
ADD COLUMN "channel" TEXT,
ADD COLUMN "decision_key" TEXT,
ADD COLUMN "decided_hash" TEXT;
