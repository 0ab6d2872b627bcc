-- 0012_trust_slack: where a suggested trust rule was posted to Slack. The
-- post is claimed (`slack_claimed_at`) before it is made, so several API
-- processes post each suggestion once.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- AlterTable
ALTER TABLE "trust_rules" ADD COLUMN "slack_claimed_at" TIMESTAMPTZ(3),
ADD COLUMN "slack_channel" TEXT,
ADD COLUMN "slack_ts" TEXT;
