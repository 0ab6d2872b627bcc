-- Reverts 0009_approval_binding.
ALTER TABLE "approvals" DROP COLUMN "shown",
DROP COLUMN "shown_hash",
DROP COLUMN "channel",
DROP COLUMN "decision_key",
DROP COLUMN "decided_hash";
