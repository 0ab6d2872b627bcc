-- Reverts 0007_rate_limits.
DROP TABLE "rate_limit_windows";
