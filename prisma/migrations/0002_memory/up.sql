-- 0002_memory: canonical entities (contacts, organizations, projects),
-- artifact lineage, semantic memory and the embedding cache.
-- The runner wraps this file in one transaction; do not add BEGIN/COMMIT.

-- AlterTable
ALTER TABLE "artifacts" ADD COLUMN "lineage_id" TEXT,
ADD COLUMN "subject" TEXT;

-- CreateTable
CREATE TABLE "contacts" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "organization_id" TEXT,
    "attributes" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "contacts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "organizations" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "domain" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "organizations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "projects" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'active',
    "description" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "projects_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "memory_items" (
    "id" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "subject" TEXT,
    "attribute" TEXT,
    "importance" DOUBLE PRECISION NOT NULL DEFAULT 0.5,
    "source" TEXT NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "valid_until" TIMESTAMPTZ(3),
    "learned_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_accessed_at" TIMESTAMPTZ(3),
    "superseded_by" TEXT,
    "superseded_at" TIMESTAMPTZ(3),
    "tier" TEXT NOT NULL DEFAULT 'hot',
    "feedback" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "human_edited" BOOLEAN NOT NULL DEFAULT false,
    "goal_id" TEXT,
    "embedding" BYTEA NOT NULL,
    "embedding_model" TEXT NOT NULL,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "rev" BIGSERIAL NOT NULL,

    CONSTRAINT "memory_items_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "embedding_cache" (
    "content_hash" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "dims" INTEGER NOT NULL,
    "vector" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "embedding_cache_pkey" PRIMARY KEY ("content_hash","model")
);

-- CreateIndex
CREATE INDEX "artifacts_lineage_id_version_idx" ON "artifacts"("lineage_id", "version");

-- CreateIndex
CREATE UNIQUE INDEX "contacts_email_key" ON "contacts"("email");

-- CreateIndex
CREATE INDEX "contacts_organization_id_idx" ON "contacts"("organization_id");

-- CreateIndex
CREATE UNIQUE INDEX "organizations_domain_key" ON "organizations"("domain");

-- CreateIndex
CREATE UNIQUE INDEX "projects_name_key" ON "projects"("name");

-- CreateIndex
CREATE INDEX "memory_items_subject_attribute_idx" ON "memory_items"("subject", "attribute");

-- CreateIndex
CREATE INDEX "memory_items_kind_tier_idx" ON "memory_items"("kind", "tier");

-- CreateIndex
CREATE INDEX "memory_items_tier_occurred_at_idx" ON "memory_items"("tier", "occurred_at");

-- CreateIndex
CREATE INDEX "memory_items_rev_idx" ON "memory_items"("rev");

-- AddForeignKey
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- Every change to a memory takes a new rev, so each process's in-memory
-- index can catch up with one indexed query (rev > last seen) before it
-- answers, and never serves a stale result after another process wrote.
CREATE FUNCTION "keel_memory_items_bump_rev"() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.rev := nextval(pg_get_serial_sequence('memory_items', 'rev'));
    RETURN NEW;
END;
$$;

CREATE TRIGGER "memory_items_bump_rev"
    BEFORE UPDATE ON "memory_items"
    FOR EACH ROW EXECUTE FUNCTION "keel_memory_items_bump_rev"();
