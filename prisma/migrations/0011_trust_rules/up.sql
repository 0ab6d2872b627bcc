-- 0011_trust_rules: rules the operator's own decisions suggest (trust/).
-- After N approvals without edits of one tool to the same recipients, a rule
-- "auto-approve <tool> to <recipients>" is suggested; the operator accepts
-- or dismisses it; an accepted rule approves such steps from then on, until
-- it is revoked. One row per tool and audience.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- CreateTable
CREATE TABLE "trust_rules" (
    "id" TEXT NOT NULL,
    "tool" TEXT NOT NULL,
    "audience" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "evidence" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "decided_at" TIMESTAMPTZ(3),
    "decided_by" TEXT,

    CONSTRAINT "trust_rules_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "trust_rules_tool_audience_key" ON "trust_rules"("tool", "audience");
