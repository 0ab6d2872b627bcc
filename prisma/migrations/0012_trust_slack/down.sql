-- Reverts 0012_trust_slack.
ALTER TABLE "trust_rules" DROP COLUMN "slack_claimed_at",
DROP COLUMN "slack_channel",
DROP COLUMN "slack_ts";
