-- 0007_rate_limits: per-connector rate-limit windows (state/rate-limits.ts).
-- One row per connector, window size and window start, counting the actions
-- taken in it; every worker takes from the same rows, so a limit holds across
-- restarts and across workers.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- CreateTable
CREATE TABLE "rate_limit_windows" (
    "connector" TEXT NOT NULL,
    "size" TEXT NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "count" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "rate_limit_windows_pkey" PRIMARY KEY ("connector","size","window_start")
);
