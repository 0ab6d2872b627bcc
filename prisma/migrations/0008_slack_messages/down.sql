-- Reverts 0008_slack_messages.
DROP TABLE "slack_messages";
