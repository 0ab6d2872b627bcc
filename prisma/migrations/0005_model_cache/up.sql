-- 0005_model_cache: the model output cache (models/cache.ts) and its counters.
-- An entry is one model answer, keyed by its purpose, endpoint and request
-- hash, with the versions of the entities and memories its prompt was built
-- from; it is served only while fresh and while every one of those versions
-- is still current (keel_model_cache_version reads them).
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- CreateTable
CREATE TABLE "model_cache" (
    "key" TEXT NOT NULL,
    "purpose" TEXT NOT NULL,
    "prompt_hash" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "tier" TEXT NOT NULL,
    "result" JSONB NOT NULL,
    "depends_on" JSONB NOT NULL DEFAULT '[]',
    "input_tokens" INTEGER NOT NULL,
    "output_tokens" INTEGER NOT NULL,
    "cost_usd" DOUBLE PRECISION NOT NULL,
    "hits" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "model_cache_pkey" PRIMARY KEY ("key")
);

-- CreateTable
CREATE TABLE "model_cache_stats" (
    "purpose" TEXT NOT NULL,
    "hits" BIGINT NOT NULL DEFAULT 0,
    "misses" BIGINT NOT NULL DEFAULT 0,
    "invalidated" BIGINT NOT NULL DEFAULT 0,
    "expired" BIGINT NOT NULL DEFAULT 0,
    "input_tokens_saved" BIGINT NOT NULL DEFAULT 0,
    "output_tokens_saved" BIGINT NOT NULL DEFAULT 0,
    "usd_saved" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "model_cache_stats_pkey" PRIMARY KEY ("purpose")
);

-- CreateIndex
CREATE INDEX "model_cache_expires_at_idx" ON "model_cache"("expires_at");

-- The current version of something a prompt was built from, as text; NULL
-- when it does not exist. models/cache.ts formats versions the same way.
CREATE FUNCTION "keel_model_cache_version"("kind" TEXT, "ref" TEXT) RETURNS TEXT
    LANGUAGE sql STABLE
AS $$
    SELECT CASE "kind"
        WHEN 'memory' THEN (SELECT m.rev::text FROM memory_items m WHERE m.id = "ref")
        WHEN 'contact' THEN (SELECT (extract(epoch FROM c.updated_at) * 1000)::bigint::text FROM contacts c WHERE c.id = "ref")
        WHEN 'goal' THEN (SELECT (extract(epoch FROM g.updated_at) * 1000)::bigint::text FROM goals g WHERE g.id = "ref")
        WHEN 'artifact' THEN (SELECT a.version::text || ':' || a.status FROM artifacts a WHERE a.id = "ref")
    END
$$;
